/**
 * A PE whose disk never finishes a write or sync does not keep the upload:
 * once the disk has taken nothing for the transfer's give-up time
 * ((maxRetries + 1) x timeout) while the transfer waits on it (an ACK held
 * for the write queue, the last block being stored), the client gets a TFTP
 * ERROR and the transfer ends ('disk-timeout'), freeing its slot. A disk
 * that takes something within each give-up time is waited on. A download
 * waiting as long on a chunk read that does not complete ends alike. Real
 * sockets on loopback, timers on a ManualClock; the disk is FileHandle.write,
 * datasync or read held until the test lets each call go.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createTftpServer, type TftpServer, type TransferResult } from '../../lib/tftp/server/index.js';
import { TftpErrorCode, TftpOpcode, type TftpPacket } from '../../protocols/tftp/types.js';
import { until, withDeadline } from '../transport/util.js';
import { download, RawPeer, tempDir } from './server-helpers.js';

/** The default give-up: (maxRetries 5 + 1) x 1,000 ms. */
const GIVE_UP_MS = 6_000;
const BLKSIZE = 65_464;

let root: string;
let removeRoot: () => Promise<void>;
/** The prototype every FileHandle shares: where the disk is held. */
let handleProto: FileHandle;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(async () => {
  const d = await tempDir('rserpool-tftp-stuck-disk-');
  root = d.path;
  removeRoot = d.remove;
  await mkdir(join(root, 'uploads'));
  await writeFile(join(root, 'probe'), 'x');
  const h = await open(join(root, 'probe'));
  handleProto = Object.getPrototypeOf(h) as FileHandle;
  await h.close();
});
afterAll(async () => {
  await removeRoot();
});

/** The temporary files of uploads of `name` (dot-prefixed, renamed when complete). */
const temporaries = async (name: string): Promise<string[]> => (await readdir(join(root, 'uploads'))).filter((n) => n.startsWith(`.${name}.`));

interface HeldDisk {
  /** Which calls (by their arguments) go through untouched. */
  passing: (args: unknown[]) => boolean;
  waiting: () => number;
  called: () => Promise<void>;
  /** Lets the held call `at` (0: the oldest) go. */
  release: (err?: Error, at?: number) => void;
}

/** Calls of FileHandle[method] wait until the test lets them go, one at a time, to complete (real call) or fail. */
function holdDisk(method: 'write' | 'datasync' | 'read'): HeldDisk {
  const held: ((err: Error | undefined) => void)[] = [];
  let arrived: (() => void) | undefined;
  const real = handleProto[method] as (...a: unknown[]) => Promise<unknown>;
  const disk: HeldDisk = {
    passing: () => false,
    waiting: () => held.length,
    called: () =>
      withDeadline(
        new Promise<void>((r) => {
          if (held.length > 0) r();
          else arrived = r;
        }).finally(() => (arrived = undefined)),
        10_000,
        `a held ${method}`,
      ),
    release: (err, at = 0) => held.splice(at, 1)[0]!(err),
  };
  // Before the server closes: a transfer waiting on its disk would wait for the ManualClock.
  cleanups.push(() => {
    disk.passing = () => true;
    for (const r of held.splice(0)) r(undefined);
  });
  vi.spyOn(handleProto, method).mockImplementation(async function (this: FileHandle, ...args: unknown[]) {
    if (disk.passing(args)) return real.apply(this, args);
    const err = await new Promise<Error | undefined>((r) => {
      held.push(r);
      arrived?.();
    });
    if (err) throw err;
    return real.apply(this, args);
  } as never);
  return disk;
}

/** No unhandled rejection or exception while the test runs. */
function watchUnhandled(): unknown[] {
  const seen: unknown[] = [];
  const on = (e: unknown): void => {
    seen.push(e);
  };
  process.on('unhandledRejection', on);
  process.on('uncaughtException', on);
  cleanups.push(() => {
    process.off('unhandledRejection', on);
    process.off('uncaughtException', on);
  });
  return seen;
}

