import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Capture {
  readonly file: string;
  /**
   * Sends a UDP sentinel and waits until tshark has seen it: every packet
   * before it is then in the file (the kernel hands packets over in blocks,
   * so a capture stopped right after the traffic would lose the tail).
   */
  flush(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  remove(): void;
}

/** tshark on the loopback interface with a capture filter; resolves once it is capturing. */
export async function startCapture(filter: string, timeoutMs = 30_000): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'rserpool-capture-'));
  const file = join(dir, 'run.pcapng');
  const sentinelPort = 40000 + Math.floor(Math.random() * 20000);
  const child: ChildProcess = spawn('tshark', ['-n', '-l', '-P', '-i', 'lo', '-w', file, '-f', `(${filter}) or (udp dst port ${sentinelPort})`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const onOut = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const f of onOut) f();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start capturing within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Capturing on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`tshark could not run (apt-get install tshark): ${e.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tshark exited with ${code}: ${err}`));
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const seen = new RegExp(`UDP \\d+ \\d+ → ${sentinelPort}\\b`);
  return {
    file,
    async flush(flushTimeoutMs = 15_000) {
      const sock = createSocket('udp4');
      sock.send(Buffer.from('flush'), sentinelPort, '127.0.0.1');
      try {
        await new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (seen.test(out)) done(resolve);
          };
          const timer = setTimeout(() => done(() => reject(new Error(`tshark did not see the sentinel within ${flushTimeoutMs} ms`))), flushTimeoutMs);
          const done = (then: () => void): void => {
            clearTimeout(timer);
            onOut.delete(check);
            then();
          };
          onOut.add(check);
          check();
        });
      } finally {
        sock.close();
      }
    },
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      return exited;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A port in a range nothing else here uses, so a capture filter can name it before the server binds. */
export function capturePort(base: number): number {
  return base + Math.floor(Math.random() * 1000);
}
