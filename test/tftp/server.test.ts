/** The TFTP server against a scripted peer on 127.0.0.1: real sockets, port 0, timers on a ManualClock where timing matters. */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Socket } from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createTftpServer, type TftpServer, type TftpServerInit, type TransferInfo, type TransferResult } from '../../lib/tftp/server/index.js';
import { deriveCookieKey, encodeCookie, verifyCookie, type CookieState } from '../../lib/tftp/server/cookie.js';
import { COOKIE_ERROR_PREFIX, COOKIE_OPTION, DEFAULT_COOKIE_INTERVAL, LEAVING_ERROR_PREFIX, isAsapDatagram } from '../../lib/tftp/contract.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpErrorCode, TftpOpcode, type TftpOptionAck, type TftpPacket } from '../../protocols/tftp/types.js';
import { toNetascii } from '../../protocols/tftp/packets.js';
import { waitFor } from '../transport/util.js';
import { RawPeer, cookieOf, download, tempDir } from './server-helpers.js';

let root: string;
let outside: string;
let removeDirs: () => Promise<void>;
const secret = 'test secret';
/** A cookie as the server sees a client on this host now. */
const here = () => ({ address: '127.0.0.1', now: Date.now() });
const small = Buffer.from('hello, pool\n');
const medium = randomBytes(300_000);
const exact = randomBytes(512 * 4);

beforeAll(async () => {
  const a = await tempDir('rserpool-tftp-root-');
  const b = await tempDir('rserpool-tftp-outside-');
  root = a.path;
  outside = b.path;
  removeDirs = async () => {
    await a.remove();
    await b.remove();
  };
  await writeFile(join(root, 'small.txt'), small);
  await writeFile(join(root, 'medium.bin'), medium);
  await writeFile(join(root, 'exact.bin'), exact);
  await writeFile(join(root, 'empty.bin'), Buffer.alloc(0));
  await writeFile(join(root, 'lines.txt'), 'one\ntwo\rthree\r\n');
  await mkdir(join(root, 'dir'));
  await writeFile(join(root, 'dir', 'nested.txt'), 'nested');
  await mkdir(join(root, 'uploads'));
  await writeFile(join(outside, 'secret.txt'), 'outside the root');
  await symlink(join(outside, 'secret.txt'), join(root, 'escape-file'));
  await symlink(outside, join(root, 'escape-dir'));
  await symlink(join(root, 'small.txt'), join(root, 'inside-link'));
});
afterAll(async () => {
  await removeDirs();
});

/** Transfers in this thread, and on two worker threads. */
const MODES = [0, 2];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Retransmissions only after a full second unless a test says otherwise: the scripted peer expects exact sequences. */
async function server(init: Partial<TftpServerInit> = {}, clock?: ManualClock): Promise<TftpServer> {
  const s = createTftpServer({ root, port: 0, secret, minRetransmitMs: 1000, ...init }, clock ? { clock } : {});
  await s.start();
  cleanups.push(() => s.close());
  return s;
}

async function peer(): Promise<RawPeer> {
  const p = await RawPeer.open();
  cleanups.push(() => p.close());
  return p;
}

function rrq(filename: string, options: [string, string][] = [], mode: 'octet' | 'netascii' = 'octet'): TftpPacket {
  return { opcode: TftpOpcode.Rrq, filename, mode, options };
}

/** An unknown opcode, long enough to be answered in full: replies to it mark a point in the reply stream. */
const marker = Buffer.concat([Buffer.from([0, 99]), Buffer.alloc(62)]);

async function expectError(p: RawPeer, code: number, message: RegExp): Promise<number> {
  const { packet, port } = await p.nextTftp();
  expect(packet).toMatchObject({ opcode: TftpOpcode.Error, code });
  expect((packet as { message: string }).message).toMatch(message);
  return port;
}

/** The next TFTP packet must be an ERROR (code 0) matching `message`; the ASAP datagrams before it go to `asap`. */
async function expectErrorAfter(p: RawPeer, asap: Buffer[], message: RegExp): Promise<void> {
  const { packet } = await p.nextTftp(10_000, (b) => asap.push(b));
  expect(packet).toMatchObject({ opcode: TftpOpcode.Error, code: 0 });
  expect((packet as { message: string }).message).toMatch(message);
}

function ended(s: TftpServer, filter?: (t: TransferInfo, r: TransferResult) => boolean): Promise<[TransferInfo, TransferResult]> {
  return waitFor(s, 'transfer-end', { timeoutMs: 15_000, ...(filter ? { filter } : {}) });
}

