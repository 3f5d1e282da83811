/**
 * `rserpool tftp get|put` as real processes against pool elements and a
 * registrar running in this process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createTftpPoolElement, type TftpPoolElement } from '../../lib/tftp/server/index.js';
import { runCli, startCli, type CliProcess } from '../cli/run.js';

const dir = mkdtempSync(join(tmpdir(), 'tftp-client-cli-'));
const root = join(dir, 'root');
let registrar: Registrar;
let url: string;
const data = randomBytes(30_000_000);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const cleanups: (() => Promise<unknown>)[] = [];
const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

beforeAll(async () => {
  mkdirSync(root);
  writeFileSync(join(root, 'data.bin'), data);
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});

afterAll(async () => {
  await registrar.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function pe(opts: { handle?: string; secret?: string; writable?: boolean } = {}): Promise<TftpPoolElement> {
  const p = createTftpPoolElement({
    root,
    port: 0,
    handle: opts.handle ?? 'files',
    registrars: [url],
    secret: opts.secret ?? 'cli test',
    writable: opts.writable ?? false,
  });
  await p.start();
  cleanups.push(() => p.stop());
  return p;
}

describe('rserpool tftp get/put', () => {
  it('puts a file to a writable PE and gets it back, printing a summary and JSON', async () => {
    await pe({ handle: 'uploads', writable: true });
    const local = join(dir, 'local.bin');
    const small = randomBytes(500_000);
    writeFileSync(local, small);
    const put = await runCli(['tftp', 'put', local, 'uploads:/put.bin', '--registrar', url, '--json', '--no-progress'], { timeoutMs: 30_000 });
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ bytes: small.length, failovers: 0 });
    expect(readFileSync(join(root, 'put.bin')).equals(small)).toBe(true);

    const out = join(dir, 'back.bin');
    const get = await runCli(['tftp', 'get', 'uploads:/put.bin', '-o', out, '--registrar', url, '--no-progress'], { timeoutMs: 30_000 });
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(
      new RegExp(
        `^got uploads:/put\\.bin -> ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 500000 bytes .* failovers 0, max stall 0 ms; sha256 ${sha(small)}\\n$`,
      ),
    );
    expect(readFileSync(out).equals(small)).toBe(true);
  });

  it('exits 1 with the TFTP error for a missing file (leaving no file), 2 for bad arguments', async () => {
    await pe();
    const out = join(dir, 'missing.bin');
    const missing = await runCli(['tftp', 'get', 'files:/no-such.bin', '-o', out, '--registrar', url], { timeoutMs: 30_000 });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/RSP_ERR_TFTP_REMOTE: TFTP error 1: /);
    expect(existsSync(out)).toBe(false);
    const bad = await runCli(['tftp', 'get', 'no-handle-here', '--registrar', url], { timeoutMs: 30_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/expected HANDLE:\/PATH/);
  });

  it('says so when the next PE refuses the cookie', async () => {
    const pes = [await pe({ secret: 'one' }), await pe({ secret: 'two' })];
    const out = join(dir, 'refused.bin');
    const get = startCli(['tftp', 'get', 'files:/data.bin', '-o', out, '--registrar', url, '--windowsize', '1', '--progress-interval', '20ms']);
    procs.push(get);
    const [, id] = await get.waitForLine(/^progress: .*\((?:[2-9]\d)%\).*PE 0x([0-9a-f]{8})$/, 30_000);
    await pes.find((p) => p.identifier === Number.parseInt(id!, 16))!.server.close();
    expect(await get.exited).toBe(1);
    expect(get.output()).toMatch(/RSP_ERR_TFTP_COOKIE_REFUSED: the PE refused the state cookie: bad-signature/);
    expect(existsSync(out)).toBe(false);
  });
});
