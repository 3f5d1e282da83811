/**
 * A PE whose disk is slow is not a dead PE: while a cookie client waits on
 * the PE's disk (its ACK held for the write queue, or the last block being
 * stored) the PE repeats its latest cookie, and the client counts that, from
 * the transfer's port only, as life. Real sockets on loopback; the slow disk
 * is a delay put into FileHandle.datasync.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import {
  NoPoolElementError,
  TftpRemoteError,
  TransferTimeoutError,
  createTftpClient,
  type FailoverInfo,
  type TftpClient,
} from '../../lib/tftp/client/index.js';
import { BufferSource } from '../../lib/tftp/client/sender.js';
import { upload, type UploadResult } from '../../lib/tftp/client/upload.js';
import { encodeCookie } from '../../lib/tftp/server/cookie.js';
import { createTftpPoolElement, type TftpPoolElement } from '../../lib/tftp/server/index.js';
import type { TransferResult } from '../../lib/tftp/server/types.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { until } from '../transport/util.js';

const dir = mkdtempSync(join(tmpdir(), 'tftp-slow-disk-'));
const root = join(dir, 'root');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
let registrar: Registrar;
let url: string;
/** The prototype every FileHandle shares: where the slow disk goes in. */
let handleProto: FileHandle;

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(async () => {
  mkdirSync(root);
  const probe = join(dir, 'probe');
  writeFileSync(probe, 'x');
  const h = await open(probe);
  handleProto = Object.getPrototypeOf(h) as FileHandle;
  await h.close();
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});

afterAll(async () => {
  await registrar.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Each datasync takes `ms` longer (a disk or file server slow to make data durable). */
function slowSync(ms: number): void {
  const sync = handleProto.datasync;
  vi.spyOn(handleProto, 'datasync').mockImplementation(async function (this: FileHandle) {
    await new Promise((r) => setTimeout(r, ms));
    return sync.call(this);
  });
}

async function onePe(limits: { retransmitMs?: number; maxRetries?: number } = {}): Promise<{ pe: TftpPoolElement; ends: TransferResult[] }> {
  const pe = createTftpPoolElement({ root, port: 0, handle: 'uploads', registrars: [url], secret: 'pool secret', writable: true, overwrite: true, ...limits });
  await pe.start();
  cleanups.push(() => pe.stop());
  const ends: TransferResult[] = [];
  pe.server.on('transfer-end', (_t, r) => ends.push(r));
  return { pe, ends };
}

function client(init: { deadAfterMs?: number } = {}): TftpClient {
  const c = createTftpClient({ registrars: [url], blksize: 1468, windowsize: 16, ...init });
  cleanups.push(() => c.close());
  return c;
}

describe('a PE with a slow disk', () => {
  it('keeps a cookie client waiting while its ACK is held for the disk: one PE, no failover, byte-identical', async () => {
    const { ends } = await onePe();
    slowSync(700);
    const data = randomBytes(24 * (1 << 20) + 777);
    const failovers: FailoverInfo[] = [];
    const r = await client().put('uploads', 'slow-held.bin', data, { onFailover: (f) => failovers.push(f) });
    expect(r).toMatchObject({ bytes: data.length, failovers: 0, restarts: 0 });
    expect(failovers).toEqual([]);
    expect(sha(readFileSync(join(root, 'slow-held.bin')))).toBe(sha(data));
    await until('the transfer end', () => ends.length === 1);
    expect(ends[0]).toMatchObject({ reason: 'done' });
    expect(ends[0]!.keepAlives).toBeGreaterThan(0);
  });

  it('keeps a cookie client waiting while it stores the last block, before any cookie went', async () => {
    const { ends } = await onePe();
    slowSync(700);
    // Under the cookie spacing: the only sync is the one before the final ACK.
    const data = randomBytes(300_000);
    const r = await client().put('uploads', 'slow-store.bin', data);
    expect(r).toMatchObject({ bytes: data.length, failovers: 0 });
    expect(sha(readFileSync(join(root, 'slow-store.bin')))).toBe(sha(data));
    await until('the transfer end', () => ends.length === 1);
    expect(ends[0]).toMatchObject({ reason: 'done' });
    expect(ends[0]!.keepAlives).toBeGreaterThan(0);
  });

  it("gives up when the disk takes nothing for the transfer's own give-up: keep-alives until then, an ERROR the client fails over on", async () => {
    // Give-up after (maxRetries + 1) x retransmitMs = 300 ms without the disk taking anything.
    const { ends } = await onePe({ retransmitMs: 100, maxRetries: 2 });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    cleanups.push(() => open());
    const sync = handleProto.datasync;
    vi.spyOn(handleProto, 'datasync').mockImplementation(async function (this: FileHandle) {
      await gate;
      return sync.call(this);
    });
    // Silence for 1 s is death to this client: the PE's ERROR at 300 ms comes first even on a loaded host.
    const err = await client({ deadAfterMs: 1_000 })
      .put('uploads', 'stuck.bin', randomBytes(300_000))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(NoPoolElementError);
    expect((err as Error).cause).toBeInstanceOf(TftpRemoteError);
    expect(((err as Error).cause as TftpRemoteError).remoteMessage).toMatch(/disk did not answer/);
    await until('the transfer end', () => ends.length === 1);
    expect(ends[0]).toMatchObject({ reason: 'disk-timeout' });
    expect(ends[0]!.keepAlives).toBeGreaterThan(0);
    open();
  });
});

/** A scripted PE for the client's rule: its listening port, and the transfer's port (TID). */
async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    s.close();
  });
  return s;
}