describe('TFTP server: downloads', () => {
  it.each(MODES)('serves a small file lock-step without options (RFC 1350), from its own port (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const p = await peer();
    const end = ended(s);
    const r = await download(p, s.address.port, 'small.txt');
    expect(r.data).toEqual(small);
    expect(r.oack).toBeUndefined();
    expect(r.transferPort).not.toBe(s.address.port);
    const [info, result] = await end;
    expect(info).toMatchObject({ kind: 'read', path: 'small.txt', blksize: 512, windowsize: 1 });
    expect(result).toMatchObject({ reason: 'done', bytes: small.length, lastBlock: 1 });
    expect(s.activeTransfers).toBe(0);
  });

  it.each(MODES)('negotiates blksize, tsize, timeout and windowsize in an OACK and sends in windows (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const p = await peer();
    const r = await download(p, s.address.port, 'medium.bin', [
      ['blksize', '1468'],
      ['tsize', '0'],
      ['timeout', '3'],
      ['windowsize', '8'],
      ['x-unknown', '1'],
    ]);
    expect(r.data).toEqual(medium);
    expect(r.oack).toEqual([
      ['blksize', '1468'],
      ['tsize', String(medium.length)],
      ['timeout', '3'],
      ['windowsize', '8'],
    ]);
    // One ACK for the OACK, then one per window of 8.
    expect(r.acksSent).toBe(1 + Math.ceil((Math.floor(medium.length / 1468) + 1) / 8));
  });

  it('grants at most its own maximum blksize and windowsize, and leaves bad option values out', async () => {
    const s = await server({ maxBlksize: 1024, maxWindowSize: 4 });
    const p = await peer();
    const r = await download(p, s.address.port, 'medium.bin', [
      ['blksize', '65464'],
      ['windowsize', '100'],
      ['timeout', '0'],
      ['tsize', 'lots'],
    ]);
    expect(r.oack).toEqual([
      ['blksize', '1024'],
      ['windowsize', '4'],
    ]);
    expect(r.data).toEqual(medium);
  });

  it('ends a file that is a multiple of the blksize with an empty block, and serves empty files', async () => {
    const s = await server();
    const p = await peer();
    expect((await download(p, s.address.port, 'exact.bin')).data).toEqual(exact);
    const p2 = await peer();
    expect((await download(p2, s.address.port, 'empty.bin')).data.length).toBe(0);
  });

  it('takes a leading slash as the root and serves nested paths and links that stay inside', async () => {
    const s = await server();
    expect((await download(await peer(), s.address.port, '/dir/nested.txt')).data.toString()).toBe('nested');
    expect((await download(await peer(), s.address.port, 'inside-link')).data).toEqual(small);
  });

  it('converts netascii on the way out (LF -> CR LF, CR -> CR NUL)', async () => {
    const s = await server();
    const r = await download(await peer(), s.address.port, 'lines.txt', [['tsize', '0']], { mode: 'netascii' });
    const expected = Buffer.from('one\r\ntwo\r\0three\r\0\r\n');
    expect(r.data).toEqual(expected);
    expect(r.oack).toEqual([['tsize', String(expected.length)]]);
  });

  it('handles block-number rollover past 65535 (block 0 follows 65535)', async () => {
    const s = await server();
    const big = randomBytes(8 * 70_000 + 3);
    await writeFile(join(root, 'rollover.bin'), big);
    const end = ended(s);
    const r = await download(await peer(), s.address.port, 'rollover.bin', [
      ['blksize', '8'],
      ['windowsize', '64'],
    ]);
    expect(r.data.length).toBe(big.length);
    expect(r.data.equals(big)).toBe(true);
    expect((await end)[1]).toMatchObject({ reason: 'done', lastBlock: 70_001 });
  });

  it('reads files in chunks: blocks straddling two chunks, a cache smaller than the file, no cache at all', async () => {
    for (const cacheBytes of [150_000, 0]) {
      // 65536-byte chunks are no multiple of 1468 or 1000: some blocks span two chunks.
      const s = await server({ chunkBytes: 65_536, cacheBytes });
      const results = await Promise.all(
        [
          [
            ['blksize', '1468'],
            ['windowsize', '8'],
          ],
          [['blksize', '1000']],
          [
            ['blksize', '65464'],
            ['windowsize', '2'],
          ],
        ].map(async (options) => download(await peer(), s.address.port, 'medium.bin', options as [string, string][])),
      );
      for (const r of results) expect(r.data.equals(medium)).toBe(true);
    }
  });

  it.each(MODES)('serves many transfers at once (workers: %i)', async (workers) => {
    // Every peer is 127.0.0.1: let all 20 handshake at once.
    const s = await server({ workers, maxHandshakesPerSource: 20 });
    const peers = await Promise.all(Array.from({ length: 20 }, () => peer()));
    let ends = 0;
    const allEnded = waitFor(s, 'transfer-end', { timeoutMs: 20_000, filter: (_i, r) => r.reason === 'done' && ++ends === 20 });
    const results = await Promise.all(
      peers.map((p, i) =>
        download(
          p,
          s.address.port,
          'medium.bin',
          i % 2
            ? [
                ['windowsize', '8'],
                ['blksize', '1468'],
              ]
            : [['blksize', '1024']],
        ),
      ),
    );
    for (const r of results) expect(r.data.equals(medium)).toBe(true);
    await allEnded;
    expect(s.activeTransfers).toBe(0);
  });

  it.each(MODES)('answers a retransmitted request once: one transfer per client port (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const p = await peer();
    let starts = 0;
    s.on('transfer-start', () => starts++);
    const req = encodeTftpPacket(rrq('small.txt'));
    p.send(req, s.address.port);
    p.send(req, s.address.port);
    const { packet, port } = await p.nextTftp();
    expect(packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
    const end = ended(s);
    p.ack(1, port);
    await end;
    expect(starts).toBe(1);
    expect(p.pending).toBe(0);
  });
});

