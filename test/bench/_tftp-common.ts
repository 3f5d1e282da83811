/**
 * What the tftp benches share: pinned processes, the servers (tftpd-hpa,
 * atftpd, our PE alone or registered in a pool, a registrar, the gateway),
 * one client download timed and measured for CPU, files and their SHA-256.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { closeSync, createReadStream, existsSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { childrenOf, meterOf, threadCount, type CpuMeter } from './_tftp-cpu.js';
import type { TftpTools } from './_tftp-tools.js';

const here = dirname(fileURLToPath(import.meta.url));
const compiled = import.meta.url.endsWith('.js');
/** The checkout, whether this runs compiled (dist-bench/test/bench) or from source. */
export const repoRoot = ((): string => {
  for (let d = here; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return join(here, '..', '..');
  }
})();
/** Our helper processes run as this suite does: compiled by `npm run bench`, else through tsx. */
export function helper(name: string): string[] {
  return compiled ? [process.execPath, join(here, `${name}.js`)] : [process.execPath, '--import', 'tsx', join(here, `${name}.ts`)];
}
/** The rserpool CLI, compiled with the bench (dist-bench/lib/cli/main.js) or from source. */
export function cli(): string[] {
  return compiled
    ? [process.execPath, join(here, '..', '..', 'lib', 'cli', 'main.js')]
    : [process.execPath, '--import', 'tsx', join(here, '..', '..', 'lib', 'cli', 'main.ts')];
}

export const SERVER_CPU = '0';
export const CLIENT_CPU = '1';
export const FILE = 'file.bin';

export type ServerName = 'tftpd-hpa' | 'atftpd' | 'rserpool-pe' | 'gateway' | 'registrar';
export type ClientName = 'curl' | 'tftp-hpa' | 'atftp' | 'rserpool';

