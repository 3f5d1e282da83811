/**
 * The client against real TFTP pool elements (createTftpPoolElement) and a
 * registrar, in this process, on loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPoolUser, type PoolUser } from '../../lib/pool-user/index.js';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import {
  CookieRefusedError,
  NoPoolElementError,
  TftpLocalIoError,
  TftpRemoteError,
  createTftpClient,
  type FailoverInfo,
  type TftpClient,
  type TftpClientInit,
  type TransferProgress,
} from '../../lib/tftp/client/index.js';
import { FileSource } from '../../lib/tftp/client/file-source.js';
import { createTftpPoolElement, type TftpPoolElement } from '../../lib/tftp/server/index.js';
import { toNetascii } from '../../protocols/tftp/packets.js';

const dir = mkdtempSync(join(tmpdir(), 'tftp-client-pool-'));
const root = join(dir, 'root');
const files = new Map<string, Buffer>();
let registrar: Registrar;
let url: string;
let outNo = 0;
const out = (): string => join(dir, `out-${++outNo}.bin`);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

beforeAll(async () => {
  mkdirSync(root);
  for (const [name, size] of [
    ['small.bin', 300_000],
    ['medium.bin', 4_000_000],
    ['failover.bin', 24_000_000],
    ['rollover.bin', 36_000_000],
    ['exact.bin', 1468 * 100],
  ] as const) {
    const b = randomBytes(size);
    writeFileSync(join(root, name), b);
    files.set(name, b);
  }
  // Text whose netascii form is longer: a block number of the converted text is no offset in the file.
  const text = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `line ${i}\n${i % 5 === 0 ? 'and a\rreturn\n' : ''}`).join(''));
  writeFileSync(join(root, 'text.txt'), text);
  files.set('text.txt', text);
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});

afterAll(async () => {
  await registrar.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startPes(
  n: number,
  opts: { secret?: (i: number) => string; writable?: boolean; handle?: string; root?: (i: number) => string } = {},
): Promise<TftpPoolElement[]> {
  const pes: TftpPoolElement[] = [];
  for (let i = 0; i < n; i++) {
    const pe = createTftpPoolElement({
      root: opts.root?.(i) ?? root,
      port: 0,
      handle: opts.handle ?? 'files',
      registrars: [url],
      secret: opts.secret?.(i) ?? 'pool secret',
      writable: opts.writable ?? false,
      overwrite: true,
    });
    await pe.start();
    cleanups.push(() => pe.stop());
    pes.push(pe);
  }
  return pes;
}

function client(init: TftpClientInit = {}): TftpClient {
  const c = createTftpClient({ registrars: [url], ...init });
  cleanups.push(() => c.close());
  return c;
}

/** A PE that dies without a word: its socket closes, its registration stays. */
function killer(
  pes: TftpPoolElement[],
  when: (p: TransferProgress) => boolean,
): { onProgress: (p: TransferProgress) => void; killed: () => number | undefined } {
  let killed: number | undefined;
  return {
    onProgress: (p) => {
      if (killed !== undefined || !p.pe || !when(p)) return;
      const pe = pes.find((x) => x.identifier === p.pe!.identifier)!;
      killed = pe.identifier;
      void pe.server.close({ leave: false });
    },
    killed: () => killed,
  };
}

/** The furthest block a cookie of the PEs named so far (0: none); an upload's follow the disk sync, however slow. */
function cookiesIssued(pes: TftpPoolElement[]): () => number {
  let furthest = 0;
  for (const pe of pes) pe.server.on('cookie-issued', (next) => (furthest = Math.max(furthest, next)));
  return () => furthest;
}

