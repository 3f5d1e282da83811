/**
 * Issue 11, finding 3 (cookies): a PE must not resume from a cookie anyone
 * could forge from public data (the pool handle), one replayed from another
 * address, one past its lifetime, or one altered in any byte; and a cookie's
 * state is sealed, not readable on the wire.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode } from 'cbor-x';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createTftpPoolElement, type TftpPoolElementComponents, type TftpPoolElementInit } from '../../lib/tftp/server/index.js';
import { COOKIE_OPTION } from '../../lib/tftp/contract.js';
import { encodeCookie, type CookieState } from '../../lib/tftp/server/cookie.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { TftpOpcode, type TftpPacket } from '../../protocols/tftp/types.js';
import { RawPeer, download, tempDir } from '../tftp/server-helpers.js';

const HANDLE = 'cookie-security';
const FILE = 'file.bin';
const content = randomBytes(100_000);
let root: string;
let removeRoot: () => Promise<void>;
let registrar: Registrar;
let url: string;

beforeAll(async () => {
  const d = await tempDir('rserpool-cookie-sec-');
  root = d.path;
  removeRoot = d.remove;
  await writeFile(join(root, FILE), content);
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});
afterAll(async () => {
  await registrar.stop();
  await removeRoot();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startPe(init: Partial<TftpPoolElementInit> = {}, components: TftpPoolElementComponents = {}) {
  const pe = createTftpPoolElement({ root, handle: HANDLE, registrars: [url], port: 0, ...init }, components);
  await pe.start();
  cleanups.push(() => pe.stop());
  return pe;
}

async function peer(host = '127.0.0.1'): Promise<RawPeer> {
  const p = await RawPeer.open(host);
  cleanups.push(() => p.close());
  return p;
}

/** Echoes `cookie` to the PE and returns its first TFTP answer. */
async function echo(from: RawPeer, port: number, cookie: Uint8Array): Promise<TftpPacket> {
  from.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), port);
  return (await from.nextTftp(10_000, () => {})).packet;
}

function refusedAs(p: TftpPacket, reason: string): void {
  expect(p).toMatchObject({ opcode: TftpOpcode.Error, message: expect.stringMatching(new RegExp(`^cookie refused: ${reason}`)) });
}

/** Taken up: the transfer starts (DATA, or an OACK the client confirms first). */
function accepted(p: TftpPacket): void {
  expect([TftpOpcode.Data, TftpOpcode.Oack]).toContain(p.opcode);
}

async function cookieFrom(pePort: number, client: RawPeer): Promise<Uint8Array> {
  const r = await download(client, pePort, FILE, [[COOKIE_OPTION, '10']]);
  expect(r.data.equals(content)).toBe(true);
  expect(r.cookies.length).toBeGreaterThan(2);
  return r.cookies[2]!;
}

describe('TFTP state cookies against a hostile client', () => {
  it('a PE without a configured secret refuses cookies forged with the secret its pool handle used to give', async () => {
    const pe = await startPe();
    const st = await stat(join(root, FILE));
    const state: CookieState = { path: FILE, size: st.size, mtimeMs: Math.floor(st.mtimeMs), blksize: 512, windowsize: 1, timeout: 0, next: 5, interval: 10 };
    // What anyone could compute from the handle alone.
    const handleSecret = createHash('sha256').update('rserpool tftp cookie secret\0').update(Buffer.from(HANDLE, 'latin1')).digest();
    const body = Buffer.concat([Buffer.from([1]), encode(state)]);
    const v1 = Buffer.concat([body, createHmac('sha256', handleSecret).update(body).digest()]);
    const v2 = encodeCookie(state, handleSecret, { address: '127.0.0.1', now: Date.now(), lifetimeMs: 60_000 });
    const p = await peer();
    for (const forged of [v1, v2]) {
      const answer = await echo(p, pe.address.port, forged);
      expect(answer.opcode).toBe(TftpOpcode.Error);
      expect(answer).toMatchObject({ message: expect.stringMatching(/^cookie refused: (malformed|bad-signature)/) });
    }
  });

  it('a cookie resumes only for the client address it was issued to; from another address it is refused', async () => {
    const pe = await startPe({ secret: 'a secret of this pool, 32 bytes!' });
    const cookie = await cookieFrom(pe.address.port, await peer('127.0.0.1'));
    refusedAs(await echo(await peer('127.0.0.2'), pe.address.port, cookie), 'address');
    // The same client, from another port (as after a failover), is taken up.
    accepted(await echo(await peer('127.0.0.1'), pe.address.port, cookie));
  });

  it('a cookie past its lifetime is refused, by the wall clock the PE is given', async () => {
    let wall = Date.UTC(2026, 0, 1);
    const pe = await startPe({ secret: 'a secret of this pool, 32 bytes!', cookieLifetimeMs: 60_000 }, { wallClock: () => wall });
    const cookie = await cookieFrom(pe.address.port, await peer());
    wall += 59_000;
    accepted(await echo(await peer(), pe.address.port, cookie));
    wall += 1_000;
    refusedAs(await echo(await peer(), pe.address.port, cookie), 'expired');
  });

  it('a cookie is sealed: its path cannot be read in it, and a flipped bit anywhere is refused', async () => {
    const pe = await startPe({ secret: 'a secret of this pool, 32 bytes!' });
    const cookie = await cookieFrom(pe.address.port, await peer());
    expect(Buffer.from(cookie).includes(Buffer.from(FILE))).toBe(false);
    expect(Buffer.from(cookie).includes(Buffer.from('127.0.0.1'))).toBe(false);
    const p = await peer();
    // The version byte, the next block (in clear), the nonce, the sealed state, the tag.
    for (const at of [0, 8, 15, 30, cookie.length - 1]) {
      const bad = Uint8Array.from(cookie);
      bad[at]! ^= 0x01;
      const answer = await echo(p, pe.address.port, bad);
      expect(answer).toMatchObject({ opcode: TftpOpcode.Error, message: expect.stringMatching(/^cookie refused: (malformed|bad-signature)/) });
    }
  });
});
