/**
 * The client's TFTP state machine against a scripted peer on loopback: each
 * test plays a PE packet by packet and checks what the client answers.
 */
import { Socket, createSocket, type RemoteInfo } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { AbortedError } from '../../lib/errors.js';
import { absoluteBlock } from '../../protocols/tftp/packets.js';
import { peekCookieNext } from '../../lib/tftp/client/cookie.js';
import {
  CookieRefusedError,
  TftpProtocolError,
  TftpRemoteError,
  TransferTimeoutError,
  createTftpClient,
  type DownloadSink,
  type FailoverInfo,
  type PeFinder,
  type TftpClient,
  type TftpClientInit,
} from '../../lib/tftp/client/index.js';
import { COOKIE_ERROR_PREFIX, COOKIE_OPTION } from '../../lib/tftp/contract.js';
import { encodeCookie } from '../../lib/tftp/server/cookie.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType, type AsapMessage } from '../../protocols/asap/types.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode, type TftpPacket } from '../../protocols/tftp/types.js';

const DEADLINE_MS = 10_000;

interface Received {
  msg: Buffer;
  rinfo: RemoteInfo;
}

/** One UDP endpoint of the scripted PE: a listening port or a transfer's TID. */
class Peer {
  readonly socket: Socket;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.#queue.push({ msg, rinfo });
      this.#waiter?.();
    });
  }

  static async open(): Promise<Peer> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    const p = new Peer(s);
    peers.push(p);
    return p;
  }

  get port(): number {
    return this.socket.address().port;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** The next datagram, or a rejection at the deadline. */
  async next(timeoutMs = DEADLINE_MS): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram at port ${this.port} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#queue.shift()!;
  }

  async nextTftp(timeoutMs?: number): Promise<{ p: TftpPacket; rinfo: RemoteInfo }> {
    const r = await this.next(timeoutMs);
    return { p: decodeTftpPacket(r.msg), rinfo: r.rinfo };
  }

  /** The next packet that is not a (retransmitted) ACK. */
  async nextNonAck(timeoutMs?: number): Promise<TftpPacket> {
    for (;;) {
      const { p } = await this.nextTftp(timeoutMs);
      if (p.opcode !== TftpOpcode.Ack) return p;
    }
  }

  async nextAsap(timeoutMs?: number): Promise<{ m: AsapMessage; rinfo: RemoteInfo }> {
    const r = await this.next(timeoutMs);
    return { m: decodeAsapMessage(r.msg), rinfo: r.rinfo };
  }

  send(bytes: Uint8Array, to: { port: number; address: string }): void {
    this.socket.send(bytes, to.port, to.address);
  }

  oack(options: [string, string][], to: RemoteInfo): void {
    this.send(encodeTftpPacket({ opcode: TftpOpcode.Oack, options }), to);
  }

  data(block: number, bytes: Uint8Array, to: RemoteInfo): void {
    this.send(encodeTftpPacket({ opcode: TftpOpcode.Data, block: block & 0xffff, data: bytes }), to);
  }
}

const peers: Peer[] = [];
const clients: TftpClient[] = [];
const dir = mkdtempSync(join(tmpdir(), 'tftp-client-protocol-'));
let fileNo = 0;
const outPath = (): string => join(dir, `out-${++fileNo}.bin`);

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const p of peers.splice(0)) p.socket.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function client(init: TftpClientInit, clock?: ManualClock): TftpClient {
  // Long timers by default: the scripted peer decides every packet; a test about timing sets its own.
  const c = createTftpClient({ timeoutMs: 5_000, deadAfterMs: 30_000, sha256: false, ...init }, clock ? { clock } : {});
  clients.push(c);
  return c;
}

