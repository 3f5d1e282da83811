/**
 * Issue 11 finding 3 (reflection): before a client has answered once, its
 * address is unproven, so what the PE sends it must not be a multiple of
 * what it received. Measured per request, over the whole handshake deadline
 * (the clock is moved past it): bytes sent per byte received for a bare RRQ
 * (one 516 B DATA, the one RFC 1350 packet that cannot be smaller), an RRQ
 * with options and a cookie echo (one OACK each, smaller than the request).
 */
import { randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { COOKIE_OPTION } from '../../lib/tftp/contract.js';
import { encodeCookie } from '../../lib/tftp/server/cookie.js';
import { createTftpServer, type TftpServer } from '../../lib/tftp/server/index.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { waitFor } from '../transport/util.js';
import { RawPeer, tempDir, type Datagram } from '../tftp/server-helpers.js';

const SECRET = 'amplification test secret';
const big = randomBytes(8 << 20);
let dir: { path: string; remove: () => Promise<void> };
let mtimeMs = 0;

beforeAll(async () => {
  dir = await tempDir('rserpool-amplification-');
  await writeFile(join(dir.path, 'big.bin'), big);
  mtimeMs = Math.floor((await stat(join(dir.path, 'big.bin'))).mtimeMs);
});
afterAll(async () => {
  await dir.remove();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ server: TftpServer; clock: ManualClock; peer: RawPeer }> {
  const clock = new ManualClock();
  const server = createTftpServer({ root: dir.path, port: 0, secret: SECRET, retransmitMs: 1000, maxRetries: 5, handshakeMs: 3000 }, { clock });
  await server.start();
  const peer = await RawPeer.open();
  cleanups.push(
    () => server.close(),
    () => peer.close(),
  );
  return { server, clock, peer };
}

/**
 * Sends `request`, lets the clock run well past every timer (the client
 * never answers), and returns every datagram the PE sent the client.
 */
async function answersTo(request: Uint8Array): Promise<{ out: Datagram[]; bytesIn: number; bytesOut: number }> {
  const { server, clock, peer } = await setup();
  const ended = waitFor(server, 'transfer-end', { timeoutMs: 10_000 });
  peer.send(request, server.address.port);
  const out: Datagram[] = [await peer.next(5_000)];
  // 30 s in 100 ms steps: every retransmission timer there is would fire.
  for (let t = 0; t < 300; t++) clock.advance(100);
  const [, result] = await ended;
  expect(result.reason).toBe('timeout');
  // What the clock's timers sent is queued before the answer to this marker (an unknown opcode, to the request port).
  peer.send(Buffer.concat([Buffer.from([0, 99]), Buffer.alloc(62)]), server.address.port);
  for (;;) {
    const d = await peer.next(5_000);
    if (d.port === server.address.port) break;
    out.push(d);
  }
  const bytesOut = out.reduce((n, d) => n + d.bytes.length, 0);
  return { out, bytesIn: request.length, bytesOut };
}

describe('no amplification before the client answers', () => {
  it('a bare RRQ gets one 516-byte DATA, once', async () => {
    const r = await answersTo(encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: 'big.bin', mode: 'octet', options: [] }));
    expect(r.out.map((d) => d.bytes.length)).toEqual([516]);
    expect(r.out[0]!.bytes[1]).toBe(TftpOpcode.Data);
    console.log(`bare RRQ: ${r.bytesIn} B in, ${r.bytesOut} B out (the RFC 1350 first DATA)`);
  });

  it('an RRQ with options gets one OACK, no larger than the request', async () => {
    const options: [string, string][] = [
      ['blksize', '65464'],
      ['windowsize', '64'],
      ['tsize', '0'],
      ['timeout', '255'],
      [COOKIE_OPTION, '0'],
    ];
    const r = await answersTo(encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: 'big.bin', mode: 'octet', options }));
    expect(r.out.map((d) => d.bytes[1])).toEqual([TftpOpcode.Oack]);
    expect(r.bytesOut / r.bytesIn).toBeLessThanOrEqual(1);
    console.log(`RRQ with options: ${r.bytesIn} B in, ${r.bytesOut} B out, factor ${(r.bytesOut / r.bytesIn).toFixed(2)}`);
  });

  it('a cookie echo gets one OACK, not a window of DATA, no larger than the echo', async () => {
    const cookie = encodeCookie(
      { path: 'big.bin', size: big.length, mtimeMs, blksize: 65464, windowsize: 64, timeout: 255, tsize: big.length, next: 3, interval: 64 },
      SECRET,
      { address: '127.0.0.1', now: Date.now(), lifetimeMs: 60_000 },
    );
    const r = await answersTo(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }));
    expect(r.out.map((d) => d.bytes[1])).toEqual([TftpOpcode.Oack]);
    expect(r.bytesOut / r.bytesIn).toBeLessThanOrEqual(1);
    console.log(`cookie echo: ${r.bytesIn} B in, ${r.bytesOut} B out, factor ${(r.bytesOut / r.bytesIn).toFixed(2)}`);
  });
});

it('garbage to the request port gets no more bytes back than it brought', async () => {
  const { server, peer } = await setup();
  const marker = Buffer.concat([Buffer.from([0, 99]), Buffer.alloc(62)]);
  for (const bytes of [
    Buffer.from([0]),
    Buffer.from([0, 9]),
    Buffer.from([0xff, 0xff, 0xff]),
    Buffer.from('GET / HTTP/1.0\r\n\r\n'),
    Buffer.from([0, 4, 0, 1]),
  ]) {
    peer.send(bytes, server.address.port);
    peer.send(marker, server.address.port);
    let out = 0;
    for (;;) {
      const d = await peer.next(5_000);
      if (d.bytes.length >= 46 && d.bytes.subarray(4).toString().startsWith('illegal TFTP operation: unknown opcode 99')) break;
      out += d.bytes.length;
    }
    expect(out).toBeLessThanOrEqual(bytes.length);
  }
});

it('with requireOptions a bare RRQ gets an ERROR 8 no larger than itself, and an RRQ with options is still served', async () => {
  const server = createTftpServer({ root: dir.path, port: 0, secret: SECRET, requireOptions: true });
  await server.start();
  const peer = await RawPeer.open();
  cleanups.push(
    () => server.close(),
    () => peer.close(),
  );
  const bare = encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: 'big.bin', mode: 'octet', options: [] });
  peer.send(bare, server.address.port);
  const err = await peer.next(5_000);
  expect(err.bytes[1]).toBe(TftpOpcode.Error);
  expect(err.bytes.readUInt16BE(2)).toBe(8);
  expect(err.bytes.length).toBeLessThanOrEqual(bare.length);
  peer.send(encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: 'big.bin', mode: 'octet', options: [['blksize', '1024']] }), server.address.port);
  const oack = await peer.next(5_000);
  expect(oack.bytes[1]).toBe(TftpOpcode.Oack);
});
