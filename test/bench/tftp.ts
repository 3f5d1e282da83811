/**
 * npm run bench -- tftp [--quick] [--json] [--runs N]
 * Downloads of one random file (100 MB; --quick 10 MB), servers pinned to
 * core 0 and clients to core 1 (taskset: lock-step TFTP on 2 cores depends
 * on it), every download checked byte-identical (SHA-256):
 * - lock-step: tftpd-hpa and our PE, each with curl at blksize 1468 and
 *   65464 and with tftp-hpa (which asks no options: 512-byte blocks);
 * - windowed (RFC 7440; tftpd-hpa has none): atftp+atftpd, atftp+our PE and
 *   our client+PE at blksize/windowsize 1468/8, 1468/32, 8192/16, 65464/4;
 *   our client twice: `rserpool`, a new process per download, as `rserpool
 *   tftp get` runs (its code compiles and its memory is first touched
 *   during the download), and `rserpool-warm`, one process for all runs
 *   after one download not counted, as a program that imports the library;
 * - a boot storm: 64 clients at once (see _tftp-storm.ts).
 * Figures: `download` in MB/s (10^6 bytes/s), the median of the runs that
 * ended (interleaved with the baseline's), `worst` the slowest run in s;
 * `serverCpuPerGB` and `clientCpuPerGB`: user+sys CPU seconds of the server
 * process (with its threads and children: tftpd-hpa forks per client) and
 * of the client per 10^9 bytes, over the runs that ended (our client counts
 * its transfer alone, as its time does), and `...Median` the median run's
 * (our PE fills its chunk cache in the first run at a blksize). A run past the deadline is killed
 * and counted in `stalls`, a wrong file or failed client in `failures`
 * (`error`: the first); either way the case runs on. `ratio-vs-tftpd-hpa`,
 * `ratio-vs-atftpd` (ours / theirs, same client or our client, same
 * settings) and `ratio-vs-atftp-client` (our client / atftp, same PE), unit
 * x, over medians of the runs that ended (`baselineStalls` says how many of
 * the baseline's did not; with none ended it is a lower bound, lowerBound:
 * true); `server-cpu-ratio-vs-*`, `client-cpu-ratio-vs-atftp-client`: CPU
 * per GB, ours / theirs (lower is better), `median` the same over the
 * median runs. The Debian servers are fetched
 * into test/bench/.cache/ when missing (see _tftp-tools.ts); tftpd-hpa needs
 * root (it chroots); client CPU is read by a python3 wrapper (wait4). Env:
 * RSERPOOL_BENCH_TFTP_RUNS (or --runs; default 3, --quick 1),
 * RSERPOOL_BENCH_TFTP_DEADLINE_S (default 60; --quick 20),
 * RSERPOOL_BENCH_TFTP_MB (file size; default 100, --quick 10),
 * RSERPOOL_BENCH_TFTP_PARTS (default `downloads,storm`; `downloads` when
 * CASES is set), RSERPOOL_BENCH_TFTP_CASES (default: all) the download
 * comparisons to run, comma-separated: lock-step `curl-1468`, `curl-65464`,
 * `tftp-hpa-512` (the client with tftpd-hpa and our PE); windowed `1468/8`,
 * `1468/32`, `8192/16`, `65464/4` (atftp+atftpd, atftp+PE, our client+PE),
 * or one client of such a group with the baseline: `atftp-65464/4`,
 * `rserpool-65464/4`, `rserpool-warm-65464/4`. Servers no chosen case needs are not started.
 * RSERPOOL_BENCH_TFTP_BUSY_POLL (`auto`, `on`, `off`; default the PE's
 * own, `auto`: on, the clients being on this host): what polling for ACKs
 * costs in CPU and gains in speed.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { perGB } from './_tftp-cpu.js';
import {
  CLIENT_CPU,
  FILE,
  checkFile,
  clientArgv,
  envInt,
  killAll,
  lastLine,
  makeFile,
  median,
  removeFile,
  repoRoot,
  runClient,
  settle,
  startAtftpd,
  startPe,
  startTftpdHpa,
  type ClientName,
  type OwnClientLine,
  type Server,
  type ServerName,
  WarmClient,
} from './_tftp-common.js';
import { ensureTftpTools, type TftpTools } from './_tftp-tools.js';
import { bootStorm } from './_tftp-storm.js';

/** rserpool-warm: our client kept in one process across runs (see WarmClient). */
type BenchClient = ClientName | 'rserpool-warm';