function fileOf(blksize: number, blocks: number, tail: number): Buffer {
  const b = Buffer.alloc(blksize * blocks + tail);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function block(file: Buffer, n: number, blksize: number): Buffer {
  return file.subarray((n - 1) * blksize, Math.min(n * blksize, file.length));
}

function expectAck(p: TftpPacket, n: number): void {
  expect(p).toEqual({ opcode: TftpOpcode.Ack, block: n & 0xffff });
}

/**
 * The next ACK from the client, which must be for block n. ACKs it repeats
 * for earlier blocks are skipped: a client retransmits when the scripted
 * peer is slow, as on a loaded machine it may be.
 */
async function nextAck(peer: Peer, n: number): Promise<void> {
  for (;;) {
    const { p } = await peer.nextTftp();
    if (p.opcode === TftpOpcode.Ack && ((n - p.block) & 0xffff) > 0 && ((n - p.block) & 0xffff) < 0x8000) continue;
    expectAck(p, n);
    return;
  }
}

/** One cookie per next block (each sealing has a fresh nonce), so a test can compare what the client echoes. */
const cookies = new Map<number, Uint8Array>();
const cookieFor = (next: number): Uint8Array => {
  let c = cookies.get(next);
  if (!c) {
    c = encodeCookie({ path: 'f', size: 1000, mtimeMs: 1, blksize: 16, windowsize: 2, timeout: 0, next, interval: 2 }, 'secret', {
      address: '127.0.0.1',
      now: Date.now(),
      lifetimeMs: 60_000,
    });
    cookies.set(next, c);
  }
  return c;
};

const asapCookie = (next: number): Uint8Array => encodeAsapMessage({ type: AsapMessageType.Cookie, cookie: cookieFor(next) });

describe('block numbers and cookies', () => {
  it('maps a 16-bit block number to the absolute block nearest the reference, across the rollover', () => {
    expect(absoluteBlock(5, 5)).toBe(5);
    expect(absoluteBlock(0, 65_535)).toBe(65_536);
    expect(absoluteBlock(1, 65_536)).toBe(65_537);
    expect(absoluteBlock(65_535, 65_536)).toBe(65_535);
    expect(absoluteBlock(65_530, 131_072 + 3)).toBe(131_072 - 6);
    expect(absoluteBlock(10, 131_072 + 3)).toBe(131_072 + 10);
  });

  it('reads the next block of a cookie and nothing from bytes that are not one', () => {
    expect(peekCookieNext(cookieFor(70_000))).toBe(70_000);
    expect(peekCookieNext(new Uint8Array(40))).toBeUndefined();
    const bad = Uint8Array.from(cookieFor(3));
    bad[0] = 1;
    expect(peekCookieNext(bad)).toBeUndefined();
    expect(peekCookieNext(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0, ...new Uint8Array(40)]))).toBeUndefined();
    expect(peekCookieNext(new Uint8Array([2, 0xff, 0, 0, 0, 0, 0, 0, 1, ...new Uint8Array(40)]))).toBeUndefined();
  });
});