describe('tftp get from a pool', () => {
  it('passes over a registrar that accepts but never answers after resolveTimeoutMs', async () => {
    await startPes(1);
    const { createServer } = await import('node:net');
    const held: import('node:net').Socket[] = [];
    const frozen = createServer((sock) => {
      sock.on('error', () => {}); // the client resets its side
      held.push(sock);
    });
    await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => {
      for (const sock of held) sock.destroy();
      await new Promise<void>((r) => frozen.close(() => r()));
    });
    const port = (frozen.address() as import('node:net').AddressInfo).port;
    const client = createTftpClient({ registrars: [`tcp://127.0.0.1:${port}`, url], resolveTimeoutMs: 200 });
    cleanups.push(() => client.close());
    const dest = out();
    // The old fixed 3 s resolution timeout would miss this deadline.
    const r = await client.get('files', 'small.bin', dest, { signal: AbortSignal.timeout(2_000) });
    expect(r.sha256).toBe(sha(files.get('small.bin')!));
    expect(held.length).toBe(1);
  });

  it('downloads byte-identical with the blksize/windowsize asked, from one PE, with progress', async () => {
    await startPes(2);
    const want = files.get('medium.bin')!;
    for (const [blksize, windowsize] of [
      [512, 1],
      [1468, 8],
      [1468, 32],
      [8192, 16],
      [65_464, 4],
    ] as const) {
      const c = client({ blksize, windowsize });
      const progress: TransferProgress[] = [];
      const path = out();
      const r = await c.get('files', 'medium.bin', path, { onProgress: (p) => progress.push(p), progressIntervalMs: 5 });
      expect(r).toMatchObject({ bytes: want.length, blksize, windowsize, tsize: want.length, failovers: 0, restarts: 0, sha256: sha(want) });
      expect(r.servedBy).toHaveLength(1);
      expect(r.servedBy[0]).toMatchObject({ fromBlock: 1, toBlock: Math.floor(want.length / blksize) + 1 });
      expect(readFileSync(path).equals(want)).toBe(true);
      const last = progress[progress.length - 1]!;
      expect(last).toMatchObject({ bytes: want.length, total: want.length });
      expect(progress.every((p, i) => i === 0 || p.bytes >= progress[i - 1]!.bytes)).toBe(true);
    }
  });

  it('ends a file of a whole number of blocks with an empty block', async () => {
    await startPes(1);
    const r = await client({ blksize: 1468, windowsize: 8 }).get('files', 'exact.bin', out());
    expect(r).toMatchObject({ bytes: 1468 * 100, blocks: 101, sha256: sha(files.get('exact.bin')!) });
  });

  it('writes into a stream', async () => {
    await startPes(1);
    const want = files.get('small.bin')!;
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => sink.on('end', resolve));
    const r = await client().get('files', 'small.bin', sink);
    await ended;
    expect(Buffer.concat(chunks).equals(want)).toBe(true);
    expect(r.sha256).toBe(sha(want));
  });

  it('fails over with the last cookie when the serving PE dies, reports it unreachable, and ends byte-identical within a 1 s stall', async () => {
    const pes = await startPes(2);
    const pu: PoolUser = createPoolUser({ registrars: [url], discovery: false });
    cleanups.push(() => pu.close());
    const reported = vi.spyOn(pu, 'reportUnreachable');
    const want = files.get('failover.bin')!;
    const k = killer(pes, (p) => p.bytes > want.length / 2);
    const failovers: FailoverInfo[] = [];
    const path = out();
    const r = await client({ pu, blksize: 1468, windowsize: 16 }).get('files', 'failover.bin', path, {
      onProgress: k.onProgress,
      progressIntervalMs: 10,
      onFailover: (f) => failovers.push(f),
    });
    const dead = k.killed();
    expect(dead).toBeDefined();
    expect(readFileSync(path).equals(want)).toBe(true);
    expect(r.sha256).toBe(sha(want));
    expect(failovers.length).toBeGreaterThanOrEqual(1);
    expect(failovers[0]).toMatchObject({ from: { identifier: dead }, cookieEchoed: true });
    expect(failovers[0]!.to.identifier).not.toBe(dead);
    expect(failovers[0]!.stallMs).toBeLessThan(1_000);
    expect(r.servedBy[0]!.pe.identifier).toBe(dead);
    expect(r.servedBy.at(-1)!.toBlock).toBe(Math.floor(want.length / 1468) + 1);
    // The new PE resumed at the cookie: no later than where the old one stopped.
    expect(r.servedBy[1]!.fromBlock).toBeLessThanOrEqual(r.servedBy[0]!.toBlock + 1);
    expect(reported).toHaveBeenCalledWith('files', dead);
  });

  it('handles the block number rollover past 65535 at blksize 512, lock-step and windowed with a failover across it', async () => {
    const pes = await startPes(2);
    const want = files.get('rollover.bin')!;
    const blocks = Math.floor(want.length / 512) + 1;
    expect(blocks).toBeGreaterThan(65_536);
    const plain = await client({ blksize: 512, windowsize: 1 }).get('files', 'rollover.bin', out());
    expect(plain).toMatchObject({ bytes: want.length, blocks, sha256: sha(want), failovers: 0 });

    const k = killer(pes, (p) => p.bytes > 512 * 66_000);
    const path = out();
    const r = await client({ blksize: 512, windowsize: 16 }).get('files', 'rollover.bin', path, { onProgress: k.onProgress, progressIntervalMs: 10 });
    expect(k.killed()).toBeDefined();
    expect(r.failovers).toBeGreaterThanOrEqual(1);
    expect(r.servedBy[0]!.toBlock).toBeGreaterThan(65_536);
    expect(r.servedBy[1]!.fromBlock).toBeGreaterThan(65_536);
    expect(r.sha256).toBe(sha(want));
    expect(readFileSync(path).equals(want)).toBe(true);
  });

  it('says so when the next PE refuses the cookie, and starts over when told it may', async () => {
    const pes = await startPes(2, { secret: (i) => `secret ${i}` });
    const want = files.get('failover.bin')!;
    const k1 = killer(pes, (p) => p.bytes > want.length / 4);
    const err = await client()
      .get('files', 'failover.bin', out(), { onProgress: k1.onProgress, progressIntervalMs: 10 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CookieRefusedError);
    expect((err as CookieRefusedError).message).toMatch(/^the PE refused the state cookie: bad-signature/);

    // Again, with a third PE under yet another secret, and leave to start over.
    await pes.find((p) => p.identifier === k1.killed())!.stop();
    const all = [pes.find((p) => p.identifier !== k1.killed())!, ...(await startPes(1, { secret: () => 'another secret' }))];
    const k2 = killer(all, (p) => p.bytes > want.length / 4);
    const restarts: string[] = [];
    const path = out();
    const r = await client({ restartOnRefusal: true }).get('files', 'failover.bin', path, {
      onProgress: k2.onProgress,
      progressIntervalMs: 10,
      onRestart: (why) => restarts.push(why),
    });
    expect(k2.killed()).toBeDefined();
    expect(r.restarts).toBe(1);
    expect(restarts[0]).toMatch(/^cookie refused: bad-signature/);
    expect(r.sha256).toBe(sha(want));
    expect(readFileSync(path).equals(want)).toBe(true);
  });

  it('fails over a netascii download with the last cookie: the next PE converts the file alike and resumes at the block', async () => {
    const pes = await startPes(2);
    const want = Buffer.from(toNetascii(files.get('text.txt')!));
    const k = killer(pes, (p) => p.bytes > want.length / 2);
    const failovers: FailoverInfo[] = [];
    const path = out();
    const r = await client({ blksize: 1468, windowsize: 16 }).get('files', 'text.txt', path, {
      mode: 'netascii',
      onProgress: k.onProgress,
      progressIntervalMs: 10,
      onFailover: (f) => failovers.push(f),
    });
    expect(k.killed()).toBeDefined();
    expect(failovers[0]).toMatchObject({ from: { identifier: k.killed() }, cookieEchoed: true });
    expect(failovers[0]!.atBlock).toBeGreaterThan(1);
    expect(r.restarts).toBe(0);
    expect(readFileSync(path).equals(want)).toBe(true);
  });

  it('fails with NoPoolElementError for an empty pool and TftpRemoteError (code 1) for a missing file, without failing over', async () => {
    await startPes(2);
    const c = client();
    const empty = await c.get('nobody-here', 'small.bin', out()).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(NoPoolElementError);
    const failovers: FailoverInfo[] = [];
    const missing = await c.get('files', 'no-such.bin', out(), { onFailover: (f) => failovers.push(f) }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TftpRemoteError);
    expect(missing).toMatchObject({ tftpCode: 1 });
    expect(failovers).toEqual([]);
  });
});

