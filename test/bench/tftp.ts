/**
 * npm run bench -- tftp [--quick] [--json]
 * Downloads of one random file (100 MB; --quick 10 MB), servers pinned to
 * core 0 and clients to core 1 (taskset: lock-step TFTP on 2 cores depends
 * on it), every download checked byte-identical (SHA-256):
 * - lock-step: tftpd-hpa and our PE, each with curl at blksize 1468 and
 *   65464 and with tftp-hpa (which asks no options: 512-byte blocks);
 * - windowed (RFC 7440; tftpd-hpa has none): atftp+atftpd, atftp+our PE and
 *   our client+PE at blksize/windowsize 1468/8, 1468/32, 8192/16, 65464/4.
 * Figures: `download` in MB/s (10^6 bytes/s), the median of the runs
 * (interleaved with the baseline's), `worst` the slowest run in s; a
 * download past the deadline is killed and reported as a stall (0,
 * stalled: true), a wrong file or failed client as an error (0, error).
 * `ratio-vs-tftpd-hpa` and `ratio-vs-atftpd` (ours / theirs, same client or
 * our client, same settings), unit x; against a stalled baseline it is a
 * lower bound (lowerBound: true). The Debian servers are fetched into
 * test/bench/.cache/ when missing (see _tftp-tools.ts); tftpd-hpa needs root
 * (it chroots). Env: RSERPOOL_BENCH_TFTP_RUNS (default 3; --quick 1),
 * RSERPOOL_BENCH_TFTP_DEADLINE_S (default 60; --quick 20).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import type { BenchContext } from './context.js';
import { ensureTftpTools, type TftpTools } from './_tftp-tools.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The checkout, whether this runs compiled (dist-bench/test/bench) or from source. */
const repoRoot = ((): string => {
  for (let d = here; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return join(here, '..', '..');
  }
})();
/** Our helper processes run as this suite does: compiled by `npm run bench`, else through tsx. */
function helper(name: string): string[] {
  return import.meta.url.endsWith('.js') ? [process.execPath, join(here, `${name}.js`)] : [process.execPath, '--import', 'tsx', join(here, `${name}.ts`)];
}
const SERVER_CPU = '0';
const CLIENT_CPU = '1';
const FILE = 'file.bin';

type ServerName = 'tftpd-hpa' | 'atftpd' | 'rserpool-pe';
type ClientName = 'curl' | 'tftp-hpa' | 'atftp' | 'rserpool';

interface Case {
  server: ServerName;
  client: ClientName;
  blksize: number;
  windowsize: number;
}

interface Result {
  c: Case;
  /** MB/s of each completed run. */
  mbps: number[];
  seconds: number[];
  stalled?: boolean;
  error?: string;
}

interface Server {
  name: ServerName;
  port: number;
  proc: ChildProcess;
  /** The end of what it printed, for a failure message. */
  tail(): string;
  stop(): Promise<void>;
}

interface Setup {
  tools: TftpTools;
  servers: Map<ServerName, Server>;
  outDir: string;
  bytes: number;
  sha256: string;
  deadlineMs: number;
  log(line: string): void;
}

