/**
 * Issue 11, finding 3 (cookie secrets), with real `rserpool tftp serve`
 * processes: a guessable secret is refused at start, and PEs given the same
 * secret file resume each other's downloads after a kill -9.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run.js';

const SIZE = 20_000_000;
const dir = mkdtempSync(join(tmpdir(), 'tftp-cookie-cli-'));
const root = join(dir, 'root');
const secretFile = join(dir, 'cookie.secret');
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
  // As `openssl rand -hex 32 > FILE` writes it: the trailing newline is no part of the secret.
  writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[], env: Record<string, string> = {}): CliProcess {
  const p = startCli(args, env);
  procs.push(p);
  return p;
}

/** The exit code, or 'serving' if the PE started instead. */
async function outcome(pe: CliProcess): Promise<number | string> {
  return Promise.race([pe.exited, pe.waitForLine(/^serving /, 30_000).then(() => 'serving')]);
}

describe('rserpool tftp serve: the cookie secret', () => {
  it('refuses a secret shorter than 16 bytes, from --secret or RSERPOOL_COOKIE_SECRET, saying why', async () => {
    const serve = ['tftp', 'serve', '--root', root, '--registrar', 'tcp://127.0.0.1:1', '--port', '0'];
    const flag = start([...serve, '--secret', 's3cret']);
    expect(await outcome(flag)).toBe(2);
    expect(flag.output()).toMatch(/cookie secret is 6 bytes; it needs at least 16/);
    const env = start(serve, { RSERPOOL_COOKIE_SECRET: 'files' });
    expect(await outcome(env)).toBe(2);
    expect(env.output()).toMatch(/RSERPOOL_COOKIE_SECRET: the cookie secret is 5 bytes; it needs at least 16/);
  });

  it('two PEs sharing a --cookie-secret-file resume a download after the serving one is killed', async () => {
    const registrar = start(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off']);
    const [, asap] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+)/, 30_000);
    const pes = new Map<string, CliProcess>();
    for (const id of ['0x0000c001', '0x0000c002']) {
      pes.set(id, start(['tftp', 'serve', '--root', root, '--registrar', asap!, '--port', '0', '--cookie-secret-file', secretFile, '--identifier', id]));
    }
    for (const [id, pe] of pes) await pe.waitForLine(new RegExp(`^serving .* as PE ${id} under files$`), 30_000);
    const out = join(dir, 'got.bin');
    // Lock-step 512-byte blocks: slow enough to be killed half-way.
    const get = start([
      'tftp',
      'get',
      'files:/big.bin',
      '-o',
      out,
      '--registrar',
      asap!,
      '--json',
      '--progress-interval',
      '20ms',
      '--blksize',
      '512',
      '--windowsize',
      '1',
    ]);
    const [, servingId] = await get.waitForLine(/^progress: .*\((?:[4-9]\d)%\).*PE (0x[0-9a-f]{8})$/, 60_000);
    pes.get(servingId!)!.kill('SIGKILL');
    const [line, from] = await get.waitForLine(/^failover: PE (0x[0-9a-f]{8}) -> .*$/, 30_000);
    expect(from).toBe(servingId);
    expect(line).not.toMatch(/started over/);
    const [json] = await get.waitForLine(/^\{.*\}$/, 60_000);
    expect(await get.exited).toBe(0);
    const r = JSON.parse(json!) as { sha256: string; failovers: number; restarts: number; servedBy: { pe: string; fromBlock: number }[] };
    expect(r.sha256).toBe(wantSha);
    expect(r.failovers).toBe(1);
    expect(r.restarts).toBe(0);
    // The second PE took up from the cookie, well past the start.
    expect(r.servedBy[1]!.fromBlock).toBeGreaterThan(SIZE / 512 / 4);
  }, 120_000);
});