async function setup(init: { readAheadBytes?: number } = {}): Promise<{ s: TftpServer; clock: ManualClock; p: RawPeer; ends: TransferResult[] }> {
  const clock = new ManualClock();
  const s = createTftpServer({ root, port: 0, secret: 'test secret', writable: true, ...init }, { clock });
  await s.start();
  cleanups.push(() => s.close());
  const p = await RawPeer.open();
  cleanups.push(() => p.close());
  const ends: TransferResult[] = [];
  s.on('transfer-end', (_t, r) => ends.push(r));
  return { s, clock, p, ends };
}

/** WRQ with blksize 65464, lock-step; returns the transfer's port. */
async function wrq(p: RawPeer, s: TftpServer, name: string): Promise<number> {
  p.sendPacket({ opcode: TftpOpcode.Wrq, filename: name, mode: 'octet', options: [['blksize', String(BLKSIZE)]] }, s.address.port);
  const o = await p.nextTftp();
  expect(o.packet).toMatchObject({ opcode: TftpOpcode.Oack });
  return o.port;
}

/** Sends block n of `data` (blksize 65464). */
function data(p: RawPeer, port: number, bytes: Buffer, n: number): void {
  p.sendPacket({ opcode: TftpOpcode.Data, block: n & 0xffff, data: bytes.subarray((n - 1) * BLKSIZE, Math.min(n * BLKSIZE, bytes.length)) }, port);
}

/** Sends blocks from..to lock-step, each ACKed. */
async function lockStep(p: RawPeer, port: number, bytes: Buffer, from: number, to: number): Promise<void> {
  for (let n = from; n <= to; n++) {
    data(p, port, bytes, n);
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: n & 0xffff });
  }
}

function expectDiskError(packet: TftpPacket): void {
  expect(packet).toMatchObject({ opcode: TftpOpcode.Error, code: TftpErrorCode.NotDefined });
  expect((packet as { message: string }).message).toMatch(/disk did not answer/);
}

