/** Child processes, ports and the two-registrar cluster shared by the demos. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, extname, join } from 'node:path';
import { hex32 } from './process.js';

const here = dirname(fileURLToPath(import.meta.url));
/** .ts when run from source (tsx), .js when built. */
export const ext = extname(fileURLToPath(import.meta.url));
export const CLI = join(here, `main${ext}`);
export const EXAMPLES = join(here, '..', '..', 'examples');

interface Child {
  name: string;
  proc: ChildProcess;
  lines: string[];
  /** The first line (already printed or still to come) that matches. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Like waitFor, for lines printed from now on only. */
  nextLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  readonly alive: boolean;
}

export class Children {
  readonly all: Child[] = [];
  readonly #cleanup = (): void => this.killAll();

  constructor() {
    process.once('exit', this.#cleanup);
  }

  spawn(name: string, args: string[]): Child {
    const proc = spawn(process.execPath, [...process.execArgv, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RSERPOOL_LOG_LEVEL: 'error' },
    });
    const lines: string[] = [];
    const waiters = new Set<() => void>();
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
      for (const w of waiters) w();
    });
    proc.stderr!.resume();
    const wait = (re: RegExp, timeoutMs: number, from: number): Promise<RegExpMatchArray> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          for (let i = from; i < lines.length; i++) {
            const m = re.exec(lines[i]!);
            if (m) {
              clearTimeout(timer);
              waiters.delete(check);
              resolve(m);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name} did not print ${re} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    const child: Child = {
      name,
      proc,
      lines,
      waitFor: (re, timeoutMs) => wait(re, timeoutMs, 0),
      nextLine: (re, timeoutMs) => wait(re, timeoutMs, lines.length),
      get alive() {
        return proc.exitCode === null && proc.signalCode === null;
      },
    };
    this.all.push(child);
    return child;
  }

  killAll(): void {
    for (const c of this.all) if (c.alive) c.proc.kill('SIGKILL');
  }

  /** Kills what is left and waits until every child is gone. */
  async close(): Promise<void> {
    this.killAll();
    await Promise.all(
      this.all.map((c) => (c.proc.exitCode === null && c.proc.signalCode === null ? new Promise((r) => c.proc.once('exit', r)) : Promise.resolve())),
    );
    process.off('exit', this.#cleanup);
  }
}

async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, host, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

interface DemoRegistrar {
  id: number;
  asap: string;
  enrp: string;
  child: Child;
}

/** Two registrars on 127.0.0.2 and 127.0.0.3 sharing one handlespace by ENRP, with timers quick enough to watch. */
export async function startRegistrars(children: Children): Promise<DemoRegistrar[]> {
  const hosts = [2, 3];
  const ports = await Promise.all(hosts.map((h) => freePorts(2, `127.0.0.${h}`)));
  const addr = hosts.map((h, i) => ({ id: h, asap: `tcp://127.0.0.${h}:${ports[i]![0]}`, enrp: `tcp://127.0.0.${h}:${ports[i]![1]}` }));
  const regs = addr.map((r, i) => ({
    ...r,
    child: children.spawn(`registrar ${hex32(r.id)}`, [
      CLI,
      'registrar',
      '--id',
      String(r.id),
      '--asap',
      r.asap,
      '--enrp',
      r.enrp,
      '--peer',
      addr[1 - i]!.enrp,
      '--http',
      'off',
      '--announce',
      'off',
      '--enrp-multicast',
      'off',
      '--print-events',
      '--keep-alive-interval',
      '1s',
      '--keep-alive-timeout',
      '1s',
      '--peer-heartbeat',
      '250ms',
      '--max-last-heard',
      '750ms',
      '--max-no-response',
      '500ms',
      '--takeover-expiry',
      '500ms',
      '--mentor-discovery',
      '1s',
    ]),
  }));
  await Promise.all(regs.map((r) => r.child.waitFor(/^synchronised$/, 15_000)));
  return regs;
}