describe('TFTP server: retransmission and windows', () => {
  it("ignores a duplicate ACK in lock-step (no Sorcerer's Apprentice) and resends only on timeout", async () => {
    const clock = new ManualClock();
    const s = await server({ retransmitMs: 1000, minRetransmitMs: 1000 }, clock);
    const p = await peer();
    p.sendPacket(rrq('medium.bin'), s.address.port);
    const first = await p.nextTftp();
    expect(first.packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
    p.ack(1, first.port);
    p.ack(1, first.port);
    expect((await p.nextTftp()).packet).toMatchObject({ block: 2 });
    p.ack(2, first.port);
    expect((await p.nextTftp()).packet).toMatchObject({ block: 3 });
    // No ACK for 3: after the timeout, block 3 again (and only it).
    clock.advance(1000);
    expect((await p.nextTftp()).packet).toMatchObject({ block: 3 });
    p.ack(3, first.port);
    expect((await p.nextTftp()).packet).toMatchObject({ block: 4 });
  });

  it('retransmits after a few measured round trips, not the whole timeout, backing off while nothing comes', async () => {
    const clock = new ManualClock();
    const s = await server({ retransmitMs: 1000, minRetransmitMs: 5, maxRetries: 1 }, clock);
    const p = await peer();
    p.sendPacket(rrq('medium.bin', [['windowsize', '2']]), s.address.port);
    const o = await p.nextTftp();
    // The OACK and the windows answered 4 ms after they were sent: a round trip of 4 ms.
    clock.advance(4);
    p.ack(0, o.port);
    for (let w = 0; w < 5; w++) {
      const first = ((await p.nextTftp()).packet as { block: number }).block;
      expect((await p.nextTftp()).packet).toMatchObject({ block: first + 1 });
      clock.advance(4);
      p.ack(first + 1, o.port);
    }
    const lost = ((await p.nextTftp()).packet as { block: number }).block;
    expect(lost).toBe(11);
    await p.nextTftp();
    // Packets sent while the clock moved are queued before the answer to this marker (an unknown opcode).
    const resent = async (): Promise<number[]> => {
      p.send(marker, s.address.port);
      const blocks: number[] = [];
      for (;;) {
        const d = (await p.nextTftp()).packet;
        if (d.opcode === TftpOpcode.Error) return blocks;
        blocks.push((d as { block: number }).block);
      }
    };
    // The window's ACK is lost. Well before the 1 s timeout, first its last block alone
    // (a probe: the usual loss is a window's tail), then the whole window.
    clock.advance(30);
    const early = await resent();
    expect(early.slice(0, 3)).toEqual([12, 11, 12]);
    expect(early.length).toBeLessThanOrEqual(5);
    // Each further wait is twice the last: a handful of resends, not one per round trip.
    clock.advance(400);
    const later = (await resent()).length / 2;
    expect(later).toBeGreaterThanOrEqual(2);
    expect(later).toBeLessThanOrEqual(6);
    // Silence for (maxRetries + 1) timeouts since the last progress ends it.
    const end = ended(s);
    clock.advance(2000);
    expect((await end)[1]).toMatchObject({ reason: 'timeout', lastBlock: 10 });
  });

  it("answers a lost window tail: the probe completes the window, or the client's ACK says where to go on", async () => {
    const clock = new ManualClock();
    const s = await server({ retransmitMs: 1000, minRetransmitMs: 1000 }, clock);
    const p = await peer();
    p.sendPacket(rrq('medium.bin', [['windowsize', '4']]), s.address.port);
    const o = await p.nextTftp();
    p.ack(0, o.port);
    for (let i = 1; i <= 4; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
    // Blocks 3 and 4 "lost": after the timeout only block 4 comes; the client ACKs 2, the window goes on from 3.
    clock.advance(1000);
    expect((await p.nextTftp()).packet).toMatchObject({ block: 4 });
    p.ack(2, o.port);
    for (let i = 3; i <= 6; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
    p.ack(6, o.port);
    for (let i = 7; i <= 10; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
    // Nothing comes back twice: the probe and then the whole window.
    clock.advance(1000);
    expect((await p.nextTftp()).packet).toMatchObject({ block: 10 });
    clock.advance(1000);
    for (let i = 7; i <= 10; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
  });

  it('goes back to the block after a gap ACK inside the window (RFC 7440)', async () => {
    const s = await server();
    const p = await peer();
    p.sendPacket(rrq('medium.bin', [['windowsize', '4']]), s.address.port);
    const oack = await p.nextTftp();
    expect(oack.packet.opcode).toBe(TftpOpcode.Oack);
    p.ack(0, oack.port);
    const blocks: number[] = [];
    for (let i = 0; i < 4; i++) blocks.push(((await p.nextTftp()).packet as { block: number }).block);
    expect(blocks).toEqual([1, 2, 3, 4]);
    // Block 3 "lost": the client ACKs 2, the server sends 3..6.
    p.ack(2, oack.port);
    const again: number[] = [];
    for (let i = 0; i < 4; i++) again.push(((await p.nextTftp()).packet as { block: number }).block);
    expect(again).toEqual([3, 4, 5, 6]);
  });

  it('resends the window when the client re-ACKs the block before it (first block lost), once per burst', async () => {
    const s = await server();
    const p = await peer();
    p.sendPacket(rrq('medium.bin', [['windowsize', '4']]), s.address.port);
    const oack = await p.nextTftp();
    p.ack(0, oack.port);
    for (let i = 1; i <= 4; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
    p.ack(4, oack.port);
    for (let i = 5; i <= 8; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
    // Block 5 "lost": the client re-ACKs 4 for each later block it got (three times).
    p.ack(4, oack.port);
    p.ack(4, oack.port);
    p.ack(4, oack.port);
    for (let i = 5; i <= 8; i++) expect((await p.nextTftp()).packet).toMatchObject({ block: i });
    p.ack(8, oack.port);
    // The next thing after the resent window is the next window, not a second resend.
    expect((await p.nextTftp()).packet).toMatchObject({ block: 9 });
  });

  it('sends the OACK again only when the request comes again, then gives up silently at the handshake deadline and keeps serving others', async () => {
    const clock = new ManualClock();
    const s = await server({ retransmitMs: 500, maxRetries: 2, handshakeMs: 3000 }, clock);
    const gone = await peer();
    const request = encodeTftpPacket(rrq('medium.bin', [['blksize', '1024']]));
    gone.send(request, s.address.port);
    expect((await gone.nextTftp()).packet.opcode).toBe(TftpOpcode.Oack);
    const end = ended(s);
    // No timer resends to an address that never answered.
    clock.advance(2000);
    gone.send(request, s.address.port);
    expect((await gone.nextTftp()).packet.opcode).toBe(TftpOpcode.Oack);
    clock.advance(1000);
    const [info, result] = await end;
    expect(info.peer.port).toBe(gone.port);
    expect(result.reason).toBe('timeout');
    expect(s.activeTransfers).toBe(0);
    expect(gone.pending).toBe(0);
    expect((await download(await peer(), s.address.port, 'small.txt')).data).toEqual(small);
  });

  it('carries on after a send a local firewall refused (EPERM): that DATA is lost, not the transfer', async () => {
    const s = await server({ retransmitMs: 200, minRetransmitMs: 50 });
    const p = await peer();
    // The first DATA of block 2 is refused by the kernel, as an iptables DROP in OUTPUT does.
    const send = Socket.prototype.send;
    let refused = 0;
    const spy = vi.spyOn(Socket.prototype, 'send').mockImplementation(function (this: Socket, ...args: unknown[]) {
      const msg = args[0];
      if (refused === 0 && msg instanceof Uint8Array && msg[1] === TftpOpcode.Data && msg[2] === 0 && msg[3] === 2) {
        refused++;
        const err = Object.assign(new Error('send EPERM'), { code: 'EPERM', errno: -1, syscall: 'send' });
        const cb = args.find((a) => typeof a === 'function') as ((e: Error) => void) | undefined;
        process.nextTick(() => (cb ? cb(err) : this.emit('error', err)));
        return;
      }
      return (send as (...a: unknown[]) => void).apply(this, args);
    } as typeof Socket.prototype.send);
    try {
      const end = ended(s);
      const r = await download(p, s.address.port, 'exact.bin');
      expect(refused).toBe(1);
      expect(r.data).toEqual(exact);
      const [, result] = await end;
      expect(result.reason).toBe('done');
    } finally {
      spy.mockRestore();
    }
  });

  it('drops a transfer whose client vanished mid-transfer', async () => {
    const clock = new ManualClock();
    const s = await server({ retransmitMs: 200, maxRetries: 3 }, clock);
    const p = await peer();
    p.sendPacket(rrq('medium.bin'), s.address.port);
    const d1 = await p.nextTftp();
    p.ack(1, d1.port);
    await p.nextTftp();
    const end = ended(s);
    p.close();
    cleanups.pop();
    await clock.advanceAsync(1000, 200);
    const [, result] = await end;
    expect(['timeout', 'peer-gone']).toContain(result.reason);
    expect(result.lastBlock).toBe(1);
    expect(s.activeTransfers).toBe(0);
  });
});

describe('TFTP server: bad input', () => {
  it.each(MODES)('refuses paths outside the root with an access violation, unknown files with file not found (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const refused: string[] = [];
    s.on('refused', (e) => refused.push(e.code));
    const cases: [string, number, RegExp][] = [
      ['../secret.txt', TftpErrorCode.AccessViolation, /'\.\.' is not allowed/],
      ['dir/../../secret.txt', TftpErrorCode.AccessViolation, /'\.\.' is not allowed/],
      ['..\\secret.txt', TftpErrorCode.AccessViolation, /'\.\.' is not allowed/],
      ['escape-file', TftpErrorCode.AccessViolation, /outside the served directory/],
      ['escape-dir/secret.txt', TftpErrorCode.AccessViolation, /outside the served directory/],
      ['dir', TftpErrorCode.AccessViolation, /not a regular file/],
      ['/', TftpErrorCode.AccessViolation, /names no file/],
      ['no-such-file', TftpErrorCode.FileNotFound, /not found/],
      [`/${outside.replace(/^\//, '')}/secret.txt`, TftpErrorCode.FileNotFound, /not found/],
    ];
    for (const [name, code, message] of cases) {
      const p = await peer();
      p.sendPacket(rrq(name), s.address.port);
      await expectError(p, code, message);
    }
    expect(refused).toHaveLength(cases.length);
    expect(s.activeTransfers).toBe(0);
  });

  it('answers malformed packets and unknown opcodes with illegal operation, no larger than they are, never an ERROR, and keeps a transfer going', async () => {
    const s = await server();
    const busy = await peer();
    busy.sendPacket(rrq('medium.bin'), s.address.port);
    const d1 = await busy.nextTftp();
    expect(d1.packet).toMatchObject({ block: 1 });

    const p = await peer();
    const bad: Uint8Array[] = [
      Buffer.from([0]),
      Buffer.from([0, 1, 0x61, 0x62]),
      Buffer.from([0, 1, 0x61, 0, 0x78, 0x79, 0]),
      Buffer.from([0, 1, 0, 0x6f, 0x63, 0x74, 0x65, 0x74, 0]),
      Buffer.from([0, 9, 1, 2, 3]),
      Buffer.from([0, 0]),
      encodeTftpPacket({ opcode: TftpOpcode.Ack, block: 1 }),
      encodeTftpPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.from('x') }),
      Buffer.from('GET / HTTP/1.0\r\n\r\n'),
      marker,
    ];
    for (const bytes of bad) {
      p.send(bytes, s.address.port);
      p.send(marker, s.address.port);
      // An answer (there may be none) no larger than the packet: nothing to gain by reflecting it.
      const answers: Buffer[] = [];
      for (;;) {
        const d = await p.next();
        const packet = decodeTftpPacket(d.bytes);
        expect(packet).toMatchObject({ opcode: TftpOpcode.Error, code: TftpErrorCode.IllegalOperation });
        answers.push(d.bytes);
        if (answers.length === 2 || (bytes !== marker && /unknown opcode 99/.test((packet as { message: string }).message))) break;
      }
      if (bytes !== marker) answers.pop();
      for (const a of answers) expect(a.length).toBeLessThanOrEqual(bytes.length);
    }
    // Room for the whole message: it is given in full.
    p.send(Buffer.concat([Buffer.from('GET / HTTP/1.0\r\n\r\n'), Buffer.alloc(80)]), s.address.port);
    await expectError(p, TftpErrorCode.IllegalOperation, /^illegal TFTP operation: neither a TFTP packet nor an ASAP cookie echo$/);
    // An ERROR to the request port gets no answer: the next reply is for the request after it.
    p.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: 'x' }, s.address.port);
    p.sendPacket(rrq('small.txt'), s.address.port);
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });

    // The transfer that was going on carries on.
    let expected = 1;
    let port = d1.port;
    const got: Buffer[] = [Buffer.from((d1.packet as { data: Uint8Array }).data)];
    for (;;) {
      busy.ack(expected, port);
      const n = await busy.nextTftp();
      port = n.port;
      const d = n.packet as { block: number; data: Uint8Array };
      expect(d.block).toBe(++expected & 0xffff);
      got.push(Buffer.from(d.data));
      if (d.data.length < 512) break;
    }
    busy.ack(expected, port);
    expect(Buffer.concat(got).equals(medium)).toBe(true);
  });

  it.each(MODES)('ends a download on a packet that makes no sense in it, with illegal operation (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const p = await peer();
    p.sendPacket(rrq('medium.bin'), s.address.port);
    const d1 = await p.nextTftp();
    const end = ended(s);
    p.sendPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.from('x') }, d1.port);
    await expectError(p, TftpErrorCode.IllegalOperation, /opcode 3 during a download/);
    expect((await end)[1]).toMatchObject({ reason: 'error' });
  });

  it.each(MODES)('ends a download quietly when the client sends an ERROR (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const p = await peer();
    p.sendPacket(rrq('medium.bin', [['blksize', '1024']]), s.address.port);
    const o = await p.nextTftp();
    const end = ended(s);
    p.sendPacket({ opcode: TftpOpcode.Error, code: TftpErrorCode.OptionNegotiationRefused, message: 'no thanks' }, o.port);
    const [, r] = await end;
    expect(r.reason).toBe('peer-error');
    expect(r.error?.message).toBe('no thanks');
  });

  it.each(MODES)('refuses mail mode, uploads to a read-only server, and transfers over the limit (workers: %i)', async (workers) => {
    const s = await server({ workers, maxTransfers: 1 });
    const p = await peer();
    p.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'small.txt', mode: 'mail', options: [] }, s.address.port);
    await expectError(p, TftpErrorCode.IllegalOperation, /mail/);
    p.sendPacket({ opcode: TftpOpcode.Wrq, filename: 'uploads/x', mode: 'octet', options: [] }, s.address.port);
    await expectError(p, TftpErrorCode.AccessViolation, /no uploads/);
    const holder = await peer();
    holder.sendPacket(rrq('medium.bin'), s.address.port);
    // A transfer under way holds its slot (one still in its handshake would make room).
    const first = await holder.nextTftp();
    holder.ack(1, first.port);
    expect((await holder.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Data, block: 2 });
    p.sendPacket(rrq('small.txt'), s.address.port);
    await expectError(p, TftpErrorCode.NotDefined, /too many transfers/);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });

  it('drops ASAP messages other than a cookie echo without an answer', async () => {
    const s = await server();
    const p = await peer();
    p.send(encodeAsapMessage({ type: AsapMessageType.Cookie, cookie: new Uint8Array([1, 2, 3]) }), s.address.port);
    p.sendPacket(rrq('small.txt'), s.address.port);
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
  });
});