const cookie = (next: number): Uint8Array =>
  encodeAsapMessage({
    type: AsapMessageType.Cookie,
    cookie: encodeCookie({ path: 'f', size: 0, mtimeMs: 0, blksize: 512, windowsize: 1, timeout: 0, next, interval: 4 }, 'secret', {
      address: '127.0.0.1',
      now: Date.now(),
      lifetimeMs: 60_000,
    }),
  });

/**
 * Uploads 8 blocks of 512 to a scripted PE that ACKs block 1, then holds the
 * ACK of block 2 for `holdMs`, sending `during()` every 50 ms meanwhile,
 * then ACKs the rest.
 */
async function heldUpload(
  holdMs: number,
  during: (tid: Socket, client: RemoteInfo, other: Socket) => void,
): Promise<{ result: Promise<UploadResult>; heldAt: () => number }> {
  const listen = await bound();
  const tid = await bound();
  const other = await bound();
  const data = randomBytes(512 * 8 + 100);
  let heldAt = 0;
  const result = upload(
    new BufferSource(data),
    { path: 'f', blksize: 512, windowsize: 1, timeoutMs: 1_000, deadAfterMs: 600, minDeadAfterMs: 200, maxFailovers: 0, cookieInterval: 0 },
    { next: (exclude) => Promise.resolve(exclude.size === 0 ? { host: '127.0.0.1', port: listen.address().port } : undefined), unreachable: () => {} },
    { clock: systemClock, logger: silentLogger },
  );
  listen.once('message', (_msg, rinfo) => {
    tid.send(encodeTftpPacket({ opcode: TftpOpcode.Ack, block: 0 }), rinfo.port, rinfo.address);
    let timer: NodeJS.Timeout | undefined;
    let held = false;
    tid.on('message', (msg, from) => {
      const p = decodeTftpPacket(msg);
      if (p.opcode !== TftpOpcode.Data) return;
      if (p.block === 2 && !held) {
        held = true;
        heldAt = Date.now();
        timer = setInterval(() => during(tid, from, other), 50);
        const release = setTimeout(() => {
          clearInterval(timer);
          tid.send(encodeTftpPacket({ opcode: TftpOpcode.Ack, block: 2 }), from.port, from.address);
        }, holdMs);
        // Both go before the sockets close: a test that ends before the hold does must not send on a closed socket.
        cleanups.push(() => {
          clearInterval(timer);
          clearTimeout(release);
        });
        return;
      }
      if (p.block === 2 && Date.now() - heldAt < holdMs) return;
      tid.send(encodeTftpPacket({ opcode: TftpOpcode.Ack, block: p.block }), from.port, from.address);
    });
  });
  return { result, heldAt: () => heldAt };
}

describe("the upload client's rule for life", () => {
  it("counts the PE's cookies from the transfer's port as life while the PE holds its ACK", async () => {
    const { result } = await heldUpload(900, (tid, c) => tid.send(cookie(1), c.port, c.address));
    await expect(result).resolves.toMatchObject({ failovers: 0 });
  });

  it('does not count ASAP garbage, a cookie it cannot read, or a cookie from another port as life', async () => {
    const junk = [
      Buffer.from([AsapMessageType.Cookie, 0x00, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef]),
      cookie(1).subarray(0, 30),
      encodeAsapMessage({ type: AsapMessageType.Cookie, cookie: new Uint8Array(40) }),
    ];
    const { result, heldAt } = await heldUpload(5_000, (tid, c, other) => {
      for (const j of junk) tid.send(j, c.port, c.address);
      other.send(cookie(1), c.port, c.address);
    });
    const err = await result.then(
      () => undefined,
      (e: unknown) => e,
    );
    const failedAfter = Date.now() - heldAt();
    expect(err).toBeInstanceOf(NoPoolElementError);
    expect((err as Error).cause).toBeInstanceOf(TransferTimeoutError);
    // Declared dead by its silence, well before the hold ends.
    expect(failedAfter).toBeLessThan(3_000);
  });
});

describe('a PE with a slow disk, downloads', () => {
  it('keeps a cookie client waiting while it reads a chunk: one PE, no failover, byte-identical', async () => {
    const { ends } = await onePe();
    const data = randomBytes(10 * (1 << 20) + 333);
    writeFileSync(join(root, 'slow-read.bin'), data);
    const read = handleProto.read;
    vi.spyOn(handleProto, 'read').mockImplementation(async function (this: FileHandle, ...args: unknown[]) {
      await new Promise((r) => setTimeout(r, 700));
      return (read as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as typeof read);
    const out = join(dir, 'slow-read.out');
    const failovers: FailoverInfo[] = [];
    const r = await client().get('uploads', 'slow-read.bin', out, { onFailover: (f) => failovers.push(f) });
    expect(r).toMatchObject({ bytes: data.length, failovers: 0 });
    expect(sha(readFileSync(out))).toBe(sha(data));
    await until('the transfer end', () => ends.length === 1);
    expect(ends[0]).toMatchObject({ reason: 'done' });
    expect(ends[0]!.keepAlives).toBeGreaterThan(0);
  });
});