interface Case {
  server: ServerName;
  client: BenchClient;
  blksize: number;
  windowsize: number;
}

interface Result {
  c: Case;
  /** MB/s, seconds and CPU seconds of each run that ended with the right file. */
  mbps: number[];
  seconds: number[];
  serverCpu: number[];
  clientCpu: number[];
  stalls: number;
  failures: number;
  /** The first failure's or stall's message. */
  error?: string;
}

interface Setup {
  tools: TftpTools;
  servers: Map<ServerName, Server>;
  outDir: string;
  bytes: number;
  sha256: string;
  deadlineMs: number;
  log(line: string): void;
  /** Our long-lived clients, by blksize/windowsize. */
  warm: Map<string, WarmClient>;
}

const key = (c: Case): string => `${c.client}@${c.server} ${c.blksize}/${c.windowsize}`;

type Run = { ok: true; seconds: number; serverCpu: number; clientCpu: number } | { ok: false; stalled: boolean; error: string };

/**
 * One pinned download, timed by the client process's wall clock: that counts
 * its exec too (atftp ~2 ms, curl ~10 ms here). Ours is timed by its own
 * figure, without Node's start-up (see _tftp-client.ts). The server's CPU is
 * read before and after, once it serves nothing (its last ACK handled, a
 * forked child reaped).
 */
async function download(s: Setup, c: Case): Promise<Run> {
  const server = s.servers.get(c.server)!;
  if (server.proc.exitCode !== null || server.proc.signalCode !== null)
    return { ok: false, stalled: false, error: `${c.server} exited: ${lastLine(server.tail())}` };
  const out = join(s.outDir, `${c.client}-${c.server}-${c.blksize}-${c.windowsize}.bin`);
  removeFile(out);
  // A stalled run before may still be retrying.
  if (!(await settle([server]))) s.log(`tftp: ${key(c)}: ${c.server} still busy from the run before`);
  const warm = c.client === 'rserpool-warm' ? await warmClient(s, c, server, out) : undefined;
  if (warm && !(warm instanceof WarmClient)) return warm;
  const cpu0 = server.cpu();
  try {
    const got = warm ? await warmRun(s, warm, server, out) : await processRun(s, { ...c, client: c.client as ClientName }, server, out);
    if ('stalled' in got) return { ok: false, stalled: got.stalled, error: got.stalled ? `no end within ${s.deadlineMs / 1000} s` : got.error };
    if (!(await settle([server]))) s.log(`tftp: ${key(c)}: ${c.server} still busy 5 s after the client ended; CPU read anyway`);
    const cpu1 = server.cpu();
    const wrong = await checkFile(out, s.bytes, s.sha256);
    if (wrong) return { ok: false, stalled: false, error: wrong };
    if (cpu0 === undefined || cpu1 === undefined) return { ok: false, stalled: false, error: `${c.server} exited during the run` };
    return { ok: true, seconds: got.seconds, serverCpu: cpu1 - cpu0, clientCpu: got.clientCpu };
  } finally {
    removeFile(out);
  }
}

/** What a client made of one download: its time and CPU, or a stall or failure. */
type Timed = { seconds: number; clientCpu: number } | { stalled: true } | { stalled: false; error: string };

/** One download by a client program of its own, pinned; ours reports its own time and CPU. */
async function processRun(s: Setup, c: Case & { client: ClientName }, server: Server, out: string): Promise<Timed> {
  const r = await runClient(CLIENT_CPU, clientArgv(s.tools, c, server.port, FILE, out), s.tools.env, s.deadlineMs);
  if (r.timedOut) return { stalled: true };
  if (r.code !== 0) {
    const said = lastLine(r.stderr) || lastLine(r.stdout);
    return { stalled: false, error: `exit ${r.code}${said ? `: ${said}` : ''}` };
  }
  if (c.client !== 'rserpool') return { seconds: r.ms / 1000, clientCpu: r.cpu };
  const own = JSON.parse(lastLine(r.stdout)) as OwnClientLine;
  if (own.blksize !== c.blksize || own.windowsize !== c.windowsize) s.log(`tftp: ${key(c)}: the PE granted ${own.blksize}/${own.windowsize}`);
  return { seconds: own.ms / 1000, clientCpu: own.cpu };
}

