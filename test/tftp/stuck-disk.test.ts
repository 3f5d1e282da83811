/**
 * A PE whose disk never finishes a write or sync does not keep the upload:
 * once the disk has taken nothing for the transfer's give-up time
 * ((maxRetries + 1) x timeout) while the transfer waits on it (an ACK held
 * for the write queue, the last block being stored), the client gets a TFTP
 * ERROR and the transfer ends ('disk-timeout'), freeing its slot. A disk
 * that takes something within each give-up time is waited on. Real sockets
 * on loopback, timers on a ManualClock; the disk is FileHandle.write or
 * datasync held until the test lets each call go.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createTftpServer, type TftpServer, type TransferResult } from '../../lib/tftp/server/index.js';
import { TftpErrorCode, TftpOpcode, type TftpPacket } from '../../protocols/tftp/types.js';
import { withDeadline } from '../transport/util.js';
import { RawPeer, tempDir } from './server-helpers.js';

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

/** Waits for the condition, polled, failing at the deadline. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface HeldDisk {
  /** Which calls (by their arguments) go through untouched. */
  passing: (args: unknown[]) => boolean;
  waiting: () => number;
  called: () => Promise<void>;
  release: (err?: Error) => void;
}

/** Calls of FileHandle[method] wait until the test lets them go, one at a time, to complete (real call) or fail. */
function holdDisk(method: 'write' | 'datasync'): HeldDisk {
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
    release: (err) => held.shift()!(err),
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

async function setup(): Promise<{ s: TftpServer; clock: ManualClock; p: RawPeer; ends: TransferResult[] }> {
  const clock = new ManualClock();
  const s = createTftpServer({ root, port: 0, secret: 'test secret', writable: true }, { clock });
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