describe('TFTP server: state cookies', () => {
  it.each(MODES)('sends a cookie before the first DATA and at each interval, naming the next block (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const p = await peer();
    const r = await download(p, s.address.port, 'medium.bin', [
      ['blksize', '1024'],
      [COOKIE_OPTION, '50'],
      ['tsize', '0'],
    ]);
    expect(r.data.equals(medium)).toBe(true);
    expect(r.oack).toContainEqual([COOKIE_OPTION, '50']);
    const states = r.cookies.map((c) => verifyCookie(c, secret, here()));
    const last = Math.floor(medium.length / 1024) + 1;
    expect(states.map((c) => c.next)).toEqual([1, ...Array.from({ length: Math.floor((last - 1) / 50) }, (_, i) => (i + 1) * 50 + 1)]);
    expect(states[0]).toMatchObject({ path: 'medium.bin', size: medium.length, blksize: 1024, windowsize: 1, timeout: 0, tsize: medium.length, interval: 50 });
  });

  it('uses its default interval when asked with 0; a netascii download gets cookies counting blocks of the converted text', async () => {
    const s = await server();
    const r = await download(await peer(), s.address.port, 'small.txt', [[COOKIE_OPTION, '0']]);
    expect(r.oack).toEqual([[COOKIE_OPTION, String(DEFAULT_COOKIE_INTERVAL)]]);
    expect(r.cookies).toHaveLength(1);
    const n = await download(
      await peer(),
      s.address.port,
      'lines.txt',
      [
        [COOKIE_OPTION, '0'],
        ['tsize', '0'],
      ],
      { mode: 'netascii' },
    );
    const converted = toNetascii(Buffer.from('one\ntwo\rthree\r\n')).length;
    expect(n.oack).toEqual([
      [COOKIE_OPTION, String(DEFAULT_COOKIE_INTERVAL)],
      ['tsize', String(converted)],
    ]);
    expect(n.cookies.map((c) => verifyCookie(c, secret, here()))).toMatchObject([{ path: 'lines.txt', next: 1, netascii: true, tsize: converted }]);
  });

  it('a second server resumes a netascii download from a cookie at its block of the converted text', async () => {
    const text = Buffer.from(Array.from({ length: 4000 }, (_, i) => `line ${i}\n${i % 7 === 0 ? 'cr\r' : ''}`).join(''));
    await writeFile(join(root, 'text.txt'), text);
    const want = Buffer.from(toNetascii(text));
    expect(want.length).toBeGreaterThan(text.length);
    const a = await server();
    const b = await server();
    const p = await peer();
    p.sendPacket(
      rrq(
        'text.txt',
        [
          ['blksize', '512'],
          [COOKIE_OPTION, '4'],
        ],
        'netascii',
      ),
      a.address.port,
    );
    const cookies: Uint8Array[] = [];
    const oack = await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)));
    expect(oack.packet.opcode).toBe(TftpOpcode.Oack);
    p.ack(0, oack.port);
    // Blocks 1-10 acknowledged one by one, then PE a is lost.
    for (let block = 1; block <= 10; block++) {
      const d = await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)));
      expect(d.packet).toMatchObject({ opcode: TftpOpcode.Data, block });
      p.ack(block, oack.port);
    }
    // The cookie naming block 9 came before DATA 9.
    const cookie = cookies.find((c) => verifyCookie(c, secret, here()).next === 9)!;
    p.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), b.address.port);
    const fromB = async (): Promise<{ packet: TftpPacket; port: number }> => {
      let d = await p.nextTftp(10_000, () => {});
      while (d.port === oack.port) d = await p.nextTftp(10_000, () => {});
      return d;
    };
    const reopened = await fromB();
    expect(reopened.packet).toMatchObject({ opcode: TftpOpcode.Oack });
    p.ack(0, reopened.port);
    const got: Buffer[] = [want.subarray(0, 8 * 512)];
    for (let block = 9; ; block++) {
      const d = await fromB();
      expect(d.packet).toMatchObject({ opcode: TftpOpcode.Data, block });
      const data = (d.packet as { data: Uint8Array }).data;
      got.push(Buffer.from(data));
      p.ack(block, reopened.port);
      if (data.length < 512) break;
    }
    expect(Buffer.concat(got).equals(want)).toBe(true);
  });

  it.each(MODES)('a second server with the same root and secret resumes from a cookie at its block, from a new port (workers: %i)', async (workers) => {
    const a = await server({ workers });
    const b = await server({ workers });
    const p = await peer();
    p.sendPacket(
      rrq('medium.bin', [
        ['blksize', '1000'],
        ['windowsize', '4'],
        [COOKIE_OPTION, '8'],
      ]),
      a.address.port,
    );
    const cookies: Uint8Array[] = [];
    const oack = await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)));
    p.ack(0, oack.port);
    const got: Buffer[] = [];
    // Take 12 blocks (ACK each window of 4), then "lose" PE a.
    for (let block = 1; block <= 12; block++) {
      const d = await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)));
      expect(d.packet).toMatchObject({ opcode: TftpOpcode.Data, block });
      got.push(Buffer.from((d.packet as { data: Uint8Array }).data));
      // Windows 1-4 and 5-8 acknowledged; 9-12 received but not (PE a dies first).
      if (block === 4 || block === 8) p.ack(block, oack.port);
    }
    const newest = cookies.map((c) => verifyCookie(c, secret, here())).reduce((x, y) => (y.next > x.next ? y : x));
    expect(newest.next).toBe(9);
    const cookie = cookies.find((c) => verifyCookie(c, secret, here()).next === 9)!;
    const resumed = waitFor(b, 'transfer-start');
    p.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), b.address.port);
    const [info] = await resumed;
    expect(info).toMatchObject({ resumedAt: 9, blksize: 1000, windowsize: 4, cookieInterval: 8 });
    // PE a may still retransmit its window; it is dead as far as this client cares.
    const fromB = async (): Promise<{ packet: TftpPacket; port: number }> => {
      let d = await p.nextTftp(10_000, () => {});
      while (d.port === oack.port) d = await p.nextTftp(10_000, () => {});
      return d;
    };
    // The echo is answered with the cookie's options alone; DATA only after ACK 0 (the client proves its address).
    const reopened = await fromB();
    expect(reopened.packet).toMatchObject({ opcode: TftpOpcode.Oack });
    expect(Object.fromEntries((reopened.packet as TftpOptionAck).options)).toMatchObject({ blksize: '1000', windowsize: '4', [COOKIE_OPTION]: '8' });
    const port = reopened.port;
    expect(port).not.toBe(b.address.port);
    expect(port).not.toBe(oack.port);
    p.ack(0, port);
    const kept = got.slice(0, 8);
    for (let block = 9; ; block++) {
      const d = await fromB();
      expect(d.port).toBe(port);
      expect(d.packet).toMatchObject({ opcode: TftpOpcode.Data, block });
      const data = (d.packet as { data: Uint8Array }).data;
      kept.push(Buffer.from(data));
      const last = data.length < 1000;
      if (last || (block - 8) % 4 === 0) p.ack(block, port);
      if (last) break;
    }
    expect(Buffer.concat(kept).equals(medium)).toBe(true);
  });

  it.each(MODES)('refuses forged, garbage, stale, missing and out-of-range cookies with a clear TFTP error, and carries on (workers: %i)', async (workers) => {
    const s = await server({ workers });
    const other = await server({ workers, secret: 'another pool' });
    await writeFile(join(root, 'changing.bin'), randomBytes(5000));
    const p = await peer();
    // A real cookie from this pool, for changing.bin.
    p.sendPacket(rrq('changing.bin', [[COOKIE_OPTION, '1']]), s.address.port);
    const cookies: Uint8Array[] = [];
    const o = await p.nextTftp(10_000, (b) => cookies.push(cookieOf(b)));
    expect(o.packet.opcode).toBe(TftpOpcode.Oack);
    p.ack(0, o.port);
    expect((await p.nextTftp(10_000, (b) => cookies.push(cookieOf(b)))).packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
    p.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: 'enough' }, o.port);
    const good = cookies[0]!;
    const echo = (cookie: Uint8Array, port = s.address.port): void => p.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), port);
    const refusal = (reason: string) => new RegExp(`^${COOKIE_ERROR_PREFIX}${reason}: `);

    echo(good, other.address.port);
    await expectError(p, TftpErrorCode.NotDefined, refusal('bad-signature'));
    echo(randomBytes(60));
    await expectError(p, TftpErrorCode.NotDefined, refusal('malformed'));
    echo(new Uint8Array(0));
    await expectError(p, TftpErrorCode.NotDefined, refusal('malformed'));
    const st = verifyCookie(good, secret, here());
    echo(encodeCookie({ ...st, next: 1000 }, secret, { ...here(), lifetimeMs: 60_000 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('invalid'));
    echo(encodeCookie({ ...st, path: 'no-such-file' }, secret, { ...here(), lifetimeMs: 60_000 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('missing'));
    echo(encodeCookie({ ...st, path: '../escape' }, secret, { ...here(), lifetimeMs: 60_000 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('missing'));
    echo(encodeCookie({ ...st, windowsize: 65535 }, secret, { ...here(), lifetimeMs: 60_000 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('invalid'));
    // The file changes: same size, new mtime.
    await utimes(join(root, 'changing.bin'), new Date(), new Date(Date.now() + 60_000));
    echo(good);
    await expectError(p, TftpErrorCode.NotDefined, refusal('stale'));
    // And the server still serves.
    expect((await download(p, s.address.port, 'small.txt')).data).toEqual(small);
  });
});

describe('TFTP server: uploads', () => {
  /** Upload files in progress (dot-prefixed, renamed when complete). */
  const temporaries = async () => (await readdir(join(root, 'uploads'))).filter((n) => n.startsWith('.'));

  async function upload(
    p: RawPeer,
    port: number,
    name: string,
    data: Buffer,
    options: [string, string][],
    opts: { windowsize?: number; blksize?: number; mode?: 'octet' | 'netascii' } = {},
  ) {
    p.sendPacket({ opcode: TftpOpcode.Wrq, filename: name, mode: opts.mode ?? 'octet', options }, port);
    const blksize = opts.blksize ?? 512;
    const windowsize = opts.windowsize ?? 1;
    const first = await p.nextTftp();
    if (first.packet.opcode === TftpOpcode.Error) return first.packet;
    if (options.length > 0) expect(first.packet.opcode).toBe(TftpOpcode.Oack);
    else expect(first.packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 0 });
    const tport = first.port;
    const last = Math.floor(data.length / blksize) + 1;
    let acked = 0;
    while (acked < last) {
      const end = Math.min(acked + windowsize, last);
      for (let b = acked + 1; b <= end; b++)
        p.sendPacket({ opcode: TftpOpcode.Data, block: b & 0xffff, data: data.subarray((b - 1) * blksize, Math.min(b * blksize, data.length)) }, tport);
      const a = await p.nextTftp();
      if (a.packet.opcode !== TftpOpcode.Ack) return a.packet;
      acked = acked + ((a.packet.block - acked) & 0xffff);
    }
    return undefined;
  }

  it.each(MODES)('takes a lock-step upload and a windowed one, storing them whole (workers: %i)', async (workers) => {
    const s = await server({ workers, writable: true });
    const p = await peer();
    const data = randomBytes(100_000);
    const stored = ended(s);
    expect(await upload(p, s.address.port, `uploads/a${workers}.bin`, data, [])).toBeUndefined();
    expect((await stored)[1]).toMatchObject({ reason: 'done', bytes: data.length, lastBlock: Math.floor(data.length / 512) + 1 });
    expect((await readFile(join(root, 'uploads', `a${workers}.bin`))).equals(data)).toBe(true);
    const p2 = await peer();
    expect(
      await upload(
        p2,
        s.address.port,
        `/uploads/b${workers}.bin`,
        data,
        [
          ['blksize', '1468'],
          ['windowsize', '8'],
          ['tsize', String(data.length)],
        ],
        { blksize: 1468, windowsize: 8 },
      ),
    ).toBeUndefined();
    // The final ACK comes once the file is in place.
    expect((await readFile(join(root, 'uploads', `b${workers}.bin`))).equals(data)).toBe(true);
    expect(await temporaries()).toEqual([]);
  });

  it('refuses to overwrite unless told to, and refuses uploads outside the root or too large', async () => {
    const s = await server({ writable: true, maxUploadBytes: 1000 });
    const p = await peer();
    await writeFile(join(root, 'uploads', 'keep.txt'), 'keep');
    expect(await upload(p, s.address.port, 'uploads/keep.txt', Buffer.from('new'), [])).toMatchObject({ code: TftpErrorCode.FileAlreadyExists });
    expect(await upload(p, s.address.port, '../evil.txt', Buffer.from('x'), [])).toMatchObject({ code: TftpErrorCode.AccessViolation });
    expect(await upload(p, s.address.port, 'escape-dir/evil.txt', Buffer.from('x'), [])).toMatchObject({ code: TftpErrorCode.AccessViolation });
    expect(await upload(p, s.address.port, 'uploads/big.bin', randomBytes(10), [['tsize', '5000']])).toMatchObject({ code: TftpErrorCode.DiskFull });
    const p2 = await peer();
    const failed = ended(s);
    expect(await upload(p2, s.address.port, 'uploads/big.bin', randomBytes(3000), [])).toMatchObject({ code: TftpErrorCode.DiskFull });
    expect((await failed)[1].reason).toBe('error');
    expect(await readFile(join(root, 'uploads', 'keep.txt'), 'utf8')).toBe('keep');
    expect(await readdir(outside)).toEqual(['secret.txt']);
    // Nothing half-written is left behind.
    expect(await temporaries()).toEqual([]);
    expect(await readdir(join(root, 'uploads'))).not.toContain('big.bin');

    const w = await server({ writable: true, overwrite: true });
    expect(await upload(p, w.address.port, 'uploads/keep.txt', Buffer.from('replaced'), [])).toBeUndefined();
    expect(await readFile(join(root, 'uploads', 'keep.txt'), 'utf8')).toBe('replaced');
  });

  it('ACKs the last block in order when a windowed upload has a gap', async () => {
    const s = await server({ writable: true });
    const p = await peer();
    p.sendPacket({ opcode: TftpOpcode.Wrq, filename: 'uploads/gap.bin', mode: 'octet', options: [['windowsize', '4']] }, s.address.port);
    const o = await p.nextTftp();
    expect(o.packet).toMatchObject({ opcode: TftpOpcode.Oack, options: [['windowsize', '4']] });
    const block = (n: number) => ({ opcode: TftpOpcode.Data, block: n, data: Buffer.alloc(512, n) }) as const;
    p.sendPacket(block(1), o.port);
    p.sendPacket(block(3), o.port);
    p.sendPacket(block(4), o.port);
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 1 });
    p.sendPacket(block(2), o.port);
    p.sendPacket(block(3), o.port);
    p.sendPacket(block(4), o.port);
    p.sendPacket(block(5), o.port);
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 5 });
    const end = ended(s);
    p.sendPacket({ opcode: TftpOpcode.Data, block: 6, data: Buffer.from('end') }, o.port);
    expect((await p.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 6 });
    await end;
    const stored = await readFile(join(root, 'uploads', 'gap.bin'));
    expect(stored.length).toBe(5 * 512 + 3);
    expect(stored[512 * 2]).toBe(3);
  });

  it.each(MODES)('decodes a netascii upload and leaves nothing behind when the client gives up (workers: %i)', async (workers) => {
    const s = await server({ workers, writable: true });
    const p = await peer();
    expect(await upload(p, s.address.port, `uploads/text${workers}.txt`, Buffer.from('a\r\nb\r\0c'), [], { mode: 'netascii' })).toBeUndefined();
    expect(await readFile(join(root, 'uploads', `text${workers}.txt`), 'utf8')).toBe('a\nb\rc');

    const p2 = await peer();
    p2.sendPacket({ opcode: TftpOpcode.Wrq, filename: `uploads/abandoned${workers}.bin`, mode: 'octet', options: [] }, s.address.port);
    const a0 = await p2.nextTftp();
    p2.sendPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.alloc(512) }, a0.port);
    await p2.nextTftp();
    expect(await temporaries()).toHaveLength(1);
    const end = ended(s);
    p2.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: 'cancelled' }, a0.port);
    expect((await end)[1].reason).toBe('peer-error');
    expect(await temporaries()).toEqual([]);
    expect(await readdir(join(root, 'uploads'))).not.toContain(`abandoned${workers}.bin`);
  });
});