/** Our long-lived client for the case's settings; a new one's first download only warms it up and is not counted. */
async function warmClient(s: Setup, c: Case, server: Server, out: string): Promise<WarmClient | Run> {
  const id = `${c.blksize}/${c.windowsize}`;
  const have = s.warm.get(id);
  if (have?.alive) return have;
  const client = new WarmClient(c.blksize, c.windowsize, s.tools.env);
  s.warm.set(id, client);
  const up = await client.download(server.port, FILE, out, s.deadlineMs);
  removeFile(out);
  const said = up.timedOut ? 'stalled' : (up.error ?? `${(up.line!.ms / 1000).toFixed(2)} s, not counted`);
  s.log(`tftp: ${key(c)}: warm-up download (${said})`);
  if (!client.alive) return { ok: false, stalled: up.timedOut, error: `warm-up: ${up.error ?? 'no end'}` };
  if (!(await settle([server]))) s.log(`tftp: ${key(c)}: ${c.server} still busy after the warm-up`);
  return client;
}

async function warmRun(s: Setup, client: WarmClient, server: Server, out: string): Promise<Timed> {
  const r = await client.download(server.port, FILE, out, s.deadlineMs);
  if (r.timedOut) return { stalled: true };
  if (!r.line) return { stalled: false, error: r.error ?? 'no answer' };
  return { seconds: r.line.ms / 1000, clientCpu: r.line.cpu };
}

