/**
 * TFTP clients nobody here wrote — curl, tftp-hpa (`tftp`) and atftp —
 * against a registered TFTP pool element on 127.0.0.1. A missing binary
 * fails these tests: CI installs all three.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createTftpPoolElement, type TftpPoolElement } from '../../lib/tftp/server/index.js';
import { waitFor } from '../transport/util.js';
import { tempDir } from './server-helpers.js';

const run = promisify(execFile);
const CLIENT_TIMEOUT_MS = 60_000;

let dir: { path: string; remove: () => Promise<void> };
let uploads: { path: string; remove: () => Promise<void> };
let registrar: Registrar;
let pe: TftpPoolElement;
let writablePe: TftpPoolElement;
/** The PE's port as the registrar hands it out. */
let port: number;
const files = new Map<string, string>();

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Over 65,535 blocks of 512 bytes: block numbers roll over. */
const ROLLOVER_BYTES = 512 * 65_536 + 100_003;

beforeAll(async () => {
  dir = await tempDir('rserpool-tftp-real-');
  uploads = await tempDir('rserpool-tftp-real-up-');
  const contents: [string, Buffer][] = [
    ['small.txt', Buffer.from('a small file\n')],
    ['mid.bin', randomBytes(3_000_000)],
    ['exact.bin', randomBytes(1468 * 100)],
    ['rollover.bin', randomBytes(ROLLOVER_BYTES)],
  ];
  for (const [name, bytes] of contents) {
    await writeFile(join(dir.path, name), bytes);
    files.set(name, sha256(bytes));
  }
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  const url = registrar.addresses[0]!.href;
  pe = createTftpPoolElement({ root: dir.path, handle: 'real-clients', registrars: [url], port: 0, secret: 'real clients' });
  await pe.start();
  writablePe = createTftpPoolElement({ root: uploads.path, handle: 'real-uploads', registrars: [url], port: 0, writable: true });
  await writablePe.start();
  const pu = createPoolUser({ registrars: [url], cacheTtlMs: 0 });
  const [element] = await pu.resolve('real-clients');
  await pu.close();
  port = element!.userTransport.port;
  expect(port).toBe(pe.address.port);
}, 60_000);

afterAll(async () => {
  await pe?.stop();
  await writablePe?.stop();
  await registrar?.stop();
  await dir?.remove();
  await uploads?.remove();
});

async function expectSame(out: string, name: string): Promise<void> {
  expect(sha256(await readFile(out))).toBe(files.get(name));
}

async function curlGet(name: string, out: string, blksize?: number, p = port): Promise<void> {
  const args = ['-s', '-S', '--max-time', '60', '-o', out, ...(blksize ? ['--tftp-blksize', String(blksize)] : []), `tftp://127.0.0.1:${p}/${name}`];
  await run('curl', args, { timeout: CLIENT_TIMEOUT_MS });
}

describe('curl (tftp://) against a TFTP pool element', () => {
  it.each([
    ['small.txt', undefined],
    ['mid.bin', 1468],
    ['mid.bin', 65464],
    ['exact.bin', 1468],
  ])('downloads %s (blksize %s) byte-identical', async (name, blksize) => {
    const out = join(dir.path, `curl-${name}-${blksize ?? 512}.out`);
    await curlGet(name, out, blksize);
    await expectSame(out, name);
  });

  it('downloads a file past block 65535 at blksize 512 (rollover) byte-identical', async () => {
    const out = join(dir.path, 'curl-rollover.out');
    await curlGet('rollover.bin', out);
    await expectSame(out, 'rollover.bin');
  });

  it('gets the TFTP error for a missing file (exit 68) and for a path out of the root (exit 69)', async () => {
    // curl maps TFTP error codes to its exit codes: 1 file not found -> 68, 2 access violation -> 69.
    const exitOf = (url: string): Promise<number> =>
      run('curl', ['-s', '--path-as-is', '-o', join(dir.path, 'refused.out'), url]).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
    expect(await exitOf(`tftp://127.0.0.1:${port}/no-such-file`)).toBe(68);
    expect(await exitOf(`tftp://127.0.0.1:${port}/../../etc/passwd`)).toBe(69);
    expect(await exitOf(`tftp://127.0.0.1:${port}/small.txt`)).toBe(0);
  });

  it('uploads to a writable PE (curl -T)', async () => {
    await run('curl', ['-s', '-S', '--max-time', '60', '-T', join(dir.path, 'mid.bin'), `tftp://127.0.0.1:${writablePe.address.port}/curl-up.bin`], {
      timeout: CLIENT_TIMEOUT_MS,
    });
    expect(sha256(await readFile(join(uploads.path, 'curl-up.bin')))).toBe(files.get('mid.bin'));
  });
});

