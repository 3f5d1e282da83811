/**
 * npm run bench -- failover [--runs N] [--quick] [--json]
 * kill -9 failover as a user meets it, all real processes on loopback with
 * default settings: a registrar, three `rserpool tftp serve` PEs (one pool,
 * one cookie secret) and `rserpool tftp get --json` of a file big enough to
 * be mid-transfer (100 MB). Once a PE serves the download (its --http
 * /status) and a third of a download's time has passed, that PE gets kill
 * -9; the client's reported stall is the figure. N runs (default 20,
 * --quick 3), the killed PE restarted between them: `kill-stall` median and
 * worst, `kill-sha-ok`, `kill-failed-over` (runs whose kill landed
 * mid-transfer), `kill-extra-failovers` (more failovers in those runs, between
 * live PEs: false ones) and the client's CPU (user+sys of the whole process).
 * Then the same for `rserpool tftp put` of that size to PEs sharing a
 * writable root, killed half-way: `put-kill-stall-median` and worst,
 * `put-kill-failed-over`, `put-kill-restarts` (uploads that started over
 * from byte 0: no cookie resumed), `put-kill-sha-ok` (the stored file).
 * Then, as root with ip netns and iptables, the loss runs: the same pool in
 * a network namespace of its own, 1 % of packets dropped on INPUT there
 * (iptables statistic), N downloads of 8 MB and no kill: `loss-false-
 * failovers` (failovers although no PE died), stalls and timeouts. Servers
 * on core 0, the client on core 1. Env: RSERPOOL_BENCH_FAILOVER_MB (kill
 * runs, default 100), RSERPOOL_BENCH_FAILOVER_LOSS_MB (default 8),
 * RSERPOOL_BENCH_FAILOVER_DEADLINE_S (per download, default 60).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import {
  CLIENT_CPU,
  SERVER_CPU,
  checkFile,
  cli,
  collect,
  envInt,
  freePort,
  killAll,
  lastLine,
  makeFile,
  median,
  pinned,
  removeFile,
  runClient,
} from './_tftp-common.js';
import { lastJsonLine, parseGetLine, summarizeKills, summarizeLoss, type FailoverRun } from './_failover-stats.js';
import { hex32 } from '../../lib/cli/process.js';

const HANDLE = 'files';
const FILE = 'failover.bin';
const PES = 3;

/** A CLI process of the bench, and what it printed. */
interface Proc {
  proc: ChildProcess;
  out: () => string;
}

const exited = (p: ChildProcess): boolean => p.exitCode !== null || p.signalCode !== null;

/** Resolves once `p` has exited. */
function exit(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (exited(p)) return resolve();
    p.once('exit', () => resolve());
  });
}