describe('a PE whose disk does not answer, uploads', () => {
  it.each([
    ['write', 'completes'],
    ['write', 'fails'],
    ['datasync', 'completes'],
    ['datasync', 'fails'],
  ] as const)(
    'gives up on a %s that never ends while it stores the last block: ERROR, disk-timeout, slot freed; when it %s later, nothing more happens',
    async (method, later) => {
      const unhandled = watchUnhandled();
      const { s, clock, p, ends } = await setup();
      const disk = holdDisk(method);
      const name = `stored-${method}-${later}.bin`;
      const bytes = randomBytes(BLKSIZE + 1000);
      const port = await wrq(p, s, `uploads/${name}`);
      await lockStep(p, port, bytes, 1, 1);
      // The last block: the file is written (under 1 MiB: its one write comes now) and synced before the final ACK.
      data(p, port, bytes, 2);
      await disk.called();
      expect(s.activeTransfers).toBe(1);
      clock.advance(GIVE_UP_MS - 1);
      expect(ends).toEqual([]);
      expect(s.activeTransfers).toBe(1);
      clock.advance(1);
      expect(ends).toHaveLength(1);
      expect(ends[0]).toMatchObject({ reason: 'disk-timeout', lastBlock: 2 });
      expect(s.activeTransfers).toBe(0);
      expectDiskError((await p.nextTftp()).packet);

      disk.release(later === 'fails' ? Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }) : undefined);
      await until('the temporary file removed', async () => (await temporaries(name)).length === 0);
      expect(await readdir(join(root, 'uploads'))).not.toContain(name);
      clock.advance(GIVE_UP_MS * 2);
      expect(ends).toHaveLength(1);
      expect(p.pending).toBe(0);
      expect(unhandled).toEqual([]);
    },
  );

  it('gives up on a write that never ends while the ACK is held for the write queue: ERROR, disk-timeout, slot freed', async () => {
    const unhandled = watchUnhandled();
    const { s, clock, p, ends } = await setup();
    const disk = holdDisk('write');
    const bytes = randomBytes(20 << 20);
    const name = 'held.bin';
    const port = await wrq(p, s, `uploads/${name}`);
    // The disk takes none of it: the block that puts more than 16 MiB in the write queue gets no ACK.
    const held = Math.ceil((17 << 20) / BLKSIZE);
    await lockStep(p, port, bytes, 1, held - 1);
    expect(disk.waiting()).toBe(1);
    const sentAt = clock.now();
    data(p, port, bytes, held);
    // The server takes the block in its own time: the clock moves on until it gives up.
    const deadline = Date.now() + 15_000;
    while (ends.length === 0 && Date.now() < deadline) await clock.advanceAsync(100);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ reason: 'disk-timeout', lastBlock: held });
    expect(clock.now() - sentAt).toBeGreaterThanOrEqual(GIVE_UP_MS);
    expect(s.activeTransfers).toBe(0);
    // No ACK of the held block (a re-ACK of the one before, had the clock moved before the server took it): the ERROR.
    let next = (await p.nextTftp()).packet;
    while (next.opcode === TftpOpcode.Ack && next.block === held - 1) next = (await p.nextTftp()).packet;
    expectDiskError(next);

    disk.release();
    await until('the temporary file removed', async () => (await temporaries(name)).length === 0);
    expect(disk.waiting()).toBe(0);
    expect(ends).toHaveLength(1);
    expect(unhandled).toEqual([]);
  });

  it('takes nothing past the held ACK from a client that sends on without it: the write queue stays bounded', async () => {
    const unhandled = watchUnhandled();
    const { s, clock, p, ends } = await setup();
    const disk = holdDisk('write');
    const bytes = randomBytes(24 << 20);
    const name = 'flood.bin';
    const port = await wrq(p, s, `uploads/${name}`);
    const held = Math.ceil((17 << 20) / BLKSIZE);
    await lockStep(p, port, bytes, 1, held - 1);
    // The held block, then 6 MiB more that no ACK asked for.
    for (let n = held; n <= held + 96; n++) data(p, port, bytes, n);
    // Past the held block is a window past its ACK: the PE keeps none of it.
    const deadline = Date.now() + 15_000;
    while (ends.length === 0 && Date.now() < deadline) await clock.advanceAsync(100);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ reason: 'disk-timeout', lastBlock: held });
    expect(s.activeTransfers).toBe(0);
    disk.release();
    await until('the temporary file removed', async () => (await temporaries(name)).length === 0);
    expect(unhandled).toEqual([]);
  });

  it('waits on a disk that takes a little within each give-up time, and stores the file', async () => {
    const unhandled = watchUnhandled();
    const { s, clock, p, ends } = await setup();
    const write = holdDisk('write');
    const sync = holdDisk('datasync');
    // Two chunks of 1 MiB written at once while receiving; the rest, flushed once the last block is in, held.
    write.passing = ([, , , position]) => (position as number) < 2 << 20;
    const bytes = randomBytes((3 << 20) - 5000);
    const port = await wrq(p, s, 'uploads/slow.bin');
    const last = Math.floor(bytes.length / BLKSIZE) + 1;
    await lockStep(p, port, bytes, 1, last - 1);
    data(p, port, bytes, last);
    // Storing: the last write, then the sync, each let go just before the give-up.
    for (const d of [write, sync]) {
      await d.called();
      clock.advance(GIVE_UP_MS - 1);
      expect(ends).toEqual([]);
      d.release();
    }
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: last });
    await until('the transfer end', () => ends.length === 1);
    expect(ends[0]).toMatchObject({ reason: 'done', bytes: bytes.length });
    expect(s.activeTransfers).toBe(0);
    expect(await readdir(join(root, 'uploads'))).toContain('slow.bin');
    expect(unhandled).toEqual([]);
  });

  it('reports the end of an upload the client cancels while a write never ends, after the give-up time at most', async () => {
    const unhandled = watchUnhandled();
    const { s, clock, p, ends } = await setup();
    const disk = holdDisk('write');
    const bytes = randomBytes(3 << 20);
    const name = 'cancelled.bin';
    const port = await wrq(p, s, `uploads/${name}`);
    // Past 1 MiB: a write is under way, the queue far from full, the ACKs go.
    await lockStep(p, port, bytes, 1, 20);
    await disk.called();
    p.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: 'cancelled' }, port);
    const deadline = Date.now() + 15_000;
    while (ends.length === 0 && Date.now() < deadline) await clock.advanceAsync(100);
    expect(ends[0]).toMatchObject({ reason: 'peer-error' });
    expect(s.activeTransfers).toBe(0);
    disk.release();
    await until('the temporary file removed', async () => (await temporaries(name)).length === 0);
    expect(ends).toHaveLength(1);
    expect(unhandled).toEqual([]);
  });
});