describe('tftp-hpa against a TFTP pool element', () => {
  it('downloads a small file and one past block 65535 (rollover) byte-identical', async () => {
    for (const name of ['small.txt', 'rollover.bin']) {
      const out = join(dir.path, `hpa-${name}.out`);
      await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', name, out], { timeout: CLIENT_TIMEOUT_MS });
      await expectSame(out, name);
    }
  });

  it('uploads to a writable PE', async () => {
    await run('tftp', ['127.0.0.1', String(writablePe.address.port), '-m', 'binary', '-c', 'put', join(dir.path, 'mid.bin'), 'hpa-up.bin'], {
      timeout: CLIENT_TIMEOUT_MS,
    });
    expect(sha256(await readFile(join(uploads.path, 'hpa-up.bin')))).toBe(files.get('mid.bin'));
  });
});

describe('atftp against a TFTP pool element', () => {
  it.each([
    ['small.txt', []],
    ['mid.bin', ['blksize 1468', 'windowsize 8']],
    ['mid.bin', ['blksize 1468', 'windowsize 32', 'tsize 0']],
    ['exact.bin', ['blksize 1468', 'windowsize 8']],
    ['rollover.bin', ['windowsize 16']],
  ] as [string, string[]][])('downloads %s with options %j byte-identical', async (name, options) => {
    const out = join(dir.path, `atftp-${name}-${options.join('-').replace(/ /g, '')}.out`);
    await run('atftp', [...options.flatMap((o) => ['--option', o]), '--get', '-r', name, '-l', out, '127.0.0.1', String(port)], { timeout: CLIENT_TIMEOUT_MS });
    await expectSame(out, name);
  });

  it('uploads to a writable PE, windowed', async () => {
    await run(
      'atftp',
      [
        '--option',
        'blksize 1468',
        '--option',
        'windowsize 8',
        '--put',
        '-l',
        join(dir.path, 'mid.bin'),
        '-r',
        'atftp-up.bin',
        '127.0.0.1',
        String(writablePe.address.port),
      ],
      { timeout: CLIENT_TIMEOUT_MS },
    );
    expect(sha256(await readFile(join(uploads.path, 'atftp-up.bin')))).toBe(files.get('mid.bin'));
  });
});

describe('a client vanishing mid-transfer', () => {
  it('is cleaned up while other transfers carry on', async () => {
    const started = waitFor(pe.server, 'transfer-start', { timeoutMs: 20_000, filter: (t) => t.path === 'rollover.bin' });
    const victim = spawn('curl', ['-s', '-o', '-', `tftp://127.0.0.1:${port}/rollover.bin`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise((resolve) => victim.on('exit', resolve));
    // Killed once data flows: in the middle of the transfer.
    const flowing = new Promise((resolve) => victim.stdout.once('data', resolve));
    const [info] = await started;
    const ended = waitFor(pe.server, 'transfer-end', { timeoutMs: 20_000, filter: (t) => t.id === info.id });
    await flowing;
    victim.kill('SIGKILL');
    await exited;
    // Meanwhile another client downloads in full.
    const out = join(dir.path, 'survivor.out');
    await curlGet('mid.bin', out, 1468);
    await expectSame(out, 'mid.bin');
    const [, result] = await ended;
    expect(['peer-gone', 'timeout']).toContain(result.reason);
    expect(result.bytes).toBeGreaterThan(0);
    expect(result.bytes).toBeLessThan(ROLLOVER_BYTES);
    expect(pe.activeTransfers).toBe(0);
  });
});
