/** examples/tftp-pool: serve.ts and download.ts run as a user runs them, against a registrar. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { withDeadline } from '../transport/util.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function run(script: string, args: string[]): { lines: Promise<string[]>; firstLine: Promise<string>; kill(): void; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', 'tftp-pool', script), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onLine: ((l: string) => void) | undefined;
  const firstLine = new Promise<string>((resolve) => (onLine = resolve));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('\n')) onLine?.(out.split('\n')[0]!);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    lines: exited.then((code) => {
      if (code !== 0) throw new Error(`${script} exited ${code}: ${err}`);
      return out.trim().split('\n');
    }),
    firstLine: withDeadline(firstLine, 20_000, `${script}'s first line`),
    kill: () => child.kill('SIGTERM'),
    exited,
  };
}

let registrar: Registrar | undefined;
let dir: string | undefined;
afterEach(async () => {
  await registrar?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('examples/tftp-pool', () => {
  it('serve.ts registers a PE; download.ts fetches the file through the pool, byte-identical', async () => {
    registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await registrar.start();
    const url = registrar.addresses[0]!.href;
    dir = mkdtempSync(join(tmpdir(), 'rserpool-example-'));
    const data = randomBytes(300_000);
    writeFileSync(join(dir, 'a.bin'), data);
    const pe = run('serve.ts', [dir, url]);
    try {
      expect(await pe.firstLine).toMatch(/^127\.0\.0\.1:\d+ 0x[0-9a-f]{8}$/);
      expect(registrar.handlespace.size).toBe(1);
      const lines = await withDeadline(run('download.ts', ['/a.bin', join(dir, 'copy.bin'), url]).lines, 30_000, 'download.ts');
      expect(lines.at(-1)).toMatch(/^300000 bytes, .* 0 failover\(s\), sha256 [0-9a-f]{64}$/);
      expect(readFileSync(join(dir, 'copy.bin')).equals(data)).toBe(true);
    } finally {
      pe.kill();
      expect(await pe.exited).toBe(0);
    }
    // Ctrl-C deregistered it
    expect(registrar.handlespace.size).toBe(0);
  });
});
