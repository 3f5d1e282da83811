/**
 * `rserpool drain` against real `rserpool tftp serve` processes: an allowed
 * request makes the PE leave as on SIGTERM (its download moves on at once),
 * a request from an address the PE does not allow is refused with the
 * security cause and the PE stays, a PE without an ASAP listener cannot be
 * asked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from '../cli/run.js';

const SIZE = 30_000_000;
const dir = mkdtempSync(join(tmpdir(), 'tftp-drain-'));
const root = join(dir, 'root');
let want = '';

const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

beforeAll(() => {
  mkdirSync(root);
  const data = randomBytes(SIZE);
  writeFileSync(join(root, 'f.bin'), data);
  want = createHash('sha256').update(data).digest('hex');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

async function pe(asap: string, id: string, extra: string[]): Promise<CliProcess> {
  const p = start(['tftp', 'serve', '--root', root, '--registrar', asap, '--port', '0', '--secret', 'drain test pool secret', '--identifier', id, ...extra]);
  await p.waitForLine(new RegExp(`^serving .* as PE ${id} under files$`), 30_000);
  return p;
}

describe('rserpool drain', () => {
  it('asks a PE to leave: it deregisters, its download moves on at once, it exits; refused from a host it does not allow; says when a PE cannot be asked', async () => {
    const registrar = start(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off']);
    const [, asap] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+)/, 30_000);
    const a = await pe(asap!, '0x0000d001', ['--asap-listen', 'tcp://127.0.0.1:0']);
    // A download from A, the only PE yet (lock-step, small blocks: it lasts); a dead-PE timeout far beyond the test.
    const out = join(dir, 'got.bin');
    const get = start([
      'tftp',
      'get',
      'files:/f.bin',
      '-o',
      out,
      '--registrar',
      asap!,
      '--json',
      '--blksize',
      '512',
      '--windowsize',
      '1',
      '--dead-after',
      '60s',
      '--progress-interval',
      '20ms',
    ]);
    await get.waitForLine(/^progress: .*PE 0x0000d001$/, 60_000);
    // B takes leave requests only from a network the test is not on; C has no ASAP listener.
    const [b, c] = await Promise.all([
      pe(asap!, '0x0000d002', ['--asap-listen', 'tcp://127.0.0.1:0', '--drain-from', '192.0.2.0/24']),
      pe(asap!, '0x0000d003', ['--asap-listen', 'off']),
    ]);
    const drained = await runCli(['drain', '--handle', 'files', '--pe', '0x0000d001', '--registrar', asap!], { timeoutMs: 30_000 });
    expect(drained.code, drained.stdout + drained.stderr).toBe(0);
    expect(drained.stdout).toMatch(/^PE 0x0000d001 deregistered, leaving$/m);
    expect(await a.exited).toBe(0);
    expect(a.output()).toMatch(/stopped PE 0x0000d001 \(drain request from 127\.0\.0\.1:\d+\)/);
    const [, to, stall] = await get.waitForLine(/^failover: PE 0x0000d001 -> (0x[0-9a-f]{8}) at block \d+, stall (\d+) ms$/, 30_000);
    expect(['0x0000d002', '0x0000d003']).toContain(to);
    // Told, not timed out: far under the 60 s dead-PE timeout.
    expect(Number(stall)).toBeLessThan(5_000);
    const refused = await runCli(['drain', '--handle', 'files', '--pe', '0x0000d002', '--registrar', asap!], { timeoutMs: 30_000 });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^PE 0x0000d002 refused: this host may not ask it to leave/m);
    const noListener = await runCli(['drain', '--handle', 'files', '--pe', '0x0000d003', '--registrar', asap!], { timeoutMs: 30_000 });
    expect(noListener.code).toBe(1);
    expect(noListener.stdout).toMatch(/^PE 0x0000d003 cannot be asked: it registered no ASAP listener/m);
    expect(b.exitStatus()).toBeUndefined();
    expect(c.exitStatus()).toBeUndefined();

    const [json] = await get.waitForLine(/^\{.*\}$/, 60_000);
    expect(await get.exited).toBe(0);
    expect((JSON.parse(json!) as { sha256: string }).sha256).toBe(want);
    expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(want);
  }, 180_000);
});