const key = (c: Case): string => `${c.client}@${c.server} ${c.blksize}/${c.windowsize}`;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not '${v}'`);
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Keeps the last `max` characters of a stream (atftp prints a line per retry). */
function collect(stream: NodeJS.ReadableStream | null, max = 16_384): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => {
    text += d.toString();
    if (text.length > 2 * max) text = text.slice(-max);
  });
  return () => text.slice(-max);
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** Random bytes into `path`; returns their SHA-256. */
function makeFile(path: string, bytes: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, buf.length);
      const part = buf.subarray(0, n);
      randomFillSync(part);
      hash.update(part);
      writeSync(fd, part);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (d) => hash.update(d))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** A free UDP port on 127.0.0.1 for a server that cannot take port 0 (small race: fine for a bench). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TFTP server on `port` answers an RRQ (for a missing file) with anything. */
function answers(port: number, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const rrq = encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: '.bench-probe-missing', mode: 'octet', options: [] });
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const finish = (err?: Error): void => {
      clearInterval(resend);
      clearTimeout(timer);
      proc.off('exit', onExit);
      s.close();
      if (err) reject(err);
      else resolve();
    };
    const onExit = (code: number | null, sig: string | null): void => finish(new Error(`exited (${code ?? sig}) before answering`));
    const send = (): void => s.send(rrq, port, '127.0.0.1');
    // The server may not be bound yet: ask again until it answers.
    const resend = setInterval(send, 250);
    const timer = setTimeout(() => finish(new Error(`no answer on 127.0.0.1:${port} within ${timeoutMs} ms`)), timeoutMs);
    proc.once('exit', onExit);
    s.once('message', () => finish());
    s.once('error', (err) => finish(err));
    s.bind(0, '127.0.0.1', send);
  });
}

/** Every process this suite started and that still runs, to end them if the bench is interrupted. */
const live = new Set<ChildProcess>();

function pinned(cpu: string, argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const proc = spawn('taskset', ['-c', cpu, ...argv], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

function serverOf(name: ServerName, port: number, proc: ChildProcess): Server {
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  return {
    name,
    port,
    proc,
    tail: () => `${out()}${err()}`.trim(),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startTftpdHpa(bin: string, root: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await freePort();
  // -L: foreground; -s: chroot to root (so requests name the file alone); -B: allow the largest blksize.
  const proc = pinned(SERVER_CPU, [bin, '-L', '-s', root, '-a', `127.0.0.1:${port}`, '-B', '65464', '-u', 'root'], env);
  const server = serverOf('tftpd-hpa', port, proc);
  await answers(port, proc, 15_000).catch(async (err: Error) => {
    await server.stop();
    throw new Error(`tftpd-hpa: ${err.message} ${server.tail()}`);
  });
  return server;
}

async function startAtftpd(bin: string, root: string, logFile: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await freePort();
  const user = userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  const argv = [bin, '--daemon', '--no-fork', '--port', String(port), '--bind-address', '127.0.0.1', '--user', user, '--group', group];
  argv.push('--logfile', logFile, '--no-multicast', root);
  const proc = pinned(SERVER_CPU, argv, env);
  const server = serverOf('atftpd', port, proc);
  await answers(port, proc, 15_000).catch(async (err: Error) => {
    await server.stop();
    throw new Error(`atftpd: ${err.message} ${server.tail()}`);
  });
  return server;
}

function startPe(root: string): Promise<Server> {
  const proc = pinned(SERVER_CPU, [...helper('_tftp-server'), root], process.env);
  let buffered = '';
  return new Promise((resolve, reject) => {
    const server = serverOf('rserpool-pe', 0, proc);
    const fail = (why: string): void => {
      clearTimeout(timer);
      void server.stop().then(() => reject(new Error(`our PE: ${why} ${server.tail()}`)));
    };
    const timer = setTimeout(() => fail('printed no `listening` line within 30 s'), 30_000);
    const onExit = (code: number | null, sig: string | null): void => fail(`exited (${code ?? sig})`);
    proc.once('exit', onExit);
    proc.stdout?.on('data', function onData(d: Buffer) {
      buffered += d.toString();
      const m = /^listening (\S+) (\d+)$/m.exec(buffered);
      if (!m) return;
      proc.stdout?.off('data', onData);
      proc.off('exit', onExit);
      clearTimeout(timer);
      resolve({ ...server, port: Number(m[2]) });
    });
  });
}

function clientArgv(s: Setup, c: Case, port: number, out: string): string[] {
  const t = s.tools;
  switch (c.client) {
    case 'curl':
      return [t.curl!, '-s', '-S', '-o', out, '--tftp-blksize', String(c.blksize), `tftp://127.0.0.1:${port}/${FILE}`];
    case 'tftp-hpa':
      return [t.tftpHpa!, '127.0.0.1', String(port), '-m', 'octet', '-c', 'get', FILE, out];
    case 'atftp':
      return [
        t.atftp!,
        '--get',
        '-r',
        FILE,
        '-l',
        out,
        '--option',
        `blksize ${c.blksize}`,
        '--option',
        `windowsize ${c.windowsize}`,
        '127.0.0.1',
        String(port),
      ];
    case 'rserpool':
      return [...helper('_tftp-client'), '127.0.0.1', String(port), FILE, out, String(c.blksize), String(c.windowsize)];
  }
}

type Run = { ok: true; seconds: number } | { ok: false; stalled: boolean; error: string };

/**
 * One pinned download, timed by the client process's wall clock: that counts
 * its exec too (atftp ~2 ms, curl ~10 ms here). Ours is timed by its own
 * figure, without Node's start-up (see _tftp-client.ts).
 */