/** `rserpool ARGS` pinned to `cpu` (inside namespace `ns` when given); resolves once its output matches `ready`. */
async function startCli(cpu: string, args: string[], ready: RegExp, what: string, ns: string | undefined): Promise<Proc & { match: RegExpExecArray }> {
  const argv = ns === undefined ? [...cli(), ...args] : [which('ip'), 'netns', 'exec', ns, ...cli(), ...args];
  const proc = pinned(cpu, argv, process.env);
  const stdout = collect(proc.stdout);
  const stderr = collect(proc.stderr);
  const p: Proc = { proc, out: () => `${stdout()}${stderr()}` };
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      proc.stdout?.off('data', check);
      proc.kill('SIGKILL');
      reject(new Error(`${what}: ${why} ${p.out().slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`printed nothing matching ${ready} within 30 s`), 30_000);
    const onExit = (code: number | null, sig: string | null): void => fail(`exited (${code ?? sig})`);
    function check(): void {
      const m = ready.exec(stdout());
      if (!m) return;
      clearTimeout(timer);
      proc.stdout?.off('data', check);
      proc.off('exit', onExit);
      resolve({ ...p, match: m });
    }
    proc.once('exit', onExit);
    proc.stdout?.on('data', check);
  });
}

function which(cmd: string): string {
  return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
}

interface Pool {
  registrar: Proc;
  registrarUrl: string;
  pes: (Proc & { identifier: number; status: string | undefined })[];
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** A registrar and the PEs serving `root`, on 127.0.0.1 (inside `ns` when given: no HTTP there, the bench cannot reach it). */
async function startPool(root: string, secret: string, ns: string | undefined, writable = false): Promise<Pool> {
  const registrar = await startCli(
    CLIENT_CPU,
    ['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off', '--enrp-multicast', 'off', '--print-events'],
    /asap (tcp:\/\/\S+)/,
    'registrar',
    ns,
  );
  const registrarUrl = registrar.match[1]!;
  const ports: number[] = [];
  // Free ports on the host stand for free ports in a fresh namespace too (nothing listens there).
  for (let i = 0; i < PES; i++) ports.push(await freePort());
  const startPe = async (i: number): Promise<Pool['pes'][number]> => {
    const args = ['tftp', 'serve', '--root', root, '--handle', HANDLE, '--host', '127.0.0.1', '--port', String(ports[i])];
    args.push('--registrar', registrarUrl, '--identifier', String(i + 1), '--secret', secret);
    if (ns === undefined) args.push('--http', '127.0.0.1:0');
    if (writable) args.push('--writable');
    const ready = ns === undefined ? /^http (http:\/\/\S+)\/metrics$/m : /^serving /m;
    const p = await startCli(SERVER_CPU, args, ready, `PE ${i + 1}`, ns);
    return { ...p, identifier: i + 1, status: ns === undefined ? `${p.match[1]}/status` : undefined };
  };
  const pes: Pool['pes'] = [];
  for (let i = 0; i < PES; i++) pes.push(await startPe(i));
  const stopProc = async (p: Proc): Promise<void> => {
    if (exited(p.proc)) return;
    p.proc.kill('SIGTERM');
    const timer = setTimeout(() => p.proc.kill('SIGKILL'), 5_000);
    await exit(p.proc);
    clearTimeout(timer);
  };
  return {
    registrar,
    registrarUrl,
    pes,
    async restart(i) {
      pes[i] = await startPe(i);
    },
    async stop() {
      await Promise.all(pes.map(stopProc));
      await stopProc(registrar);
    },
  };
}

/** Active transfers of a PE (its /status), or undefined when it does not answer. */
async function activeTransfers(statusUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(statusUrl, { signal: AbortSignal.timeout(500) });
    const j = (await res.json()) as { activeTransfers?: number };
    return j.activeTransfers;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** kill -9 of the PE that serves the transfer, `afterMs` after it is seen serving; `victim()`: its index, -1 if none was. */
function killServing(pool: Pool, afterMs: number): { during: (done: () => boolean) => Promise<string | undefined>; victim: () => number } {
  let victim = -1;
  const during = async (done: () => boolean): Promise<string | undefined> => {
    while (victim < 0 && !done()) {
      const active = await Promise.all(pool.pes.map((p) => (p.status && !exited(p.proc) ? activeTransfers(p.status) : Promise.resolve(undefined))));
      victim = active.findIndex((n) => (n ?? 0) > 0);
      if (victim < 0) await sleep(5);
    }
    if (victim < 0) return undefined;
    await sleep(afterMs);
    pool.pes[victim]!.proc.kill('SIGKILL');
    return hex32(pool.pes[victim]!.identifier);
  };
  return { during, victim: () => victim };
}

function getArgv(registrar: string, out: string, ns: string | undefined): string[] {
  const args = ['tftp', 'get', `${HANDLE}:/${FILE}`, '-o', out, '--registrar', registrar, '--json', '--no-progress'];
  return ns === undefined ? [...cli(), ...args] : [which('ip'), 'netns', 'exec', ns, ...cli(), ...args];
}

async function download(
  pool: Pool,
  dir: string,
  bytes: number,
  sha: string,
  deadlineMs: number,
  ns: string | undefined,
  during?: (done: () => boolean) => Promise<string | undefined>,
): Promise<FailoverRun> {
  const out = join(dir, 'out.bin');
  removeFile(out);
  let finished = false;
  const client = runClient(CLIENT_CPU, getArgv(pool.registrarUrl, out, ns), process.env, deadlineMs).finally(() => (finished = true));
  const alive = pool.pes.map((p) => !exited(p.proc));
  const killed = during ? await during(() => finished) : undefined;
  const c = await client;
  const line = c.code === 0 ? parseGetLine(c.stdout) : undefined;
  const shaOk = line !== undefined && (await checkFile(out, bytes, sha)) === undefined;
  removeFile(out);
  const peDied = pool.pes.some((p, i) => alive[i] && exited(p.proc) && hex32(p.identifier) !== killed);
  const error = line ? undefined : lastLine(c.stderr) || lastLine(c.stdout) || `exit ${c.code}`;
  return { line, shaOk, cpuS: c.cpu, timedOut: c.timedOut, ...(killed !== undefined ? { killed } : {}), peDied, ...(error ? { error } : {}) };
}

async function killRuns(ctx: BenchContext, dir: string, runs: number, deadlineMs: number): Promise<void> {
  const bytes = envInt('RSERPOOL_BENCH_FAILOVER_MB', 100) * 1_000_000;
  const root = join(dir, 'kill-root');
  mkdirSync(root);
  const sha = makeFile(join(root, FILE), bytes);
  const pool = await startPool(root, randomBytes(32).toString('hex'), undefined);
  try {
    // How long a download takes here: the kill comes a third of that into one.
    const warm = await download(pool, dir, bytes, sha, deadlineMs, undefined);
    if (!warm.line || !warm.shaOk) throw new Error(`failover: the warm-up download failed ${pool.registrar.out().slice(-1000)}`);
    const killAfterMs = Math.max(50, warm.line.elapsedMs / 3);
    ctx.log(`failover: ${bytes / 1e6} MB in ${warm.line.elapsedMs} ms without a kill; kill -9 ${Math.round(killAfterMs)} ms into a transfer`);
    const results: FailoverRun[] = [];
    for (let r = 0; r < runs; r++) {
      const kill = killServing(pool, killAfterMs);
      const result = await download(pool, dir, bytes, sha, deadlineMs, undefined, kill.during);
      const victim = kill.victim();
      results.push(result);
      const l = result.line;
      ctx.log(
        `failover: run ${r + 1}/${runs}: killed ${result.killed ?? 'none'}, ${l ? `failovers ${l.failovers}, stall ${l.stallMs} ms, served by ${l.servedBy.map((s) => s.pe).join(' -> ')}` : `failed: ${result.error}`}, sha ${result.shaOk ? 'ok' : 'WRONG'}, cpu ${result.cpuS.toFixed(2)} s`,
      );
      if (victim >= 0) {
        await exit(pool.pes[victim]!.proc);
        await pool.restart(victim);
      }
    }
    const s = summarizeKills(results);
    const params = { mb: bytes / 1e6, pes: PES, runs };
    ctx.report({ name: 'kill-stall-median', value: s.stallMedianMs, unit: 'ms', ...params });
    ctx.report({ name: 'kill-stall-worst', value: s.stallWorstMs, unit: 'ms', ...params });
    ctx.report({ name: 'kill-failed-over', value: s.failedOver, unit: 'runs', ...params });
    ctx.report({ name: 'kill-extra-failovers', value: s.extraFailovers, unit: 'count', ...params });
    ctx.report({ name: 'kill-sha-ok', value: s.shaOk, unit: 'runs', ...params });
    ctx.report({ name: 'kill-client-cpu-median', value: s.cpuMedianS, unit: 's', ...params });
  } finally {
    await pool.stop();
  }
}

/** The fields of `tftp put --json` the bench reads. */
interface PutLine {
  bytes: number;
  failovers: number;
  stallMs: number;
  restarts: number;
  elapsedMs: number;
}

function parsePutLine(stdout: string): PutLine | undefined {
  return lastJsonLine(stdout, (raw) => {
    const j = raw as Partial<PutLine>;
    if (typeof j.bytes !== 'number' || typeof j.failovers !== 'number' || typeof j.stallMs !== 'number' || typeof j.elapsedMs !== 'number') return undefined;
    return { bytes: j.bytes, failovers: j.failovers, stallMs: j.stallMs, restarts: j.restarts ?? 0, elapsedMs: j.elapsedMs };
  });
}

/**
 * kill -9 of the PE taking a `rserpool tftp put` half-way (by the time one
 * without a kill takes): the upload goes on at another PE from its last
 * cookie (the PEs share the root, so the temporary file is there) and the
 * stored file must be the one sent.
 */
async function putKillRuns(ctx: BenchContext, dir: string, runs: number, deadlineMs: number): Promise<void> {
  const bytes = envInt('RSERPOOL_BENCH_FAILOVER_MB', 100) * 1_000_000;
  const root = join(dir, 'put-root');
  mkdirSync(root);
  const src = join(dir, 'put-src.bin');
  const sha = makeFile(src, bytes);
  const stored = join(root, FILE);
  const pool = await startPool(root, randomBytes(32).toString('hex'), undefined, true);
  // What a run leaves in the root: the file, and a killed PE's temporary one no cookie named.
  const clear = (): void => {
    for (const n of readdirSync(root)) if (n === FILE || n.startsWith(`.${FILE}.`)) removeFile(join(root, n));
  };
  const put = async (
    during?: (done: () => boolean) => Promise<string | undefined>,
  ): Promise<{ line?: PutLine; shaOk: boolean; killed?: string; error?: string }> => {
    clear();
    let finished = false;
    const argv = [...cli(), 'tftp', 'put', src, `${HANDLE}:/${FILE}`, '--registrar', pool.registrarUrl, '--json', '--no-progress'];
    const client = runClient(CLIENT_CPU, argv, process.env, deadlineMs).finally(() => (finished = true));
    const killed = during ? await during(() => finished) : undefined;
    const c = await client;
    const line = c.code === 0 ? parsePutLine(c.stdout) : undefined;
    const shaOk = line !== undefined && (await checkFile(stored, bytes, sha)) === undefined;
    const error = line ? undefined : lastLine(c.stderr) || lastLine(c.stdout) || `exit ${c.code}`;
    return { ...(line ? { line } : {}), shaOk, ...(killed !== undefined ? { killed } : {}), ...(error ? { error } : {}) };
  };
  try {
    const warm = await put();
    if (!warm.line || !warm.shaOk) throw new Error(`failover: the warm-up upload failed: ${warm.error ?? 'wrong file'} ${pool.registrar.out().slice(-1000)}`);
    const killAfterMs = Math.max(50, warm.line.elapsedMs / 2);
    ctx.log(`failover: put of ${bytes / 1e6} MB in ${warm.line.elapsedMs} ms without a kill; kill -9 ${Math.round(killAfterMs)} ms into an upload`);
    const stalls: number[] = [];
    let failedOver = 0;
    let extra = 0;
    let restarts = 0;
    let shaOk = 0;
    for (let r = 0; r < runs; r++) {
      const kill = killServing(pool, killAfterMs);
      const result = await put(kill.during);
      const victim = kill.victim();
      const l = result.line;
      if (result.shaOk) shaOk++;
      if (l && result.killed !== undefined && l.failovers >= 1) {
        failedOver++;
        extra += l.failovers - 1;
        stalls.push(l.stallMs);
      }
      if (l) restarts += l.restarts;
      ctx.log(
        `failover: put run ${r + 1}/${runs}: killed ${result.killed ?? 'none'}, ${l ? `failovers ${l.failovers}, stall ${l.stallMs} ms, restarts ${l.restarts}, ${l.elapsedMs} ms` : `failed: ${result.error}`}, sha ${result.shaOk ? 'ok' : 'WRONG'}`,
      );
      if (victim >= 0) {
        await exit(pool.pes[victim]!.proc);
        await pool.restart(victim);
      }
    }
    const params = { mb: bytes / 1e6, pes: PES, runs };
    if (stalls.length > 0) {
      ctx.report({ name: 'put-kill-stall-median', value: median(stalls), unit: 'ms', ...params });
      ctx.report({ name: 'put-kill-stall-worst', value: Math.max(...stalls), unit: 'ms', ...params });
    }
    ctx.report({ name: 'put-kill-failed-over', value: failedOver, unit: 'runs', ...params });
    ctx.report({ name: 'put-kill-extra-failovers', value: extra, unit: 'count', ...params });
    ctx.report({ name: 'put-kill-restarts', value: restarts, unit: 'count', ...params });
    ctx.report({ name: 'put-kill-sha-ok', value: shaOk, unit: 'runs', ...params });
  } finally {
    await pool.stop();
  }
}

function canNamespace(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    execFileSync('iptables', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function lossRuns(ctx: BenchContext, dir: string, runs: number, deadlineMs: number): Promise<void> {
  if (!canNamespace()) {
    ctx.log('failover: loss runs left out (they need root, ip netns and iptables)');
    return;
  }
  const bytes = envInt('RSERPOOL_BENCH_FAILOVER_LOSS_MB', 8) * 1_000_000;
  const root = join(dir, 'loss-root');
  mkdirSync(root);
  const sha = makeFile(join(root, FILE), bytes);
  const ns = `rspbench${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  let pool: Pool | undefined;
  try {
    const inNs = (args: string[]): void => void execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    pool = await startPool(root, randomBytes(32).toString('hex'), ns);
    // Loss only once the pool is up: registration is not what is measured.
    inNs(['iptables', '-w', '-A', 'INPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.01', '-j', 'DROP']);
    const results: FailoverRun[] = [];
    for (let r = 0; r < runs; r++) {
      const result = await download(pool, dir, bytes, sha, deadlineMs, ns);
      results.push(result);
      const l = result.line;
      ctx.log(
        `failover: loss run ${r + 1}/${runs}: ${l ? `failovers ${l.failovers}, stall ${l.stallMs} ms, timeouts ${l.timeouts}, ${l.elapsedMs} ms` : result.timedOut ? 'stopped at the deadline' : `failed: ${result.error}`}, sha ${result.shaOk ? 'ok' : 'WRONG'}${result.peDied ? ', a PE died' : ''}`,
      );
    }
    const s = summarizeLoss(results);
    const params = { mb: bytes / 1e6, pes: PES, runs, loss: '1%' };
    ctx.report({ name: 'loss-false-failovers', value: s.falseFailovers, unit: 'count', ...params });
    ctx.report({ name: 'loss-runs-with-false-failover', value: s.runsWithFalseFailover, unit: 'runs', ...params });
    ctx.report({ name: 'loss-stall-worst', value: s.stallWorstMs, unit: 'ms', ...params });
    ctx.report({ name: 'loss-timeouts', value: s.timeouts, unit: 'count', ...params });
    ctx.report({ name: 'loss-unfinished', value: s.unfinished, unit: 'runs', ...params });
    ctx.report({ name: 'loss-sha-ok', value: s.shaOk, unit: 'runs', ...params });
    ctx.report({ name: 'loss-elapsed-median', value: s.elapsedMedianMs, unit: 'ms', ...params });
  } finally {
    await pool?.stop();
    removeNamespace(ns);
  }
}

/** Whatever still runs in the namespace goes with it. */
function removeNamespace(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
  } catch {
    // nothing left, or no namespace
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  if (availableParallelism() < 2) throw new Error('failover pins servers and the client to cores 0 and 1: it needs 2 cores');
  const runs = ctx.runs ?? (ctx.quick ? 3 : 20);
  const deadlineMs = envInt('RSERPOOL_BENCH_FAILOVER_DEADLINE_S', 60) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'rserpool-failover-'));
  const ns = `rspbench${process.pid}`;
  const cleanup = (): void => {
    killAll();
    removeNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Bounded whatever happens: every download has its deadline, and the whole suite twice that per run.
  const cap = setTimeout(
    () => {
      ctx.log('failover: over the time cap, stopping');
      cleanup();
      process.exit(1);
    },
    (3 * runs + 6) * 2 * deadlineMs,
  );
  cap.unref();
  try {
    await killRuns(ctx, dir, runs, deadlineMs);
    await putKillRuns(ctx, dir, runs, deadlineMs);
    await lossRuns(ctx, dir, runs, deadlineMs);
  } finally {
    clearTimeout(cap);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
  }
}
