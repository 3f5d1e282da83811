/**
 * The chaos run's processes: `rserpool` CLI processes started from source,
 * each with its state as the run knows it (running, paused, dead), the time
 * it first said it was up, and whether it exited without being told to.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

export type ProcState = 'starting' | 'running' | 'paused' | 'dead';

export interface ManagedProc {
  readonly name: string;
  readonly args: readonly string[];
  child: ChildProcess;
  state: ProcState;
  /** When it printed its ready line (or was resumed): from then on it must be visible. */
  upSince: number | undefined;
  spawnedAt: number;
  /** We killed it (SIGKILL / SIGTERM): its exit is expected. */
  killing: boolean;
  exited: Promise<number | string>;
  exitedAt: number | undefined;
  stderrTail: string[];
  stdoutTail: string[];
}

export interface SpawnOptions {
  name: string;
  args: string[];
  ready: RegExp;
  uid?: number;
  now: () => number;
  /** Called for a process that exits while nobody asked it to. */
  onUnexpectedExit: (p: ManagedProc, status: number | string) => void;
  onLine?: (p: ManagedProc, line: string) => void;
}

const TAIL = 20;
const REPORT_DIR = process.env.RSERPOOL_CHAOS_REPORTS;
/** With RSERPOOL_CHAOS_LOGS=DIR each process's output goes to DIR/NAME.log, each line stamped with the run's clock. */
const LOG_DIR = process.env.RSERPOOL_CHAOS_LOGS;

export function spawnCli(o: SpawnOptions): ManagedProc {
  // A process that will not stop is asked for a diagnostic report (its handles) before it is killed.
  const report = REPORT_DIR ? ['--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${REPORT_DIR}`] : [];
  const child = spawn(process.execPath, [...report, '--import', 'tsx', 'lib/cli/main.ts', ...o.args], {
    cwd: root,
    env: { ...process.env, RSERPOOL_LOG_LEVEL: process.env.RSERPOOL_LOG_LEVEL ?? (LOG_DIR ? 'info' : 'warn') },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.uid } : {}),
  });
  const p: ManagedProc = {
    name: o.name,
    args: o.args,
    child,
    state: 'starting',
    upSince: undefined,
    spawnedAt: o.now(),
    killing: false,
    exited: Promise.resolve(0),
    exitedAt: undefined,
    stderrTail: [],
    stdoutTail: [],
  };
  const logFile = LOG_DIR ? join(LOG_DIR, `${o.name}.log`) : undefined;
  if (logFile) appendFileSync(logFile, `${Math.round(o.now())} --- spawned pid ${child.pid} ${o.args.join(' ')}\n`);
  const keep = (tail: string[], line: string): void => {
    if (logFile) appendFileSync(logFile, `${Math.round(o.now())} ${line}\n`);
    tail.push(line);
    if (tail.length > TAIL) tail.shift();
  };
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines) {
      keep(p.stdoutTail, line);
      if (p.state === 'starting' && o.ready.test(line)) {
        p.state = 'running';
        p.upSince = o.now();
      }
      o.onLine?.(p, line);
    }
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    const lines = err.split('\n');
    err = lines.pop()!;
    for (const line of lines) keep(p.stderrTail, line.slice(0, 400));
  });
  p.exited = new Promise((resolve) => {
    child.on('exit', (code, sig) => {
      p.exitedAt = o.now();
      if (logFile) appendFileSync(logFile, `${Math.round(o.now())} --- exited ${code ?? sig}\n`);
      const status = code ?? sig ?? -1;
      const was = p.state;
      p.state = 'dead';
      if (!p.killing && was !== 'dead') o.onUnexpectedExit(p, status);
      resolve(status);
    });
    child.on('error', (e) => {
      keep(p.stderrTail, `spawn failed: ${e.message}`);
      p.state = 'dead';
      if (!p.killing) o.onUnexpectedExit(p, 'spawn-failed');
      resolve('spawn-failed');
    });
  });
  return p;
}

export function signal(p: ManagedProc, sig: NodeJS.Signals): void {
  if (p.state === 'dead' || p.child.pid === undefined) return;
  try {
    process.kill(p.child.pid, sig);
  } catch {
    // already gone
  }
}

/** kill -9 and wait for the exit. */
export async function killHard(p: ManagedProc): Promise<void> {
  if (p.state === 'dead') return;
  p.killing = true;
  signal(p, 'SIGKILL');
  await p.exited;
}

/** SIGTERM; resolves with how long the process took to exit, or undefined if it did not within `limitMs` (it is then killed). */
export async function terminate(p: ManagedProc, limitMs: number, now: () => number): Promise<number | undefined> {
  if (p.state === 'dead') return 0;
  p.killing = true;
  if (p.state === 'paused') signal(p, 'SIGCONT');
  const t0 = now();
  signal(p, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([p.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), limitMs)))]);
  clearTimeout(timer);
  if (inTime) return now() - t0;
  try {
    const stat = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8').split(' ');
    // A zombie has exited; only this (loaded) process has not reaped it yet.
    if (stat[2] === 'Z') {
      await p.exited;
      return limitMs;
    }
    p.stderrTail.push(`not stopped: state ${stat[2]}, utime ${stat[13]}, stime ${stat[14]}`);
  } catch {
    // gone meanwhile
    await p.exited;
    return limitMs;
  }
  if (REPORT_DIR) {
    signal(p, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 1000));
  }
  signal(p, 'SIGKILL');
  await p.exited;
  return undefined;
}