async function download(s: Setup, c: Case): Promise<Run> {
  const server = s.servers.get(c.server)!;
  if (server.proc.exitCode !== null || server.proc.signalCode !== null)
    return { ok: false, stalled: false, error: `${c.server} exited: ${lastLine(server.tail())}` };
  const out = join(s.outDir, `${c.client}-${c.server}-${c.blksize}-${c.windowsize}.bin`);
  rmSync(out, { force: true });
  const start = performance.now();
  const proc = pinned(CLIENT_CPU, clientArgv(s, c, server.port, out), s.tools.env);
  const stdout = collect(proc.stdout);
  const stderr = collect(proc.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, s.deadlineMs);
  const { code, ms } = await new Promise<{ code: number | string; ms: number }>((resolve) => {
    let ms = 0;
    proc.once('exit', () => (ms = performance.now() - start));
    proc.once('error', (err) => resolve({ code: err.message, ms: performance.now() - start }));
    proc.once('close', (exitCode, sig) => resolve({ code: exitCode ?? sig ?? -1, ms }));
  });
  clearTimeout(timer);
  try {
    if (timedOut) return { ok: false, stalled: true, error: `no end within ${s.deadlineMs / 1000} s` };
    if (code !== 0) {
      const said = lastLine(stderr()) || lastLine(stdout());
      return { ok: false, stalled: false, error: `exit ${code}${said ? `: ${said}` : ''}` };
    }
    let seconds = ms / 1000;
    if (c.client === 'rserpool') {
      const own = JSON.parse(lastLine(stdout())) as { ms: number; blksize: number; windowsize: number };
      seconds = own.ms / 1000;
      if (own.blksize !== c.blksize || own.windowsize !== c.windowsize) s.log(`tftp: ${key(c)}: the PE granted ${own.blksize}/${own.windowsize}`);
    }
    let size = -1;
    try {
      size = statSync(out).size;
    } catch {
      // no file: reported below
    }
    if (size !== s.bytes) return { ok: false, stalled: false, error: `wrong file: ${size < 0 ? 'none written' : `${size} bytes, want ${s.bytes}`}` };
    if ((await sha256File(out)) !== s.sha256) return { ok: false, stalled: false, error: 'wrong file: SHA-256 differs' };
    return { ok: true, seconds };
  } finally {
    rmSync(out, { force: true });
  }
}

/** Runs the cases of one comparison interleaved, `runs` times; a case that stalls or fails is not run again. */
async function runGroup(s: Setup, cases: Case[], runs: number): Promise<Result[]> {
  const results = cases.map((c): Result => ({ c, mbps: [], seconds: [] }));
  for (let i = 0; i < runs; i++) {
    for (const r of results) {
      if (r.stalled || r.error) continue;
      const got = await download(s, r.c);
      if (got.ok) {
        r.seconds.push(got.seconds);
        r.mbps.push(s.bytes / got.seconds / 1e6);
        s.log(`tftp: ${key(r.c)} run ${i + 1}: ${(s.bytes / got.seconds / 1e6).toFixed(1)} MB/s (${got.seconds.toFixed(2)} s)`);
      } else {
        if (got.stalled) r.stalled = true;
        r.error = got.error;
        s.log(`tftp: ${key(r.c)} run ${i + 1}: ${got.stalled ? 'STALLED' : 'ERROR'} ${got.error}`);
      }
    }
  }
  return results;
}

function reportDownload(ctx: BenchContext, s: Setup, r: Result): void {
  const params = { server: r.c.server, client: r.c.client, blksize: r.c.blksize, windowsize: r.c.windowsize, bytes: s.bytes };
  if (r.stalled) ctx.report({ name: 'download', value: 0, unit: 'MB/s', ...params, stalled: true });
  else if (r.error) ctx.report({ name: 'download', value: 0, unit: 'MB/s', ...params, error: r.error });
  else {
    // worst: the slowest run, so one near-stall (retransmit timeouts) is not hidden by the median.
    const seconds = (x: number): number => Number(x.toFixed(3));
    ctx.report({
      name: 'download',
      value: median(r.mbps),
      unit: 'MB/s',
      ...params,
      runs: r.mbps.length,
      seconds: seconds(median(r.seconds)),
      worst: seconds(Math.max(...r.seconds)),
    });
  }
}

/** ours / theirs. A stalled baseline took longer than the deadline, so the ratio is at least ours / (bytes / deadline). */
function reportRatio(ctx: BenchContext, s: Setup, name: string, ours: Result, base: Result): void {
  const params = {
    server: ours.c.server,
    client: ours.c.client,
    baseline: `${base.c.client}+${base.c.server}`,
    blksize: ours.c.blksize,
    windowsize: ours.c.windowsize,
  };
  if (ours.stalled) ctx.report({ name, value: 0, unit: 'x', ...params, stalled: true });
  else if (ours.error) ctx.report({ name, value: 0, unit: 'x', ...params, error: ours.error });
  else if (base.stalled) {
    const bound = s.bytes / (s.deadlineMs / 1000) / 1e6;
    ctx.report({ name, value: median(ours.mbps) / bound, unit: 'x', ...params, baselineStalled: true, lowerBound: true });
  } else if (base.error) ctx.log(`tftp: no ${name} for ${key(ours.c)}: the baseline failed (${base.error})`);
  else ctx.report({ name, value: median(ours.mbps) / median(base.mbps), unit: 'x', ...params });
}