/** The default chunk (4 MiB) holds 64 blocks of 65464: its file bytes. */
const CHUNK_BLOCKS = 64;
const CHUNK_FILE_BYTES = CHUNK_BLOCKS * BLKSIZE;

describe('a PE whose disk does not answer, downloads', () => {
  /** A file of a chunk and two blocks more: its second chunk is read only when the transfer needs it (no read-ahead room). */
  async function stuckFile(name: string): Promise<Buffer> {
    const bytes = randomBytes(CHUNK_FILE_BYTES + BLKSIZE + 1000);
    await writeFile(join(root, name), bytes);
    return bytes;
  }

  /** The read-ahead bound is one chunk: the transfer reads its next chunk only once it needs it. */
  const noReadAhead = { readAheadBytes: 4 << 20 };

  /** RRQ with blksize 65464, lock-step; the OACK's ACK sent; returns the transfer's port. */
  async function rrq(p: RawPeer, s: TftpServer, name: string): Promise<number> {
    p.sendPacket({ opcode: TftpOpcode.Rrq, filename: name, mode: 'octet', options: [['blksize', String(BLKSIZE)]] }, s.address.port);
    const o = await p.nextTftp();
    expect(o.packet).toMatchObject({ opcode: TftpOpcode.Oack });
    p.ack(0, o.port);
    return o.port;
  }

  /** Takes DATA from..to, each ACKed; returns their bytes. */
  async function receive(p: RawPeer, port: number, from: number, to: number): Promise<Buffer[]> {
    const got: Buffer[] = [];
    for (let n = from; n <= to; n++) {
      const d = (await p.nextTftp()).packet;
      expect(d).toMatchObject({ opcode: TftpOpcode.Data, block: n & 0xffff });
      got.push(Buffer.from((d as { data: Uint8Array }).data));
      p.ack(n, port);
    }
    return got;
  }

  it.each(['completes', 'fails'] as const)(
    'gives up on a chunk read that never ends: ERROR, disk-timeout, slot and read-ahead freed; when it %s later, nothing more happens',
    async (later) => {
      const unhandled = watchUnhandled();
      const { s, clock, p, ends } = await setup(noReadAhead);
      const disk = holdDisk('read');
      disk.passing = ([, , , position]) => (position as number) < CHUNK_FILE_BYTES;
      const name = `stuck-read-${later}.bin`;
      const bytes = await stuckFile(name);
      const port = await rrq(p, s, name);
      await receive(p, port, 1, CHUNK_BLOCKS);
      // The ACK of the chunk's last block: the transfer waits on the next chunk's read.
      await disk.called();
      expect(s.activeTransfers).toBe(1);
      expect(s.transferBytes).toBeGreaterThan(0);
      clock.advance(GIVE_UP_MS - 1);
      expect(ends).toEqual([]);
      clock.advance(1);
      expect(ends).toHaveLength(1);
      expect(ends[0]).toMatchObject({ reason: 'disk-timeout', lastBlock: CHUNK_BLOCKS, bytes: CHUNK_FILE_BYTES });
      expect(s.activeTransfers).toBe(0);
      expect(s.transferBytes).toBe(0);
      expectDiskError((await p.nextTftp()).packet);

      // The disk answers again; the read given up on settles late.
      disk.passing = () => true;
      disk.release(later === 'fails' ? Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }) : undefined);
      const again = await download(p, s.address.port, name, [['blksize', String(BLKSIZE)]]);
      expect(again.data.equals(bytes)).toBe(true);
      await until('the second transfer end', () => ends.length === 2);
      clock.advance(GIVE_UP_MS * 2);
      expect(ends).toHaveLength(2);
      expect(ends[1]).toMatchObject({ reason: 'done', bytes: bytes.length });
      expect(s.activeTransfers).toBe(0);
      expect(s.transferBytes).toBe(0);
      expect(p.pending).toBe(0);
      expect(unhandled).toEqual([]);
    },
  );

  it('reads the chunk again for a later download rather than wait on the read given up on; a read done within the give-up time is waited on', async () => {
    const unhandled = watchUnhandled();
    const { s, clock, p, ends } = await setup(noReadAhead);
    const disk = holdDisk('read');
    disk.passing = ([, , , position]) => (position as number) < CHUNK_FILE_BYTES;
    const name = 'stuck-read-again.bin';
    const bytes = await stuckFile(name);
    let port = await rrq(p, s, name);
    await receive(p, port, 1, CHUNK_BLOCKS);
    await disk.called();
    clock.advance(GIVE_UP_MS);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ reason: 'disk-timeout' });
    expectDiskError((await p.nextTftp()).packet);

    // The first read stays held. The next download's first chunk comes from the cache; its second is read anew (held too).
    port = await rrq(p, s, name);
    const got = await receive(p, port, 1, CHUNK_BLOCKS);
    await until('a second held read', () => disk.waiting() === 2);
    clock.advance(GIVE_UP_MS - 1);
    expect(ends).toHaveLength(1);
    disk.passing = () => true;
    disk.release(undefined, 1);
    got.push(...(await receive(p, port, CHUNK_BLOCKS + 1, CHUNK_BLOCKS + 2)));
    expect(Buffer.concat(got).equals(bytes)).toBe(true);
    await until('the second transfer end', () => ends.length === 2);
    expect(ends[1]).toMatchObject({ reason: 'done', bytes: bytes.length });
    expect(disk.waiting()).toBe(1);

    disk.release();
    const third = await download(p, s.address.port, name, [['blksize', String(BLKSIZE)]]);
    expect(third.data.equals(bytes)).toBe(true);
    await until('the third transfer end', () => ends.length === 3);
    expect(ends.map((e) => e.reason)).toEqual(['disk-timeout', 'done', 'done']);
    expect(s.activeTransfers).toBe(0);
    expect(s.transferBytes).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it('gives up alike on a read-ahead it came to wait on, and a later download reads that chunk again', async () => {
    const unhandled = watchUnhandled();
    const { s, clock, p, ends } = await setup();
    const disk = holdDisk('read');
    disk.passing = ([, , , position]) => (position as number) < CHUNK_FILE_BYTES;
    const name = 'stuck-read-ahead.bin';
    const bytes = await stuckFile(name);
    const port = await rrq(p, s, name);
    // The next chunk is read ahead while the first one goes out: held from before the transfer waits on it.
    await disk.called();
    await receive(p, port, 1, CHUNK_BLOCKS);
    const ackAt = clock.now();
    // The server takes the last ACK in its own time: the clock moves on until it gives up.
    const deadline = Date.now() + 15_000;
    while (ends.length === 0 && Date.now() < deadline) await clock.advanceAsync(100);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ reason: 'disk-timeout', lastBlock: CHUNK_BLOCKS });
    expect(clock.now() - ackAt).toBeGreaterThanOrEqual(GIVE_UP_MS);
    expect(s.activeTransfers).toBe(0);
    expect(s.transferBytes).toBe(0);
    // DATA 64 again, had the clock moved before the server took its ACK; then the ERROR.
    let next = (await p.nextTftp()).packet;
    while (next.opcode === TftpOpcode.Data && next.block === CHUNK_BLOCKS) next = (await p.nextTftp()).packet;
    expectDiskError(next);

    disk.passing = () => true;
    const again = await download(p, s.address.port, name, [['blksize', String(BLKSIZE)]]);
    expect(again.data.equals(bytes)).toBe(true);
    expect(disk.waiting()).toBe(1);
    disk.release();
    await until('the second transfer end', () => ends.length === 2);
    expect(ends[1]).toMatchObject({ reason: 'done', bytes: bytes.length });
    expect(unhandled).toEqual([]);
  });
});