export function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not '${v}'`);
  return n;
}

export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

/** The q-quantile by linear interpolation between order statistics (q = 0.5: the median). */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Keeps the last `max` characters of a stream (atftp prints a line per retry). */
export function collect(stream: Readable | null, max = 16_384): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => {
    text += d.toString();
    if (text.length > 2 * max) text = text.slice(-max);
  });
  return () => text.slice(-max);
}

export function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** Random bytes into `path`; returns their SHA-256. */
export function makeFile(path: string, bytes: number): string {
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

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (d) => hash.update(d))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Why `path` is not the file wanted, or undefined when it is (size, then SHA-256). */
export async function checkFile(path: string, bytes: number, sha256: string): Promise<string | undefined> {
  let size = -1;
  try {
    size = statSync(path).size;
  } catch {
    // no file: reported below
  }
  if (size !== bytes) return `wrong file: ${size < 0 ? 'none written' : `${size} bytes, want ${bytes}`}`;
  if ((await sha256File(path)) !== sha256) return 'wrong file: SHA-256 differs';
  return undefined;
}

/** A free UDP port on 127.0.0.1 for a server that cannot take port 0 (small race: fine for a bench). */
export function freePort(): Promise<number> {
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

/** Every process (group) the benches started and that still runs, to end them if a bench is interrupted. */
const live = new Set<ChildProcess>();

/** Kills every process the benches started (their groups: a client's wrapper and the client). */
export function killAll(): void {
  for (const p of live) killGroup(p);
}

function killGroup(p: ChildProcess): void {
  try {
    if (p.pid) process.kill(-p.pid, 'SIGKILL');
  } catch {
    p.kill('SIGKILL');
  }
}

/** `argv` on `cpu` (taskset execs it: the pid is the program's), in a process group of its own. */
export function pinned(cpu: string, argv: string[], env: NodeJS.ProcessEnv, extraFd = false, stdin = false): ChildProcess {
  const stdio: Array<'ignore' | 'pipe'> = [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(extraFd ? (['pipe'] as const) : [])];
  const proc = spawn('taskset', ['-c', cpu, ...argv], { env, cwd: repoRoot, stdio, detached: true });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

export interface Server {
  name: ServerName;
  port: number;
  proc: ChildProcess;
  /** The end of what it printed, for a failure message. */
  tail(): string;
  /** CPU seconds so far (user+sys, with its threads' and children's); undefined once it exited. */
  cpu(): number | undefined;
  /** Where cpu() comes from (see _tftp-cpu.ts). */
  cpuSource: CpuMeter['source'];
  /** True when it serves no transfer (tftpd-hpa: no child; atftpd: its idle threads; ours: `active 0`). */
  idle(): boolean;
  stop(): Promise<void>;
}

function serverOf(name: ServerName, port: number, proc: ChildProcess, idle: () => boolean): Server {
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  const meter = meterOf(proc.pid!);
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  }).then(() => meter.close());
  return {
    name,
    port,
    proc,
    tail: () => `${out()}${err()}`.trim(),
    cpu: () => meter.read(),
    cpuSource: meter.source,
    idle,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(proc), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Waits (polling, up to `ms`) until every server is idle, so the CPU read after a download has its end too; false if one is not. */
export async function settle(servers: Server[], ms = 5_000): Promise<boolean> {
  const end = performance.now() + ms;
  while (!servers.every((s) => s.idle())) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

export async function startTftpdHpa(bin: string, root: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await freePort();
  // -L: foreground; -s: chroot to root (so requests name the file alone); -B: allow the largest blksize.
  const proc = pinned(SERVER_CPU, [bin, '-L', '-s', root, '-a', `127.0.0.1:${port}`, '-B', '65464', '-u', 'root'], env);
  const server = serverOf('tftpd-hpa', port, proc, () => childrenOf(proc.pid!).length === 0);
  await answers(port, proc, 15_000).catch(async (err: Error) => {
    await server.stop();
    throw new Error(`tftpd-hpa: ${err.message} ${server.tail()}`);
  });
  // The probe's child must be gone before a figure starts.
  await settle([server]);
  return server;
}

export async function startAtftpd(bin: string, root: string, logFile: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await freePort();
  const user = userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  const argv = [bin, '--daemon', '--no-fork', '--port', String(port), '--bind-address', '127.0.0.1', '--user', user, '--group', group];
  argv.push('--logfile', logFile, '--no-multicast', root);
  const proc = pinned(SERVER_CPU, argv, env);
  // atftpd serves each client on a thread of its own: idle is the thread count before any client.
  let idleThreads = Infinity;
  const server = serverOf('atftpd', port, proc, () => threadCount(proc.pid!) <= idleThreads);
  await answers(port, proc, 15_000).catch(async (err: Error) => {
    await server.stop();
    throw new Error(`atftpd: ${err.message} ${server.tail()}`);
  });
  // The probe's thread ends at once (file not found); the main thread and its helpers stay.
  const deadline = performance.now() + 2_000;
  let threads = threadCount(proc.pid!);
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    threads = Math.min(threads, threadCount(proc.pid!));
  }
  idleThreads = threads;
  return server;
}

/**
 * Our PE in a helper process (_tftp-server.ts), alone or registered in a
 * pool (a registrar, handle and cookie secret). It prints `listening HOST
 * PORT` and `active N` lines. `maxPerSource`: handshakes taken from one
 * address at once (the boot storm's clients all come from 127.0.0.1).
 * `workers`: transfer threads (none: in the main thread); `cpus`: the
 * taskset list it runs on (default SERVER_CPU); `busyPoll`: polling for
 * ACKs (default the library's, `auto`: on for a client on this host).
 */
export function startPe(
  root: string,
  opts: { registrar?: string; handle?: string; secret?: string; maxPerSource?: number; workers?: number; cpus?: string; busyPoll?: string } = {},
): Promise<Server> {
  const argv = [...helper('_tftp-server'), root];
  if (opts.registrar) argv.push('--registrar', opts.registrar, '--handle', opts.handle ?? 'files', '--secret', opts.secret ?? 'tftp-bench-pool-secret');
  if (opts.maxPerSource) argv.push('--max-per-source', String(opts.maxPerSource));
  if (opts.workers) argv.push('--workers', String(opts.workers));
  if (opts.busyPoll) argv.push('--busy-poll', opts.busyPoll);
  const proc = pinned(opts.cpus ?? SERVER_CPU, argv, process.env);
  let buffered = '';
  let active = 0;
  proc.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) {
      const m = /^active (\d+)$/.exec(l);
      if (m) active = Number(m[1]);
      else onLine(l);
    }
  });
  let onLine: (l: string) => void = () => {};
  return new Promise((resolve, reject) => {
    const server = serverOf('rserpool-pe', 0, proc, () => active === 0);
    const fail = (why: string): void => {
      clearTimeout(timer);
      void server.stop().then(() => reject(new Error(`our PE: ${why} ${server.tail()}`)));
    };
    const timer = setTimeout(() => fail('printed no `listening` line within 30 s'), 30_000);
    const onExit = (code: number | null, sig: string | null): void => fail(`exited (${code ?? sig})`);
    proc.once('exit', onExit);
    onLine = (l) => {
      const m = /^listening (\S+) (\d+)$/.exec(l);
      if (!m) return;
      onLine = () => {};
      proc.off('exit', onExit);
      clearTimeout(timer);
      resolve({ ...server, port: Number(m[2]) });
    };
  });
}

/** Starts a CLI child and resolves with the first match of `ready` in what it prints. */
function startCli(cpu: string, args: string[], ready: RegExp, what: string): Promise<{ proc: ChildProcess; match: RegExpExecArray; tail: () => string }> {
  const proc = pinned(cpu, [...cli(), ...args], process.env);
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  const tail = (): string => `${out()}${err()}`.trim();
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      killGroup(proc);
      reject(new Error(`${what}: ${why} ${tail()}`));
    };
    const timer = setTimeout(() => fail(`printed nothing matching ${ready} within 30 s`), 30_000);
    const onExit = (code: number | null, sig: string | null): void => fail(`exited (${code ?? sig})`);
    proc.once('exit', onExit);
    proc.stdout?.on('data', function onData() {
      const m = ready.exec(out());
      if (!m) return;
      proc.stdout?.off('data', onData);
      proc.off('exit', onExit);
      clearTimeout(timer);
      resolve({ proc, match: m, tail });
    });
  });
}

export interface Registrar {
  url: string;
  /** Resolves once `n` PEs have registered. */
  registered(n: number): Promise<void>;
  stop(): Promise<void>;
}

/** A registrar of ours (CLI child) on an ephemeral loopback port, on the clients' core (its work is a few messages). */
export async function startRegistrar(): Promise<Registrar> {
  const args = ['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off', '--print-events'];
  const { proc, match, tail } = await startCli(CLIENT_CPU, args, /asap (tcp:\/\/\S+)/, 'registrar');
  const server = serverOf('registrar', 0, proc, () => true);
  return {
    url: match[1]!,
    registered: (n) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if ((tail().match(/^pe-registered /gm) ?? []).length < n) return;
          clearTimeout(timer);
          proc.stdout?.off('data', check);
          resolve();
        };
        const timer = setTimeout(() => reject(new Error(`registrar: fewer than ${n} PEs registered within 30 s ${tail()}`)), 30_000);
        proc.stdout?.on('data', check);
        check();
      }),
    stop: () => server.stop(),
  };
}

/** `rserpool tftp gateway` (CLI child) on the servers' core, in front of the pool `handle`. */
export async function startGateway(registrar: string, handle: string): Promise<Server> {
  const args = ['tftp', 'gateway', '--listen', '127.0.0.1:0', '--handle', handle, '--registrar', registrar, '--quiet'];
  const { proc, match, tail } = await startCli(SERVER_CPU, args, /gateway listening on 127\.0\.0\.1:(\d+)/, 'gateway');
  return { ...serverOf('gateway', Number(match[1]), proc, () => true), tail };
}

/**
 * Runs a client program and returns its wall time and its own user+sys CPU
 * from wait4 (a small python3 wrapper: Node gives no rusage of a child).
 * The wrapper times from its spawn of the client to its reaping, so the
 * client's exec counts, the wrapper's start-up does not.
 */
const RUSAGE_WRAPPER = `
import json, os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_CLOSE, 3)])
_, status, ru = os.wait4(pid, 0)
ms = (time.perf_counter() - t0) * 1000
os.write(3, json.dumps({"ms": ms, "cpu": ru.ru_utime + ru.ru_stime}).encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`;
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface ClientRun {
  /** Exit code, or the signal's name, or the spawn error. */
  code: number | string;
  timedOut: boolean;
  /** Wall time of the client, ms (from the wrapper; NaN if it said nothing). */
  ms: number;
  /** User+sys CPU seconds of the client (NaN if unknown). */
  cpu: number;
  stdout: string;
  stderr: string;
}

/** `argv` (argv[0] an absolute path) pinned to `cpu`, killed with its group after `deadlineMs`. */
export async function runClient(cpu: string, argv: string[], env: NodeJS.ProcessEnv, deadlineMs: number): Promise<ClientRun> {
  const proc = pinned(cpu, [python, '-c', RUSAGE_WRAPPER, ...argv], env, true);
  const stdout = collect(proc.stdout);
  const stderr = collect(proc.stderr);
  const usage = collect(proc.stdio[3] as Readable);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc);
  }, deadlineMs);
  const code = await new Promise<number | string>((resolve) => {
    proc.once('error', (err) => resolve(err.message));
    proc.once('close', (exitCode, sig) => resolve(exitCode ?? sig ?? -1));
  });
  clearTimeout(timer);
  let ms = NaN;
  let cpuS = NaN;
  try {
    const u = JSON.parse(usage()) as { ms: number; cpu: number };
    ms = u.ms;
    cpuS = u.cpu;
  } catch {
    // killed before it could say
  }
  return { code, timedOut, ms, cpu: cpuS, stdout: stdout(), stderr: stderr() };
}

export interface ClientSpec {
  client: ClientName;
  blksize: number;
  windowsize: number;
}

/** The command line of one download of `file` from 127.0.0.1:`port` into `out`. */
export function clientArgv(tools: TftpTools, c: ClientSpec, port: number, file: string, out: string): string[] {
  switch (c.client) {
    case 'curl':
      return [tools.curl!, '-s', '-S', '-o', out, '--tftp-blksize', String(c.blksize), `tftp://127.0.0.1:${port}/${file}`];
    case 'tftp-hpa':
      return [tools.tftpHpa!, '127.0.0.1', String(port), '-m', 'octet', '-c', 'get', file, out];
    case 'atftp':
      return [
        tools.atftp!,
        '--get',
        '-r',
        file,
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
      return [...helper('_tftp-client'), '127.0.0.1', String(port), file, out, String(c.blksize), String(c.windowsize)];
  }
}

