/**
 * kill -9 of the serving PE half-way through a 100 MB transfer, with real
 * processes on loopback: a registrar, two `rserpool tftp serve` sharing one
 * root, and either `rserpool tftp get`, `rserpool tftp gateway` with curl, or
 * `rserpool tftp put` (the PEs then --writable). The file must arrive
 * byte-identical and the printed stall must stay under 1 s with the default
 * settings.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run.js';
import { sha256Of } from '../support/files.js';

const run = promisify(execFile);
const SIZE = 100_000_000;
const dir = mkdtempSync(join(tmpdir(), 'tftp-failover-'));
const root = join(dir, 'root');
let wantSha = '';

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
  writeFileSync(join(root, 'big.bin'), data);
  wantSha = createHash('sha256').update(data).digest('hex');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

/** A registrar and two PEs (0x0000a001, 0x0000a002) serving `root`. */
async function startPool(extra: string[] = []): Promise<{ asap: string; pes: Map<string, CliProcess> }> {
  const registrar = start(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off']);
  const [, asap] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+)/, 30_000);
  const pes = new Map<string, CliProcess>();
  for (const id of ['0x0000a001', '0x0000a002']) {
    const pe = start([
      'tftp',
      'serve',
      '--root',
      root,
      '--registrar',
      asap!,
      '--port',
      '0',
      '--secret',
      'failover test pool secret',
      '--identifier',
      id,
      ...extra,
    ]);
    pes.set(id, pe);
  }
  for (const [id, pe] of pes) await pe.waitForLine(new RegExp(`^serving .* as PE ${id} under files$`), 30_000);
  return { asap: asap!, pes };
}

describe('kill -9 of the serving PE half-way through 100 MB', () => {
  it('rserpool tftp get fails over with the cookie and finishes byte-identical, stall under 1 s', async () => {
    const { asap, pes } = await startPool();
    const out = join(dir, 'got.bin');
    const get = start(['tftp', 'get', 'files:/big.bin', '-o', out, '--registrar', asap, '--json', '--progress-interval', '50ms']);
    // Half-way: a progress line at 50% or more names the serving PE.
    const [, servingId] = await get.waitForLine(/^progress: .*\((?:[5-9]\d)%\).*PE (0x[0-9a-f]{8})$/, 40_000);
    pes.get(servingId!)!.kill('SIGKILL');
    const [, from, to, stall] = await get.waitForLine(/^failover: PE (0x[0-9a-f]{8}) -> (0x[0-9a-f]{8}) at block \d+, stall (\d+) ms$/, 30_000);
    expect(from).toBe(servingId);
    expect(to).not.toBe(servingId);
    const [json] = await get.waitForLine(/^\{.*\}$/, 40_000);
    expect(await get.exited).toBe(0);
    const r = JSON.parse(json!) as {
      bytes: number;
      sha256: string;
      failovers: number;
      stallMs: number;
      servedBy: { pe: string; fromBlock: number; toBlock: number }[];
      mbPerSec: number;
    };
    expect(r.bytes).toBe(SIZE);
    expect(r.sha256).toBe(wantSha);
    expect(await sha256Of(out)).toBe(wantSha);
    expect(r.failovers).toBeGreaterThanOrEqual(1);
    expect(r.servedBy[0]!.pe).toBe(servingId);
    expect(Number(stall)).toBeLessThan(1_000);
    expect(r.stallMs).toBeLessThan(1_000);
    process.stdout.write(`tftp get: ${from} -> ${to}, stall ${stall} ms, ${r.mbPerSec} MB/s overall\n`);
  });

  it('curl through rserpool tftp gateway finishes byte-identical, the gateway stalls under 1 s', async () => {
    const { asap, pes } = await startPool();
    const gw = start(['tftp', 'gateway', '--listen', '127.0.0.1:0', '--handle', 'files', '--registrar', asap, '--progress-interval', '20ms']);
    const [, port] = await gw.waitForLine(/^gateway listening on 127\.0\.0\.1:(\d+) for files$/, 30_000);
    const out = join(dir, 'curl.bin');
    const curl = run('curl', ['-sS', '-o', out, '--tftp-blksize', '8192', `tftp://127.0.0.1:${port}/big.bin`], { timeout: 50_000 });
    // The gateway reads ahead of curl: kill when the gateway has half the file from the PE.
    let servingId: string | undefined;
    while (servingId === undefined) {
      const [, total, received, id] = await gw.nextLine(/^transfer \d+: \d+ of (\d+) bytes delivered, (\d+) received from PE (0x[0-9a-f]{8})$/, 40_000);
      if (Number(received) > Number(total) / 2) servingId = id;
    }
    pes.get(servingId)!.kill('SIGKILL');
    const [, from, stall] = await gw.waitForLine(/^failover: PE (0x[0-9a-f]{8}) -> 0x[0-9a-f]{8} at block \d+, stall (\d+) ms/, 30_000);
    await curl;
    expect(from).toBe(servingId);
    expect(await sha256Of(out)).toBe(wantSha);
    expect(Number(stall)).toBeLessThan(1_000);
    await gw.waitForLine(/^transfer \d+ done: big\.bin, 100000000 bytes, failovers [1-9]/, 30_000);
    process.stdout.write(`gateway: ${from} died, stall ${stall} ms\n`);
  });

  it('rserpool tftp put resumes at the other PE from the last cookie (shared root) and stores the file byte-identical, stall under 1 s', async () => {
    const { asap, pes } = await startPool(['--writable']);
    const put = start(['tftp', 'put', join(root, 'big.bin'), 'files:/put.bin', '--registrar', asap, '--json', '--progress-interval', '50ms']);
    const [, servingId] = await put.waitForLine(/^progress: .*\((?:[5-9]\d)%\).*PE (0x[0-9a-f]{8})$/, 40_000);
    pes.get(servingId!)!.kill('SIGKILL');
    const [, from, to, atBlock, stall] = await put.waitForLine(/^failover: PE (0x[0-9a-f]{8}) -> (0x[0-9a-f]{8}) at block (\d+), stall (\d+) ms$/, 30_000);
    expect(from).toBe(servingId);
    expect(to).not.toBe(servingId);
    const [json] = await put.waitForLine(/^\{.*\}$/, 40_000);
    expect(await put.exited).toBe(0);
    const r = JSON.parse(json!) as { bytes: number; pe: string; failovers: number; stallMs: number; restarts: number; mbPerSec: number };
    expect(r).toMatchObject({ bytes: SIZE, pe: to, failovers: 1, restarts: 0 });
    // From the cookie, not from byte 0. Killed at 50 % or more ACKed; the cookie names what is synced,
    // at most 16 MiB queued for the disk and one 4 MiB sync behind (a slow disk's lag): over 25 % not sent again.
    expect(Number(atBlock)).toBeGreaterThan((0.25 * SIZE) / 1468);
    expect(Number(stall)).toBeLessThan(1_000);
    expect(r.stallMs).toBeLessThan(1_000);
    expect(await sha256Of(join(root, 'put.bin'))).toBe(wantSha);
    // The dead PE's temporary file was taken over and renamed into place.
    expect(readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
    process.stdout.write(`tftp put: ${from} -> ${to} at block ${atBlock}, stall ${stall} ms, ${r.mbPerSec} MB/s overall\n`);
  });
});