describe('tftp put to a pool', () => {
  it('uploads to a writable PE; the file comes back identical', async () => {
    await startPes(1, { writable: true, handle: 'uploads' });
    const data = randomBytes(2_000_123);
    const c = client({ blksize: 1468, windowsize: 8 });
    const r = await c.put('uploads', 'uploaded.bin', data);
    expect(r).toMatchObject({ bytes: data.length, failovers: 0 });
    expect(readFileSync(join(root, 'uploaded.bin')).equals(data)).toBe(true);
    const back = await c.get('uploads', 'uploaded.bin', out());
    expect(back.sha256).toBe(sha(data));
  });

  it('fails over with the last cookie when the receiving PE dies: the next PE takes the temporary file over, byte-identical, stall under 1 s', async () => {
    const pes = await startPes(2, { writable: true, handle: 'uploads' });
    const pu: PoolUser = createPoolUser({ registrars: [url], discovery: false });
    cleanups.push(() => pu.close());
    const reported = vi.spyOn(pu, 'reportUnreachable');
    const data = randomBytes(24_000_000);
    const cookies = cookiesIssued(pes);
    // Killed once a cookie names a block past 1: one for bytes synced, however slow the disk.
    const k = killer(pes, (p) => p.bytes > data.length / 2 && cookies() > 1);
    const failovers: FailoverInfo[] = [];
    const restarts: string[] = [];
    const r = await client({ pu, blksize: 1468, windowsize: 16 }).put('uploads', 'put-failover.bin', data, {
      onProgress: k.onProgress,
      progressIntervalMs: 10,
      onFailover: (f) => failovers.push(f),
      onRestart: (why) => restarts.push(why),
    });
    const dead = k.killed();
    expect(dead).toBeDefined();
    expect(readFileSync(join(root, 'put-failover.bin')).equals(data)).toBe(true);
    expect(r).toMatchObject({ bytes: data.length, failovers: 1, restarts: 0 });
    expect(restarts).toEqual([]);
    expect(failovers).toHaveLength(1);
    expect(failovers[0]).toMatchObject({ from: { identifier: dead }, cookieEchoed: true });
    expect(failovers[0]!.to.identifier).not.toBe(dead);
    // Resumed from a cookie past the first 4 MiB, not from byte 0.
    expect(failovers[0]!.atBlock).toBeGreaterThan((4 << 20) / 1468);
    expect(failovers[0]!.stallMs).toBeLessThan(1_000);
    expect(r.stallMs).toBe(failovers[0]!.stallMs);
    expect(r.pe.identifier).toBe(failovers[0]!.to.identifier);
    expect(reported).toHaveBeenCalledWith('uploads', dead);
    // The temporary file the dead PE left was taken over and renamed into place: nothing left behind.
    expect(readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('starts over from byte 0 at a PE that cannot resume (another root: no temporary file) and says so', async () => {
    const other = join(dir, 'other-root');
    mkdirSync(other);
    const roots = [root, other];
    const pes = await startPes(2, { writable: true, handle: 'elsewhere', root: (i) => roots[i]! });
    // Larger than the PE's disk queue (16 MiB) and its first sync: a cookie comes even from a slow disk.
    const data = randomBytes(24_000_000);
    // Killed once a cookie went out: without one there is nothing to refuse, and the client starts over without saying so.
    const cookies = cookiesIssued(pes);
    const k = killer(pes, (p) => p.bytes > data.length / 2 && cookies() > 0);
    const restarts: string[] = [];
    const r = await client().put('elsewhere', 'restarted.bin', data, {
      onProgress: k.onProgress,
      progressIntervalMs: 10,
      onRestart: (why) => restarts.push(why),
    });
    const dead = pes.findIndex((p) => p.identifier === k.killed());
    expect(dead).toBeGreaterThanOrEqual(0);
    expect(r).toMatchObject({ bytes: data.length, restarts: 1, failovers: 1 });
    expect(r.pe.identifier).toBe(pes[1 - dead]!.identifier);
    expect(restarts[0]).toMatch(/^cookie refused: missing: /);
    expect(readFileSync(join(roots[1 - dead]!, 'restarted.bin')).equals(data)).toBe(true);
    // The dead PE's temporary file stays in its root, for the cookie's lifetime, until a PE there sweeps it.
    expect(readdirSync(roots[dead]!).filter((n) => n.startsWith('.restarted.bin.'))).toHaveLength(1);
    for (const n of readdirSync(roots[dead]!).filter((n) => n.startsWith('.restarted.bin.'))) rmSync(join(roots[dead]!, n));
  });

  /** put() of a file reads it through FileSource chunks of `chunk` bytes: the sources it opened. */
  function smallChunks(chunk: number): FileSource[] {
    const opened: FileSource[] = [];
    const open = FileSource.open.bind(FileSource);
    const spy = vi.spyOn(FileSource, 'open').mockImplementation(async (path) => {
      const s = await open(path, chunk);
      opened.push(s);
      return s;
    });
    cleanups.push(async () => spy.mockRestore());
    return opened;
  }

  it('streams a file larger than its read chunk from disk: byte-identical, at most three chunks held', async () => {
    await startPes(1, { writable: true, handle: 'uploads' });
    const chunk = 1 << 20;
    const data = randomBytes(20 * chunk + 777);
    const src = join(dir, 'stream-src.bin');
    writeFileSync(src, data);
    const opened = smallChunks(chunk);
    const r = await client({ blksize: 1468, windowsize: 16 }).put('uploads', 'streamed.bin', src);
    expect(r).toMatchObject({ bytes: data.length, failovers: 0 });
    expect(readFileSync(join(root, 'streamed.bin')).equals(data)).toBe(true);
    expect(opened).toHaveLength(1);
    expect(opened[0]!.reads).toBeGreaterThanOrEqual(21);
    expect(opened[0]!.peakBytes).toBeLessThanOrEqual(3 * chunk);
  });

  it('fails over mid-upload of a streamed file: the next PE resumes at the cookie block, byte-identical', async () => {
    const pes = await startPes(2, { writable: true, handle: 'uploads' });
    const chunk = 1 << 20;
    const data = randomBytes(24_000_000);
    const src = join(dir, 'stream-failover.bin');
    writeFileSync(src, data);
    const opened = smallChunks(chunk);
    const cookies = cookiesIssued(pes);
    const k = killer(pes, (p) => p.bytes > data.length / 2 && cookies() > 1);
    const failovers: FailoverInfo[] = [];
    const r = await client({ blksize: 1468, windowsize: 16 }).put('uploads', 'put-stream-failover.bin', src, {
      onProgress: k.onProgress,
      progressIntervalMs: 10,
      onFailover: (f) => failovers.push(f),
    });
    expect(k.killed()).toBeDefined();
    expect(readFileSync(join(root, 'put-stream-failover.bin')).equals(data)).toBe(true);
    expect(r).toMatchObject({ bytes: data.length, failovers: 1, restarts: 0 });
    expect(failovers[0]).toMatchObject({ cookieEchoed: true });
    expect(failovers[0]!.atBlock).toBeGreaterThan((4 << 20) / 1468);
    expect(opened[0]!.peakBytes).toBeLessThanOrEqual(3 * chunk);
  });

  it('fails with TftpLocalIoError when the file is truncated during the upload', async () => {
    await startPes(1, { writable: true, handle: 'uploads' });
    const chunk = 1 << 20;
    const src = join(dir, 'stream-truncated.bin');
    writeFileSync(src, randomBytes(20 * chunk));
    smallChunks(chunk);
    let cut = false;
    const err = await client({ blksize: 1468, windowsize: 16 })
      .put('uploads', 'truncated.bin', src, {
        progressIntervalMs: 10,
        onProgress: (p) => {
          if (cut || p.bytes < 2 * chunk) return;
          cut = true;
          truncateSync(src, 3 * chunk);
        },
      })
      .catch((e: unknown) => e);
    expect(cut).toBe(true);
    expect(err).toBeInstanceOf(TftpLocalIoError);
    expect((err as Error).message).toMatch(/size changed during the upload/);
  });

  it('is refused by a PE that is not writable (TftpRemoteError, access violation)', async () => {
    await startPes(1, { handle: 'readonly' });
    const err = await client()
      .put('readonly', 'x.bin', randomBytes(1000))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TftpRemoteError);
    expect(err).toMatchObject({ tftpCode: 2 });
  });
});