describe('the TFTP client against a scripted PE', () => {
  it('asks for blksize, windowsize, tsize and cookies, and falls back to lock-step 512 when the server takes no options', async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 1468, windowsize: 8 });
    const out = outPath();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', out);
    const { p, rinfo } = await pe.nextTftp();
    expect(p).toEqual({
      opcode: TftpOpcode.Rrq,
      filename: 'f.bin',
      mode: 'octet',
      options: [
        ['blksize', '1468'],
        ['windowsize', '8'],
        ['tsize', '0'],
        [COOKIE_OPTION, '0'],
      ],
    });
    const file = fileOf(512, 2, 100);
    const tid = await Peer.open();
    for (let n = 1; n <= 3; n++) {
      tid.data(n, block(file, n, 512), rinfo);
      await nextAck(tid, n);
    }
    const r = await done;
    expect(r).toMatchObject({ bytes: file.length, blocks: 3, blksize: 512, windowsize: 1, failovers: 0 });
    expect(readFileSync(out).equals(file)).toBe(true);
  });

  it('acknowledges only at the end of a window, on a gap the last block in order (once), and a repeated window end again', async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 16, windowsize: 4, cookieInterval: false });
    const out = outPath();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', out);
    const { p, rinfo } = await pe.nextTftp();
    expect(p.opcode === TftpOpcode.Rrq && p.options).toEqual([
      ['blksize', '16'],
      ['windowsize', '4'],
      ['tsize', '0'],
    ]);
    const file = fileOf(16, 10, 5);
    const tid = await Peer.open();
    tid.oack(
      [
        ['blksize', '16'],
        ['windowsize', '4'],
        ['tsize', String(file.length)],
      ],
      rinfo,
    );
    await nextAck(tid, 0);
    const send = (...ns: number[]): void => ns.forEach((n) => tid.data(n, block(file, n, 16), rinfo));
    send(1, 2, 3, 4);
    await nextAck(tid, 4);
    // Block 7 is lost: one ACK of 6, however many later blocks of that window arrive.
    send(5, 6, 8);
    await nextAck(tid, 6);
    send(9);
    // The PE starts again after 6; then our ACK of 10 is "lost" and it repeats block 10.
    send(7, 8, 9, 10);
    await nextAck(tid, 10);
    send(10);
    await nextAck(tid, 10);
    send(11);
    await nextAck(tid, 11);
    const r = await done;
    expect(r).toMatchObject({ bytes: file.length, blocks: 11, blksize: 16, windowsize: 4, tsize: file.length });
    expect(readFileSync(out).equals(file)).toBe(true);
    expect(tid.pending).toBe(0);
  });

  it("takes the transfer's port from the PE's first TFTP answer, not from an ASAP datagram that comes before it", async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 16, windowsize: 2 });
    const out = outPath();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', out);
    const { rinfo } = await pe.nextTftp();
    // From the PE's address, another port: a cookie that would claim the transfer.
    const intruder = await Peer.open();
    intruder.send(asapCookie(1), rinfo);
    const tid = await Peer.open();
    tid.oack(
      [
        ['blksize', '16'],
        ['windowsize', '2'],
      ],
      rinfo,
    );
    await nextAck(tid, 0);
    const file = fileOf(16, 1, 5);
    tid.data(1, block(file, 1, 16), rinfo);
    tid.data(2, block(file, 2, 16), rinfo);
    await nextAck(tid, 2);
    await expect(done).resolves.toMatchObject({ bytes: file.length });
    expect(readFileSync(out).equals(file)).toBe(true);
    expect(intruder.pending).toBe(0);
  });

  it("sends a window's ACK before its blocks go to the sink when they are read together (the PE sends on while we store)", async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 16, windowsize: 4, cookieInterval: false });
    // What happened, in order: ACKs leaving the client's socket and blocks reaching the sink.
    const events: string[] = [];
    const tidPorts = new Set<number>();
    const realSend = Socket.prototype.send;
    const spy = vi.spyOn(Socket.prototype, 'send').mockImplementation(function (this: Socket, ...args: Parameters<Socket['send']>) {
      const msg = args[0];
      if (msg instanceof Uint8Array && msg.length === 4 && msg[1] === TftpOpcode.Ack && tidPorts.has(args[1] as number))
        events.push(`ack ${(msg[2]! << 8) | msg[3]!}`);
      return realSend.apply(this, args);
    } as Socket['send']);
    let bytes = 0;
    let writes = 0;
    const sink: DownloadSink = {
      onDrain: undefined,
      full: false,
      takesLate: true,
      failed: undefined,
      canRewind: false,
      get bytes() {
        return bytes;
      },
      write(_buf, start, end) {
        bytes += end - start;
        events.push(`store ${++writes}`);
      },
      rewind: () => Promise.resolve(),
      finish: () => Promise.resolve({ bytes }),
      abort: () => Promise.resolve(),
    };
    const finder: PeFinder = {
      next: (exclude) => Promise.resolve(exclude.size === 0 ? { host: '127.0.0.1', port: pe.port } : undefined),
      unreachable: () => {},
    };
    try {
      const done = c.downloadTo(finder, 'f.bin', sink);
      const { rinfo } = await pe.nextTftp();
      const file = fileOf(16, 8, 16);
      const tid = await Peer.open();
      tidPorts.add(tid.port);
      tid.oack(
        [
          ['blksize', '16'],
          ['windowsize', '4'],
        ],
        rinfo,
      );
      await nextAck(tid, 0);
      for (let n = 1; n <= 4; n++) tid.data(n, block(file, n, 16), rinfo);
      await nextAck(tid, 4);
      for (let n = 5; n <= 8; n++) tid.data(n, block(file, n, 16), rinfo);
      await nextAck(tid, 8);
      tid.data(9, Buffer.alloc(0), rinfo);
      await nextAck(tid, 9);
      await done;
      expect(events.filter((e) => e !== 'ack 0')).toEqual([
        'ack 4',
        'store 1',
        'store 2',
        'store 3',
        'store 4',
        'ack 8',
        'store 5',
        'store 6',
        'store 7',
        'store 8',
        'store 9',
        'ack 9',
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  it('reads the DATA that came while it was busy before resending an ACK for silence', async () => {
    const clock = new ManualClock();
    const pe = await Peer.open();
    const c = client({ blksize: 16, windowsize: 4, cookieInterval: false }, clock);
    const out = outPath();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', out);
    const { rinfo } = await pe.nextTftp();
    const file = fileOf(16, 8, 3);
    const tid = await Peer.open();
    tid.oack(
      [
        ['blksize', '16'],
        ['windowsize', '4'],
      ],
      rinfo,
    );
    await nextAck(tid, 0);
    for (let n = 1; n <= 4; n++) tid.data(n, block(file, n, 16), rinfo);
    await nextAck(tid, 4);
    // Block 5 is in the client's socket (a connected socket sends at once) when its timer finds
    // the PE silent past the resend time: the client's own stall, not the PE's silence.
    tid.socket.connect(rinfo.port, rinfo.address);
    await new Promise<void>((resolve) => tid.socket.once('connect', () => resolve()));
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        tid.socket.send(encodeTftpPacket({ opcode: TftpOpcode.Data, block: 5, data: block(file, 5, 16) }));
        clock.advance(5_100);
        resolve();
      }, 0),
    );
    for (let n = 6; n <= 9; n++) tid.socket.send(encodeTftpPacket({ opcode: TftpOpcode.Data, block: n, data: block(file, n, 16) }));
    // No ACK of 4 again: the next ACK is the window's end.
    expectAck((await tid.nextTftp()).p, 8);
    expectAck((await tid.nextTftp()).p, 9);
    const r = await done;
    expect(r).toMatchObject({ bytes: file.length, timeouts: 0 });
    expect(readFileSync(out).equals(file)).toBe(true);
  });

  it('answers a DATA from an unknown port with ERROR 5 and carries on', async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 512, windowsize: 1, cookieInterval: false });
    const out = outPath();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', out);
    const { rinfo } = await pe.nextTftp();
    const file = fileOf(512, 1, 3);
    const tid = await Peer.open();
    tid.data(1, block(file, 1, 512), rinfo);
    await nextAck(tid, 1);
    const intruder = await Peer.open();
    intruder.data(2, Buffer.from('evil'), rinfo);
    expect((await intruder.nextTftp()).p).toMatchObject({ opcode: TftpOpcode.Error, code: 5 });
    tid.data(2, block(file, 2, 512), rinfo);
    await nextAck(tid, 2);
    await done;
    expect(readFileSync(out).equals(file)).toBe(true);
  });

  it('fails with TftpRemoteError carrying the code and text of an ERROR', async () => {
    const pe = await Peer.open();
    const c = client({});
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'missing.bin', outPath()).catch((e: unknown) => e);
    const { rinfo } = await pe.nextTftp();
    const tid = await Peer.open();
    tid.send(encodeTftpPacket({ opcode: TftpOpcode.Error, code: 1, message: 'no such file: missing.bin' }), rinfo);
    const err = await done;
    expect(err).toBeInstanceOf(TftpRemoteError);
    expect(err).toMatchObject({ tftpCode: 1, remoteMessage: 'no such file: missing.bin', code: 'RSP_ERR_TFTP_REMOTE' });
  });

  it('refuses an OACK granting more than asked with ERROR 8 and TftpProtocolError', async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 512, windowsize: 4 });
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', outPath()).catch((e: unknown) => e);
    const { rinfo } = await pe.nextTftp();
    const tid = await Peer.open();
    tid.oack([['blksize', '1024']], rinfo);
    expect((await tid.nextTftp()).p).toMatchObject({ opcode: TftpOpcode.Error, code: 8 });
    expect(await done).toBeInstanceOf(TftpProtocolError);
  });

  it('gives up on a single PE that never answers with TransferTimeoutError, after retransmitting the request', async () => {
    const pe = await Peer.open();
    const c = client({ timeoutMs: 50, deadAfterMs: 300 });
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', outPath()).catch((e: unknown) => e);
    const first = await pe.nextTftp();
    const again = await pe.nextTftp();
    expect(again.p).toEqual(first.p);
    const err = await done;
    expect(err).toBeInstanceOf(TransferTimeoutError);
    expect((err as Error).message).toMatch(/did not answer for \d+ ms/);
  });

  it('asks a lone server that has not answered the request again, past the dead-PE wait (a server slow to start a transfer)', async () => {
    const clock = new ManualClock(1_000);
    const pe = await Peer.open();
    const c = client({ timeoutMs: 200, deadAfterMs: 600 }, clock);
    const out = outPath();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', out).catch((e: unknown) => e);
    const { rinfo } = await pe.nextTftp();
    // Three dead-PE waits without a word: the request keeps coming.
    for (let i = 0; i < 180; i++) await clock.advanceAsync(10, 10);
    let asked = 0;
    while (pe.pending > 0) if ((await pe.nextTftp()).p.opcode === TftpOpcode.Rrq) asked++;
    expect(asked).toBeGreaterThanOrEqual(3);
    const file = fileOf(512, 0, 100);
    const tid = await Peer.open();
    tid.data(1, file, rinfo);
    await nextAck(tid, 1);
    const r = await done;
    expect(r).toMatchObject({ bytes: 100 });
    expect(readFileSync(out).equals(file)).toBe(true);
  });

  it('gives up on a lone server that never answers after maxFailovers more asks', async () => {
    const clock = new ManualClock(1_000);
    const pe = await Peer.open();
    const c = client({ timeoutMs: 200, deadAfterMs: 600, maxFailovers: 2 }, clock);
    let settled = false;
    const done = c
      .download({ host: '127.0.0.1', port: pe.port }, 'f.bin', outPath())
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    await pe.nextTftp();
    // Three asks of 600 ms each: settled by 1.8 s of silence (and not at the first 600).
    for (let i = 0; i < 70; i++) await clock.advanceAsync(10, 10);
    expect(settled).toBe(false);
    for (let i = 0; i < 200 && !settled; i++) await clock.advanceAsync(10, 10);
    const err = await done;
    expect(err).toBeInstanceOf(TransferTimeoutError);
    expect((err as Error).message).toMatch(/did not answer for \d+ ms/);
  });

  it('stops on the abort signal with AbortedError and tells the PE', async () => {
    const pe = await Peer.open();
    const c = client({ blksize: 512, windowsize: 1, cookieInterval: false });
    const ac = new AbortController();
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', outPath(), { signal: ac.signal }).catch((e: unknown) => e);
    const { rinfo } = await pe.nextTftp();
    const tid = await Peer.open();
    tid.data(1, Buffer.alloc(512), rinfo);
    await nextAck(tid, 1);
    ac.abort();
    expect(await done).toBeInstanceOf(AbortedError);
    expect((await tid.nextTftp()).p).toMatchObject({ opcode: TftpOpcode.Error, code: 0 });
  });
});