export async function run(ctx: BenchContext): Promise<void> {
  if (availableParallelism() < 2) throw new Error('the tftp bench pins the server and the client to cores 0 and 1: it needs 2 cores');
  const runs = envInt('RSERPOOL_BENCH_TFTP_RUNS', ctx.quick ? 1 : 3);
  const deadlineMs = envInt('RSERPOOL_BENCH_TFTP_DEADLINE_S', ctx.quick ? 20 : 60) * 1000;
  const bytes = ctx.quick ? 10_000_000 : 100_000_000;

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
    for (const p of live) p.kill('SIGKILL');
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
    ctx.log(
      `tftp: ${bytes / 1e6} MB random file in ${root}; servers on core ${SERVER_CPU}, clients on core ${CLIENT_CPU}; ${runs} run(s), deadline ${deadlineMs / 1000} s`,
    );
    const sha256 = makeFile(join(root, FILE), bytes);
    const s: Setup = { tools, servers, outDir, bytes, sha256, deadlineMs, log: ctx.log };

    const starters: Array<[ServerName, (() => Promise<Server>) | undefined]> = [
      ['tftpd-hpa', tools.tftpdHpa ? () => startTftpdHpa(tools.tftpdHpa!, root, tools.env) : undefined],
      ['atftpd', tools.atftpd ? () => startAtftpd(tools.atftpd!, root, join(tmp, 'atftpd.log'), tools.env) : undefined],
      ['rserpool-pe', () => startPe(root)],
    ];
    for (const [name, start] of starters) {
      if (!start) continue;
      try {
        const server = await start();
        servers.set(name, server);
        ctx.log(`tftp: ${name} on 127.0.0.1:${server.port}`);
      } catch (err) {
        ctx.log(`tftp: ${name} did not start, its figures are left out: ${(err as Error).message}`);
      }
    }
    const hasClient: Record<ClientName, boolean> = { curl: !!tools.curl, 'tftp-hpa': !!tools.tftpHpa, atftp: !!tools.atftp, rserpool: true };
    const can = (c: Case): boolean => servers.has(c.server) && hasClient[c.client];

    // Lock-step: the same client against tftpd-hpa and our PE.
    const lockstep: Array<[ClientName, number]> = [
      ['curl', 1468],
      ['curl', 65464],
      // tftp-hpa asks for no options: RFC 1350 lock-step with 512-byte blocks, slow against any server.
      ['tftp-hpa', 512],
    ];
    for (const [client, blksize] of lockstep) {
      const base: Case = { server: 'tftpd-hpa', client, blksize, windowsize: 1 };
      const ours: Case = { server: 'rserpool-pe', client, blksize, windowsize: 1 };
      const results = await runGroup(s, [base, ours].filter(can), runs);
      for (const r of results) reportDownload(ctx, s, r);
      const [b, o] = [results.find((r) => r.c === base), results.find((r) => r.c === ours)];
      if (b && o) reportRatio(ctx, s, 'ratio-vs-tftpd-hpa', o, b);
    }

    // Windowed (RFC 7440): atftp+atftpd against atftp+our PE and our client+PE.
    const windowed: Array<[number, number]> = [
      [1468, 8],
      [1468, 32],
      [8192, 16],
      [65464, 4],
    ];
    for (const [blksize, windowsize] of windowed) {
      const base: Case = { server: 'atftpd', client: 'atftp', blksize, windowsize };
      const atftpPe: Case = { server: 'rserpool-pe', client: 'atftp', blksize, windowsize };
      const ours: Case = { server: 'rserpool-pe', client: 'rserpool', blksize, windowsize };
      const results = await runGroup(s, [base, atftpPe, ours].filter(can), runs);
      for (const r of results) reportDownload(ctx, s, r);
      const b = results.find((r) => r.c === base);
      for (const c of [ours, atftpPe]) {
        const o = results.find((r) => r.c === c);
        if (b && o) reportRatio(ctx, s, 'ratio-vs-atftpd', o, b);
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((sv) => sv.stop()));
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
