import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `rserpool ARGS` from source (tsx) as its own process, with a deadline. */
export function runCli(args: string[], { timeoutMs = 20_000, env = {} }: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rserpool ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface CliProcess {
  /** -1 when the process could not be started (see `spawnError`). */
  readonly pid: number;
  /** Why the process could not be started, if it could not. */
  readonly spawnError: () => Error | undefined;
  /** Resolves with the first stdout line matching `re` (and its match), or rejects at the deadline or on exit. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Like waitForLine, but only lines printed after this call count. */
  nextLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
  /** The exit code (or signal name) once exited, else undefined. */
  readonly exitStatus: () => number | string | undefined;
  readonly output: () => string;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `rserpool ARGS` as a long-running process; stdout is read line by line. */
export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  let spawnError: Error | undefined;
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, sig) => resolve(code ?? sig ?? -1));
    // Without this listener a failed spawn (EMFILE, ENOENT, EAGAIN) is thrown out of the test process.
    child.on('error', (e) => {
      spawnError ??= new Error(`could not start rserpool ${args.join(' ')}: ${e.message}`, { cause: e });
      err += `${spawnError.message}\n`;
      resolve('spawn-failed');
    });
  });
  void exited.then(() => {
    for (const w of waiters) w();
  });
  let exitedNow = false;
  let exitStatus: number | string | undefined;
  void exited.then((code) => {
    exitedNow = true;
    exitStatus = code;
  });
  return {
    pid: child.pid ?? -1,
    spawnError: () => spawnError,
    exited,
    exitStatus: () => exitStatus,
    output: () => `stdout:\n${lines.join('\n')}\n${out}\nstderr:\n${err}`,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    waitForLine(re, timeoutMs = 15_000) {
      return waitLine(0, re, timeoutMs);
    },
    nextLine(re, timeoutMs = 15_000) {
      return waitLine(lines.length, re, timeoutMs);
    },
  };

  function waitLine(from: number, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      let seen = from;
      const check = (): void => {
        for (; seen < lines.length; seen++) {
          const m = re.exec(lines[seen]!);
          if (m) {
            done();
            resolve(m);
            return;
          }
        }
        if (exitedNow) {
          done();
          reject(spawnError ?? new Error(`process exited before printing ${re}\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no line matching ${re} within ${timeoutMs} ms\n${lines.join('\n')}\n${err}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }
}