/** PE 1 serves blocks 1..4 with cookies (next 1, 3, and a stale 1 after 3), then falls silent. */
async function serveFirstFourThenDie(pe1: Peer, file: Buffer): Promise<{ rinfo: RemoteInfo; tid: Peer }> {
  const { p, rinfo } = await pe1.nextTftp();
  expect(p.opcode === TftpOpcode.Rrq && p.options).toContainEqual([COOKIE_OPTION, '2']);
  const tid = await Peer.open();
  tid.oack(
    [
      ['blksize', '16'],
      ['windowsize', '2'],
      [COOKIE_OPTION, '2'],
    ],
    rinfo,
  );
  await nextAck(tid, 0);
  tid.send(asapCookie(1), rinfo);
  tid.data(1, block(file, 1, 16), rinfo);
  tid.data(2, block(file, 2, 16), rinfo);
  await nextAck(tid, 2);
  tid.send(asapCookie(3), rinfo);
  tid.send(asapCookie(1), rinfo);
  tid.data(3, block(file, 3, 16), rinfo);
  tid.data(4, block(file, 4, 16), rinfo);
  await nextAck(tid, 4);
  return { rinfo, tid };
}

describe('failover between scripted PEs', () => {
  it('echoes the cookie with the highest next block to the next PE, skips the blocks it already has, and measures the stall', async () => {
    const pe1 = await Peer.open();
    const pe2 = await Peer.open();
    const c = client({ blksize: 16, windowsize: 2, cookieInterval: 2, timeoutMs: 100, deadAfterMs: 1_500 });
    const out = outPath();
    const failovers: FailoverInfo[] = [];
    const done = c.download(
      [
        { host: '127.0.0.1', port: pe1.port, identifier: 1 },
        { host: '127.0.0.1', port: pe2.port, identifier: 2 },
      ],
      'f.bin',
      out,
      { onFailover: (f) => failovers.push(f) },
    );
    const file = fileOf(16, 6, 9);
    const { tid: tid1 } = await serveFirstFourThenDie(pe1, file);

    const echo = await pe2.nextAsap();
    expect(echo.m).toEqual({ type: AsapMessageType.CookieEcho, cookie: cookieFor(3) });
    // A late DATA of the dead PE's transfer, from the same address as PE 2, is not PE 2's answer: ERROR 5.
    tid1.data(5, Buffer.alloc(16, 0xdd), echo.rinfo);
    expect(await tid1.nextNonAck()).toMatchObject({ opcode: TftpOpcode.Error, code: 5 });
    const tid2 = await Peer.open();
    // Blocks 3 and 4 again, with other bytes: the client has them and must not write these.
    tid2.data(3, Buffer.alloc(16, 0xee), echo.rinfo);
    tid2.data(4, Buffer.alloc(16, 0xee), echo.rinfo);
    await nextAck(tid2, 4);
    tid2.data(5, block(file, 5, 16), echo.rinfo);
    tid2.data(6, block(file, 6, 16), echo.rinfo);
    await nextAck(tid2, 6);
    tid2.data(7, block(file, 7, 16), echo.rinfo);
    await nextAck(tid2, 7);

    const r = await done;
    expect(readFileSync(out).equals(file)).toBe(true);
    expect(r.failovers).toBe(1);
    expect(r.servedBy).toEqual([
      { pe: expect.objectContaining({ identifier: 1 }), fromBlock: 1, toBlock: 4 },
      { pe: expect.objectContaining({ identifier: 2 }), fromBlock: 3, toBlock: 7 },
    ]);
    expect(failovers).toEqual([
      expect.objectContaining({
        from: expect.objectContaining({ identifier: 1 }),
        to: expect.objectContaining({ identifier: 2 }),
        atBlock: 3,
        cookieEchoed: true,
      }),
    ]);
    expect(failovers[0]!.stallMs).toBeGreaterThanOrEqual(1_500);
    expect(r.stallMs).toBe(failovers[0]!.stallMs);
  });

  it('says so when the next PE refuses the cookie', async () => {
    const pe1 = await Peer.open();
    const pe2 = await Peer.open();
    const c = client({ blksize: 16, windowsize: 2, cookieInterval: 2, timeoutMs: 100, deadAfterMs: 1_500 });
    const done = c
      .download(
        [
          { host: '127.0.0.1', port: pe1.port },
          { host: '127.0.0.1', port: pe2.port },
        ],
        'f.bin',
        outPath(),
      )
      .catch((e: unknown) => e);
    await serveFirstFourThenDie(pe1, fileOf(16, 6, 9));
    const echo = await pe2.nextAsap();
    expect(echo.m.type).toBe(AsapMessageType.CookieEcho);
    pe2.send(encodeTftpPacket({ opcode: TftpOpcode.Error, code: 0, message: `${COOKIE_ERROR_PREFIX}stale: f.bin changed` }), echo.rinfo);
    const err = await done;
    expect(err).toBeInstanceOf(CookieRefusedError);
    expect(err).toMatchObject({ reason: 'stale: f.bin changed', code: 'RSP_ERR_TFTP_COOKIE_REFUSED' });
    expect((err as Error).message).toContain('refused the state cookie: stale: f.bin changed');
  });

  it('starts over at that PE from byte 0 when told it may', async () => {
    const pe1 = await Peer.open();
    const pe2 = await Peer.open();
    const c = client({ blksize: 16, windowsize: 2, cookieInterval: 2, timeoutMs: 100, deadAfterMs: 1_500, restartOnRefusal: true });
    const out = outPath();
    const restarts: string[] = [];
    const done = c.download(
      [
        { host: '127.0.0.1', port: pe1.port },
        { host: '127.0.0.1', port: pe2.port },
      ],
      'f.bin',
      out,
      {
        onRestart: (why) => restarts.push(why),
      },
    );
    await serveFirstFourThenDie(pe1, fileOf(16, 6, 9));
    const echo = await pe2.nextAsap();
    pe2.send(encodeTftpPacket({ opcode: TftpOpcode.Error, code: 0, message: `${COOKIE_ERROR_PREFIX}stale: f.bin changed` }), echo.rinfo);
    // The new version of the file is shorter.
    const file = fileOf(16, 2, 1);
    const { p, rinfo } = await pe2.nextTftp();
    expect(p.opcode).toBe(TftpOpcode.Rrq);
    const tid = await Peer.open();
    tid.oack(
      [
        ['blksize', '16'],
        ['windowsize', '2'],
        [COOKIE_OPTION, '2'],
      ],
      rinfo,
    );
    await nextAck(tid, 0);
    tid.data(1, block(file, 1, 16), rinfo);
    tid.data(2, block(file, 2, 16), rinfo);
    await nextAck(tid, 2);
    tid.data(3, block(file, 3, 16), rinfo);
    await nextAck(tid, 3);
    const r = await done;
    expect(r.restarts).toBe(1);
    expect(restarts).toEqual(['cookie refused: stale: f.bin changed']);
    expect(readFileSync(out).equals(file)).toBe(true);
  });

  it('declares a silent PE dead after deadAfterMs (not before), retransmitting its last ACK meanwhile', async () => {
    const clock = new ManualClock(1_000);
    const pe1 = await Peer.open();
    const pe2 = await Peer.open();
    const c = client({ blksize: 16, windowsize: 1, cookieInterval: 1, timeoutMs: 200, deadAfterMs: 600 }, clock);
    const failovers: FailoverInfo[] = [];
    const done = c.download(
      [
        { host: '127.0.0.1', port: pe1.port },
        { host: '127.0.0.1', port: pe2.port },
      ],
      'f.bin',
      outPath(),
      {
        onFailover: (f) => failovers.push(f),
      },
    );
    const { rinfo } = await pe1.nextTftp();
    const tid = await Peer.open();
    tid.oack(
      [
        ['blksize', '16'],
        [COOKIE_OPTION, '1'],
      ],
      rinfo,
    );
    await nextAck(tid, 0);
    tid.send(asapCookie(2), rinfo);
    tid.data(1, Buffer.alloc(16, 1), rinfo);
    await nextAck(tid, 1);
    // Silence: the ACK goes again every 200 ms; at 600 ms the client turns to PE 2.
    for (let i = 0; i < 2; i++) {
      await clock.advanceAsync(200, 10);
      await nextAck(tid, 1);
    }
    expect(pe2.pending).toBe(0);
    await clock.advanceAsync(250, 10);
    const echo = await pe2.nextAsap();
    expect(echo.m.type).toBe(AsapMessageType.CookieEcho);
    const tid2 = await Peer.open();
    tid2.data(2, Buffer.alloc(5, 2), echo.rinfo);
    await nextAck(tid2, 2);
    const r = await done;
    expect(r.bytes).toBe(21);
    expect(failovers).toHaveLength(1);
    expect(failovers[0]!.stallMs).toBeGreaterThanOrEqual(600);
    expect(failovers[0]!.stallMs).toBeLessThan(700);
  });

  it('asks a lone PE again with its cookie when it falls silent after sending blocks, and gives up when maxFailovers (0) more asks get none', async () => {
    const clock = new ManualClock(1_000);
    const pe = await Peer.open();
    // The dead-PE wait follows the round trip down to 200 ms: a loaded host can pause a PE that long.
    const c = client({ blksize: 16, windowsize: 1, cookieInterval: 1, timeoutMs: 200, deadAfterMs: 600, minDeadAfterMs: 200, maxFailovers: 0 }, clock);
    const failovers: FailoverInfo[] = [];
    const done = c.download({ host: '127.0.0.1', port: pe.port }, 'f.bin', outPath(), { onFailover: (f) => failovers.push(f) }).catch((e: unknown) => e);
    const { rinfo } = await pe.nextTftp();
    const tid = await Peer.open();
    tid.oack(
      [
        ['blksize', '16'],
        [COOKIE_OPTION, '1'],
      ],
      rinfo,
    );
    await nextAck(tid, 0);
    tid.send(asapCookie(2), rinfo);
    tid.data(1, Buffer.alloc(16, 1), rinfo);
    await nextAck(tid, 1);
    // 200 ms of silence: dead by the measure, but no other PE is left, so the same one is asked to resume.
    for (let i = 0; i < 30 && pe.pending === 0; i++) await clock.advanceAsync(10, 10);
    const echo = await pe.nextAsap();
    expect(echo.m.type).toBe(AsapMessageType.CookieEcho);
    const tid2 = await Peer.open();
    tid2.data(2, Buffer.alloc(16, 2), echo.rinfo);
    await nextAck(tid2, 2);
    expect(failovers.map((f) => [f.from.port, f.to.port, f.atBlock, f.cookieEchoed])).toEqual([[pe.port, pe.port, 2, true]]);
    // Silent again after a block: asked once more; this time it sends nothing, and the download ends.
    for (let i = 0; i < 30 && pe.pending === 0; i++) await clock.advanceAsync(10, 10);
    expect((await pe.nextAsap()).m.type).toBe(AsapMessageType.CookieEcho);
    for (let i = 0; i < 100; i++) await clock.advanceAsync(10, 10);
    const err = await done;
    expect(err).toBeInstanceOf(TransferTimeoutError);
    expect((err as Error).message).toMatch(/did not answer for 6\d\d ms/);
  });
});