describe('TFTP server: upload cookies', () => {
  const temporaries = async () => (await readdir(join(root, 'uploads'))).filter((n) => n.startsWith('.'));

  /** Sends blocks from..to (absolute) of `data` and returns the next TFTP packet; cookies on the way go to `cookies`. */
  async function sendWindow(p: RawPeer, port: number, data: Buffer, blksize: number, from: number, to: number, cookies: Uint8Array[]) {
    for (let b = from; b <= to; b++)
      p.sendPacket({ opcode: TftpOpcode.Data, block: b & 0xffff, data: data.subarray((b - 1) * blksize, Math.min(b * blksize, data.length)) }, port);
    return (await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)))).packet;
  }

  it('names the next block each 4 MiB written and synced; a second server with the same root takes the temporary file over from the cookie and stores the file whole', async () => {
    const a = await server({ writable: true });
    const b = await server({ writable: true });
    const p = await peer();
    const data = randomBytes(10_000_000);
    const blksize = 8192;
    const last = Math.floor(data.length / blksize) + 1;
    const options: [string, string][] = [
      ['blksize', String(blksize)],
      ['windowsize', '16'],
      ['tsize', String(data.length)],
      [COOKIE_OPTION, '0'],
    ];
    p.sendPacket({ opcode: TftpOpcode.Wrq, filename: 'uploads/resumed.bin', mode: 'octet', options }, a.address.port);
    const cookies: Uint8Array[] = [];
    const oack = await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)));
    expect(oack.packet).toMatchObject({ opcode: TftpOpcode.Oack });
    expect((oack.packet as TftpOptionAck).options).toContainEqual([COOKIE_OPTION, String(DEFAULT_COOKIE_INTERVAL)]);
    let acked = 0;
    // 4 MiB and two windows more: the file then holds more than the first cookie names.
    while (acked < (4 << 20) / blksize + 32) {
      const ack = await sendWindow(p, oack.port, data, blksize, acked + 1, acked + 16, cookies);
      expect(ack).toMatchObject({ opcode: TftpOpcode.Ack, block: acked + 16 });
      acked += 16;
    }
    expect(acked).toBeLessThan(last);
    // The cookie follows the sync, at the disk's pace; meanwhile the PE may repeat its last ACK.
    while (cookies.length === 0) {
      const d = await p.next(10_000);
      if (isAsapDatagram(d.bytes)) cookies.push(cookieOf(d.bytes));
      else expect(decodeTftpPacket(d.bytes)).toMatchObject({ opcode: TftpOpcode.Ack, block: acked });
    }
    const states = cookies.map((c) => verifyCookie(c, secret, here()));
    expect(states[0]).toMatchObject({ path: 'uploads/resumed.bin', blksize, windowsize: 16, tsize: data.length, next: (4 << 20) / blksize + 1 });
    expect(states[0]!.upload).toMatch(new RegExp(`^${process.pid}-[0-9a-f]{12}$`));
    const cookie = cookies[0]!;
    const next = states[0]!.next;
    // PE a stops without a word, as a crash would: what it wrote stays.
    await a.close({ leave: false });
    const [temp] = await temporaries();
    expect(temp).toBe(`.resumed.bin.${states[0]!.upload}.part`);
    expect((await readFile(join(root, 'uploads', temp!))).length).toBe(acked * blksize);

    const resumed = waitFor(b, 'transfer-start');
    p.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), b.address.port);
    const reopened = await p.nextTftp(10_000, (bytes) => cookies.push(cookieOf(bytes)));
    expect((await resumed)[0]).toMatchObject({ kind: 'write', resumedAt: next, blksize, windowsize: 16 });
    expect(reopened.packet).toMatchObject({ opcode: TftpOpcode.Oack });
    expect(Object.fromEntries((reopened.packet as TftpOptionAck).options)).toMatchObject({
      blksize: String(blksize),
      windowsize: '16',
      tsize: String(data.length),
    });
    expect(reopened.port).not.toBe(b.address.port);
    // Cut back to the cookie's bytes, under PE b's own tag.
    const [taken] = await temporaries();
    expect(taken).not.toBe(temp);
    expect((await readFile(join(root, 'uploads', taken!))).length).toBe((next - 1) * blksize);
    const before = cookies.length;
    for (let from = next; from <= last; from += 16) {
      const to = Math.min(from + 15, last);
      expect(await sendWindow(p, reopened.port, data, blksize, from, to, cookies)).toMatchObject({ opcode: TftpOpcode.Ack, block: to & 0xffff });
    }
    // The first DATA got a cookie naming the file by its new tag.
    const fresh = cookies.slice(before).map((c) => verifyCookie(c, secret, here()));
    expect(fresh[0]).toMatchObject({ next, upload: taken!.split('.').at(-2) });
    expect((await readFile(join(root, 'uploads', 'resumed.bin'))).equals(data)).toBe(true);
    expect(await temporaries()).toEqual([]);
  });

  it('refuses an upload cookie from another client, expired, tampered, outside the root, naming a symlink or a file gone or too short, or at a read-only PE', async () => {
    const s = await server({ writable: true });
    const ro = await server();
    const p = await peer();
    const tag = '1-0123456789ab';
    const partial = randomBytes(2000);
    await writeFile(join(root, 'uploads', `.x.bin.${tag}.part`), partial);
    await writeFile(join(outside, `.x.bin.${tag}.part`), partial);
    await symlink(join(outside, 'secret.txt'), join(root, 'uploads', `.link.bin.${tag}.part`));
    const st: CookieState = {
      path: 'uploads/x.bin',
      size: 0,
      mtimeMs: 0,
      blksize: 512,
      windowsize: 1,
      timeout: 0,
      tsize: 5000,
      next: 3,
      interval: 1,
      upload: tag,
    };
    const sealed = (state: Partial<CookieState>, opts: { now?: number; address?: string } = {}) =>
      encodeCookie({ ...st, ...state }, secret, { address: opts.address ?? '127.0.0.1', now: opts.now ?? Date.now(), lifetimeMs: 60_000 });
    const echo = (cookie: Uint8Array, port = s.address.port, from = p): void =>
      from.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), port);
    const refusal = (reason: string) => new RegExp(`^${COOKIE_ERROR_PREFIX}${reason}: `);

    const elsewhere = await RawPeer.open('127.0.0.2');
    cleanups.push(() => elsewhere.close());
    echo(sealed({}), s.address.port, elsewhere);
    await expectError(elsewhere, TftpErrorCode.NotDefined, refusal('address'));
    echo(sealed({}, { now: Date.now() - 120_000 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('expired'));
    const tampered = Uint8Array.from(sealed({}));
    tampered[tampered.length - 20]! ^= 1;
    echo(tampered);
    await expectError(p, TftpErrorCode.NotDefined, refusal('bad-signature'));
    echo(sealed({ path: '../x.bin' }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('missing'));
    echo(sealed({ path: 'escape-dir/x.bin' }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('missing'));
    echo(sealed({ path: 'uploads/link.bin' }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('missing'));
    echo(sealed({ upload: '1-ffffffffffff' }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('missing'));
    echo(sealed({ next: 20 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('invalid'));
    echo(sealed({ next: 8 }));
    await expectError(p, TftpErrorCode.NotDefined, refusal('stale'));
    echo(sealed({}), ro.address.port);
    await expectError(p, TftpErrorCode.NotDefined, refusal('invalid'));
    // Nothing outside the root was touched, and the symlink still points where it did.
    expect((await readFile(join(outside, `.x.bin.${tag}.part`))).equals(partial)).toBe(true);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('outside the root');
    expect(await readlink(join(root, 'uploads', `.link.bin.${tag}.part`))).toBe(join(outside, 'secret.txt'));
    // The client it was issued to resumes: the first 1024 bytes kept, the rest from block 3 on.
    echo(sealed({}));
    const o = await p.nextTftp();
    expect(o.packet).toMatchObject({ opcode: TftpOpcode.Oack });
    const rest = randomBytes(3000);
    const want = Buffer.concat([partial.subarray(0, 1024), rest]);
    for (let b = 3; b <= Math.floor(want.length / 512) + 1; b++) {
      p.sendPacket({ opcode: TftpOpcode.Data, block: b, data: want.subarray((b - 1) * 512, Math.min(b * 512, want.length)) }, o.port);
      expect((await p.nextTftp(10_000, () => {})).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: b });
    }
    expect((await readFile(join(root, 'uploads', 'x.bin'))).equals(want)).toBe(true);
    await unlink(join(root, 'uploads', `.link.bin.${tag}.part`));
  });
});

describe('TFTP server: close', () => {
  async function twoClients(s: TftpServer): Promise<{ plain: RawPeer; aware: RawPeer; reasons: string[] }> {
    await s.start();
    const plain = await peer();
    const aware = await peer();
    plain.sendPacket(rrq('medium.bin'), s.address.port);
    aware.sendPacket(rrq('medium.bin', [[COOKIE_OPTION, '0']]), s.address.port);
    await plain.nextTftp();
    const o = await aware.nextTftp();
    aware.ack(0, o.port);
    await aware.next(); // cookie
    await aware.next(); // DATA 1
    const reasons: string[] = [];
    s.on('transfer-end', (_i, r) => reasons.push(r.reason));
    return { plain, aware, reasons };
  }

  it.each(MODES)(
    'cuts plain clients with an ERROR; tells cookie clients where to resume (cookie, leaving ERROR) and ends once they are quiet (workers: %i)',
    async (workers) => {
      const s = createTftpServer({ root, port: 0, secret, minRetransmitMs: 1000, workers });
      const { plain, aware, reasons } = await twoClients(s);
      await s.close();
      expect(reasons).toEqual(['closed', 'moved']);
      await expectError(plain, TftpErrorCode.NotDefined, /shutting down/);
      // The cookie names the block after the last acknowledged (none yet: block 1), then the ERROR sends the client on.
      const cookies: Buffer[] = [];
      await expectErrorAfter(aware, cookies, new RegExp(`^${LEAVING_ERROR_PREFIX}`));
      expect(cookies.length).toBeGreaterThanOrEqual(1);
      expect(verifyCookie(cookieOf(cookies[0]!), deriveCookieKey(secret), { address: '127.0.0.1', now: Date.now() }).next).toBe(1);
      expect(s.activeTransfers).toBe(0);
    },
  );

  it.each(MODES)('with leave: false cuts cookie clients silently, as a crash would (workers: %i)', async (workers) => {
    const s = createTftpServer({ root, port: 0, secret, minRetransmitMs: 1000, workers });
    const { plain, reasons } = await twoClients(s);
    await s.close({ leave: false });
    expect(reasons).toEqual(['closed', 'closed']);
    await expectError(plain, TftpErrorCode.NotDefined, /shutting down/);
    expect(s.activeTransfers).toBe(0);
  });
});