/** Runs the cases of one comparison interleaved, `runs` times each; stalls and failures are counted and the case runs on. */
async function runGroup(s: Setup, cases: Case[], runs: number): Promise<Result[]> {
  const results = cases.map((c): Result => ({ c, mbps: [], seconds: [], serverCpu: [], clientCpu: [], stalls: 0, failures: 0 }));
  for (let i = 0; i < runs; i++) {
    for (const r of results) {
      const got = await download(s, r.c);
      if (got.ok) {
        r.seconds.push(got.seconds);
        r.mbps.push(s.bytes / got.seconds / 1e6);
        r.serverCpu.push(got.serverCpu);
        r.clientCpu.push(got.clientCpu);
        const cpu = `server ${got.serverCpu.toFixed(2)} s, client ${got.clientCpu.toFixed(2)} s CPU`;
        s.log(`tftp: ${key(r.c)} run ${i + 1}: ${(s.bytes / got.seconds / 1e6).toFixed(1)} MB/s (${got.seconds.toFixed(2)} s; ${cpu})`);
      } else {
        if (got.stalled) r.stalls++;
        else r.failures++;
        r.error ??= got.error;
        s.log(`tftp: ${key(r.c)} run ${i + 1}: ${got.stalled ? 'STALLED' : 'ERROR'} ${got.error}`);
      }
    }
  }
  return results;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
/** CPU seconds per GB over the runs that ended (the sum, not a median: /proc counts 10 ms ticks). */
const serverCpuPerGB = (s: Setup, r: Result): number => perGB(sum(r.serverCpu), s.bytes * r.serverCpu.length);
const clientCpuPerGB = (s: Setup, r: Result): number => perGB(sum(r.clientCpu), s.bytes * r.clientCpu.length);
/** The median run's: a first run that fills a cache or compiles code counts in the sum, not here. */
const serverCpuPerGBMedian = (s: Setup, r: Result): number => perGB(median(r.serverCpu), s.bytes);
const clientCpuPerGBMedian = (s: Setup, r: Result): number => perGB(median(r.clientCpu), s.bytes);
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

function reportDownload(ctx: BenchContext, s: Setup, r: Result): void {
  const params = { server: r.c.server, client: r.c.client, blksize: r.c.blksize, windowsize: r.c.windowsize, bytes: s.bytes };
  const outcome = { stalls: r.stalls, failures: r.failures, ...(r.error ? { error: r.error } : {}) };
  if (r.mbps.length === 0) {
    ctx.report({ name: 'download', value: 0, unit: 'MB/s', ...params, runs: 0, ...outcome, ...(r.stalls > 0 ? { stalled: true } : {}) });
    return;
  }
  // worst: the slowest run, so one near-stall (retransmit timeouts) is not hidden by the median.
  ctx.report({
    name: 'download',
    value: median(r.mbps),
    unit: 'MB/s',
    ...params,
    serverCpuPerGB: round(serverCpuPerGB(s, r)),
    clientCpuPerGB: round(clientCpuPerGB(s, r)),
    serverCpuPerGBMedian: round(serverCpuPerGBMedian(s, r)),
    clientCpuPerGBMedian: round(clientCpuPerGBMedian(s, r)),
    runs: r.mbps.length,
    ...outcome,
    seconds: round(median(r.seconds)),
    worst: round(Math.max(...r.seconds)),
  });
}

/**
 * ours / theirs over the runs that ended. A baseline with none ended took
 * longer than the deadline, so the ratio is at least ours / (bytes / deadline).
 */
function reportRatio(ctx: BenchContext, s: Setup, name: string, ours: Result, base: Result): void {
  const params = {
    server: ours.c.server,
    client: ours.c.client,
    baseline: `${base.c.client}+${base.c.server}`,
    blksize: ours.c.blksize,
    windowsize: ours.c.windowsize,
    ...(base.stalls > 0 ? { baselineStalls: base.stalls } : {}),
  };
  if (ours.mbps.length === 0) ctx.report({ name, value: 0, unit: 'x', ...params, stalls: ours.stalls, failures: ours.failures });
  else if (base.mbps.length > 0) ctx.report({ name, value: median(ours.mbps) / median(base.mbps), unit: 'x', ...params });
  else if (base.stalls > 0) {
    const bound = s.bytes / (s.deadlineMs / 1000) / 1e6;
    ctx.report({ name, value: median(ours.mbps) / bound, unit: 'x', ...params, lowerBound: true });
  } else ctx.log(`tftp: no ${name} for ${key(ours.c)}: the baseline failed (${base.error})`);
}

/** CPU per GB, ours / theirs (lower is better), when both have runs that ended. */
function reportCpuRatio(ctx: BenchContext, s: Setup, name: string, side: 'server' | 'client', ours: Result, base: Result): void {
  const of = side === 'server' ? serverCpuPerGB : clientCpuPerGB;
  const mid = side === 'server' ? serverCpuPerGBMedian : clientCpuPerGBMedian;
  if (ours.mbps.length === 0 || base.mbps.length === 0) return;
  const theirs = of(s, base);
  if (theirs <= 0) return ctx.log(`tftp: no ${name} for ${key(ours.c)}: the baseline's CPU read 0 (runs too short for 10 ms ticks)`);
  ctx.report({
    name,
    value: of(s, ours) / theirs,
    unit: 'x',
    server: ours.c.server,
    client: ours.c.client,
    baseline: `${base.c.client}+${base.c.server}`,
    blksize: ours.c.blksize,
    windowsize: ours.c.windowsize,
    ours: round(of(s, ours)),
    theirs: round(theirs),
    ...(mid(s, base) > 0 ? { median: mid(s, ours) / mid(s, base), oursMedian: round(mid(s, ours)), theirsMedian: round(mid(s, base)) } : {}),
  });
}

export async function run(ctx: BenchContext): Promise<void> {
  if (availableParallelism() < 2) throw new Error('the tftp bench pins the server and the client to cores 0 and 1: it needs 2 cores');
  const runs = ctx.runs ?? envInt('RSERPOOL_BENCH_TFTP_RUNS', ctx.quick ? 1 : 3);
  const deadlineMs = envInt('RSERPOOL_BENCH_TFTP_DEADLINE_S', ctx.quick ? 20 : 60) * 1000;
  const bytes = envInt('RSERPOOL_BENCH_TFTP_MB', ctx.quick ? 10 : 100) * 1_000_000;
  const groups = chosenGroups(process.env.RSERPOOL_BENCH_TFTP_CASES);
  const parts = new Set((process.env.RSERPOOL_BENCH_TFTP_PARTS ?? (groups.length < allGroups().length ? 'downloads' : 'downloads,storm')).split(','));
  for (const p of parts) if (p !== 'downloads' && p !== 'storm') throw new Error(`RSERPOOL_BENCH_TFTP_PARTS: unknown part '${p}' (have: downloads, storm)`);

  const tools = ensureTftpTools(join(repoRoot, 'test', 'bench', '.cache'), ctx.log);
  for (const m of tools.missing) ctx.log(`tftp: unavailable, its figures are left out: ${m}`);
  if (tools.tftpdHpa && process.getuid?.() !== 0) {
    ctx.log('tftp: tftpd-hpa needs root (it chroots into the served folder): left out');
    delete tools.tftpdHpa;
  }

  const tmp = mkdtempSync(join(tmpdir(), 'rserpool-tftp-bench-'));
  const servers = new Map<ServerName, Server>();
  // Interrupted: leave no servers running and no 100 MB file behind.
  const onSignal = (sig: NodeJS.Signals): void => {
    killAll();
    rmSync(tmp, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Servers that drop privileges must be able to reach the file.
    chmodSync(tmp, 0o755);
    const root = join(tmp, 'root');
    const outDir = join(tmp, 'out');
    mkdirSync(root, { mode: 0o755 });
    mkdirSync(outDir);
    if (parts.has('downloads')) {
      ctx.log(
        `tftp: ${bytes / 1e6} MB random file in ${root}; servers on core 0, clients on core ${CLIENT_CPU}; ${runs} run(s), deadline ${deadlineMs / 1000} s`,
      );
      const sha256 = makeFile(join(root, FILE), bytes);
      const s: Setup = { tools, servers, outDir, bytes, sha256, deadlineMs, log: ctx.log, warm: new Map() };
      await startServers(ctx, s, root, tmp, new Set(groups.flatMap((g) => [g.base, ...g.others].map((c) => c.server))));
      await downloads(ctx, s, runs, groups);
      await Promise.all([...servers.values()].map((sv) => sv.stop()));
      servers.clear();
      rmSync(join(root, FILE), { force: true });
    }
    if (parts.has('storm')) await bootStorm(ctx, { tools, root, outDir, tmp });
  } finally {
    await Promise.all([...servers.values()].map((sv) => sv.stop()));
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function startServers(ctx: BenchContext, s: Setup, root: string, tmp: string, needed: Set<ServerName>): Promise<void> {
  const { tools } = s;
  const busyPoll = process.env.RSERPOOL_BENCH_TFTP_BUSY_POLL;
  if (busyPoll !== undefined && !['auto', 'on', 'off'].includes(busyPoll))
    throw new Error(`RSERPOOL_BENCH_TFTP_BUSY_POLL: '${busyPoll}' is none of auto, on, off`);
  const starters: Array<[ServerName, (() => Promise<Server>) | undefined]> = [
    ['tftpd-hpa', tools.tftpdHpa ? () => startTftpdHpa(tools.tftpdHpa!, root, tools.env) : undefined],
    ['atftpd', tools.atftpd ? () => startAtftpd(tools.atftpd!, root, join(tmp, 'atftpd.log'), tools.env) : undefined],
    ['rserpool-pe', () => startPe(root, busyPoll ? { busyPoll } : {})],
  ];
  for (const [name, start] of starters) {
    if (!start || !needed.has(name)) continue;
    try {
      const server = await start();
      s.servers.set(name, server);
      ctx.log(`tftp: ${name} on 127.0.0.1:${server.port}, its CPU read from ${server.cpuSource === 'cgroup' ? 'a cgroup of its own' : '/proc'}`);
      if (name === 'tftpd-hpa' && server.cpuSource === 'proc') ctx.log('tftp: no cgroup (not root?): tftpd-hpa CPU misses its per-client children');
    } catch (err) {
      ctx.log(`tftp: ${name} did not start, its figures are left out: ${(err as Error).message}`);
    }
  }
}

/** One comparison: a baseline and the cases set against it. */
interface Group {
  name: string;
  windowed: boolean;
  base: Case;
  /** Lock-step: our PE; windowed: atftp+PE, then our client+PE. */
  others: Case[];
}

function allGroups(): Group[] {
  const lockstep: Array<[ClientName, number]> = [
    ['curl', 1468],
    ['curl', 65464],
    // tftp-hpa asks for no options: RFC 1350 lock-step with 512-byte blocks, slow against any server.
    ['tftp-hpa', 512],
  ];
  const windowed: Array<[number, number]> = [
    [1468, 8],
    [1468, 32],
    [8192, 16],
    [65464, 4],
  ];
  return [
    ...lockstep.map(([client, blksize]): Group => ({
      name: `${client}-${blksize}`,
      windowed: false,
      base: { server: 'tftpd-hpa', client, blksize, windowsize: 1 },
      others: [{ server: 'rserpool-pe', client, blksize, windowsize: 1 }],
    })),
    ...windowed.map(([blksize, windowsize]): Group => ({
      name: `${blksize}/${windowsize}`,
      windowed: true,
      base: { server: 'atftpd', client: 'atftp', blksize, windowsize },
      others: (['atftp', 'rserpool', 'rserpool-warm'] as const).map((client): Case => ({ server: 'rserpool-pe', client, blksize, windowsize })),
    })),
  ];
}

/** The groups RSERPOOL_BENCH_TFTP_CASES names (all when unset), a windowed one cut to the client named. */
function chosenGroups(spec: string | undefined): Group[] {
  const all = allGroups();
  if (spec === undefined || spec.trim() === '') return all;
  const names = new Set(
    spec
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean),
  );
  const known = all.flatMap((g) => [g.name, ...(g.windowed ? g.others.map((c) => `${c.client}-${g.name}`) : [])]);
  for (const n of names) if (!known.includes(n)) throw new Error(`RSERPOOL_BENCH_TFTP_CASES: unknown case '${n}' (have: ${known.join(', ')})`);
  return all
    .map((g) => (names.has(g.name) ? g : { ...g, others: g.others.filter((c) => g.windowed && names.has(`${c.client}-${g.name}`)) }))
    .filter((g) => g.others.length > 0);
}

async function downloads(ctx: BenchContext, s: Setup, runs: number, groups: Group[]): Promise<void> {
  const { tools, servers } = s;
  const hasClient: Record<BenchClient, boolean> = {
    curl: !!tools.curl,
    'tftp-hpa': !!tools.tftpHpa,
    atftp: !!tools.atftp,
    rserpool: true,
    'rserpool-warm': true,
  };
  const can = (c: Case): boolean => servers.has(c.server) && hasClient[c.client];

  for (const g of groups) {
    const results = await runGroup(s, [g.base, ...g.others].filter(can), runs);
    for (const w of s.warm.values()) w.stop();
    s.warm.clear();
    for (const r of results) reportDownload(ctx, s, r);
    const find = (c: Case | undefined): Result | undefined => results.find((r) => r.c === c);
    const b = find(g.base);
    if (!g.windowed) {
      // Lock-step: the same client against tftpd-hpa and our PE.
      const o = find(g.others[0]);
      if (b && o) {
        reportRatio(ctx, s, 'ratio-vs-tftpd-hpa', o, b);
        reportCpuRatio(ctx, s, 'server-cpu-ratio-vs-tftpd-hpa', 'server', o, b);
      }
      continue;
    }
    // Windowed (RFC 7440): atftp+atftpd against atftp+our PE and our client+PE.
    const a = find(g.others.find((c) => c.client === 'atftp'));
    const ours = [find(g.others.find((c) => c.client === 'rserpool')), find(g.others.find((c) => c.client === 'rserpool-warm'))];
    for (const x of [...ours, a]) {
      if (!b || !x) continue;
      reportRatio(ctx, s, 'ratio-vs-atftpd', x, b);
      reportCpuRatio(ctx, s, 'server-cpu-ratio-vs-atftpd', 'server', x, b);
    }
    // Our client against the atftp client, both on our PE.
    for (const o of ours) {
      if (!o || !a) continue;
      reportRatio(ctx, s, 'ratio-vs-atftp-client', o, a);
      reportCpuRatio(ctx, s, 'client-cpu-ratio-vs-atftp-client', 'client', o, a);
    }
  }
}