/** What our client helper (_tftp-client.ts) prints as its last line. */
export interface OwnClientLine {
  bytes: number;
  ms: number;
  /** User+sys CPU seconds during the transfer (process.cpuUsage), without Node's start-up. */
  cpu: number;
  blksize: number;
  windowsize: number;
}

/**
 * Our client as one long-lived process (`_tftp-client --serve`) on the
 * clients' core: its code compiled and its memory grown by the downloads
 * before, as in a program that imports the library.
 */
export class WarmClient {
  readonly #proc: ChildProcess;
  readonly #stderr: () => string;
  #buffered = '';
  #waiter: ((line: string | undefined) => void) | undefined;

  constructor(blksize: number, windowsize: number, env: NodeJS.ProcessEnv) {
    this.#proc = pinned(CLIENT_CPU, [...helper('_tftp-client'), '--serve', String(blksize), String(windowsize)], env, false, true);
    this.#stderr = collect(this.#proc.stderr);
    this.#proc.stdout!.on('data', (d: Buffer) => {
      this.#buffered += d.toString();
      for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        this.#take(line);
      }
    });
    this.#proc.once('exit', () => this.#take(undefined));
  }

  get alive(): boolean {
    return this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  #take(line: string | undefined): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(line);
  }

  /** One download; a stalled one kills the process (make a new one for the next). */
  async download(port: number, file: string, out: string, deadlineMs: number): Promise<{ timedOut: boolean; line?: OwnClientLine; error?: string }> {
    if (!this.alive) return { timedOut: false, error: `the client exited: ${lastLine(this.#stderr())}` };
    const got = new Promise<string | undefined>((resolve) => (this.#waiter = resolve));
    this.#proc.stdin!.write(`127.0.0.1 ${port} ${file} ${out}\n`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
    const line = await Promise.race([got, late]);
    clearTimeout(timer);
    if (line === 'late') {
      this.stop();
      return { timedOut: true };
    }
    if (line === undefined) return { timedOut: false, error: `the client exited: ${lastLine(this.#stderr())}` };
    const parsed = JSON.parse(line) as OwnClientLine | { error: string };
    return 'error' in parsed ? { timedOut: false, error: parsed.error } : { timedOut: false, line: parsed };
  }

  stop(): void {
    killGroup(this.#proc);
  }
}

/** Removes `path` (a download's output) whatever happens. */
export function removeFile(path: string): void {
  rmSync(path, { force: true });
}
