/**
 * The gateway for unmodified TFTP clients, in this process, in front of real
 * pool elements and a registrar on loopback; the clients are curl, tftp-hpa
 * and atftp (they must be installed: a missing one fails the test), and a
 * scripted client for the protocol details.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createTftpGateway, type GatewayTransferEnd, type TftpGateway } from '../../lib/tftp/gateway/index.js';
import type { FailoverInfo } from '../../lib/tftp/client/index.js';
import { createTftpPoolElement, type TftpPoolElement } from '../../lib/tftp/server/index.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode, type TftpPacket } from '../../protocols/tftp/types.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tftp-gateway-'));
const root = join(dir, 'root');
const files = new Map<string, Buffer>();
let registrar: Registrar;
let url: string;
let pes: TftpPoolElement[] = [];
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
    ['boot.img', 3_000_000],
    ['big.img', 40_000_000],
    ['tiny.txt', 1000],
  ] as const) {
    const b = randomBytes(size);
    writeFileSync(join(root, name), b);
    files.set(name, b);
  }
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});

afterAll(async () => {
  await registrar.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function pool(n = 2, bufferBytes?: number, limitRate?: number): Promise<TftpGateway> {
  pes = [];
  for (let i = 0; i < n; i++) {
    const pe = createTftpPoolElement({ root, port: 0, handle: 'files', registrars: [url], secret: 'pool secret' });
    await pe.start();
    cleanups.push(() => pe.stop());
    pes.push(pe);
  }
  const gw = createTftpGateway({
    listen: { host: '127.0.0.1', port: 0 },
    handle: 'files',
    registrars: [url],
    ...(bufferBytes ? { bufferBytes } : {}),
    ...(limitRate ? { limitRate } : {}),
  });
  await gw.start();
  cleanups.push(() => gw.close());
  return gw;
}

/** Resolves with the next transfer-end of the gateway. */
function nextEnd(gw: TftpGateway): Promise<GatewayTransferEnd> {
  return new Promise((resolve) => gw.once('transfer-end', resolve));
}

class RawClient {
  readonly socket: Socket;
  readonly #queue: { p: TftpPacket; rinfo: RemoteInfo }[] = [];
  #wake: (() => void) | undefined;
  constructor() {
    this.socket = createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => {
      this.#queue.push({ p: decodeTftpPacket(msg), rinfo });
      this.#wake?.();
    });
    cleanups.push(async () => this.socket.close());
  }
  async bind(): Promise<this> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return this;
  }
  send(p: TftpPacket | Uint8Array, port: number): void {
    this.socket.send(p instanceof Uint8Array ? p : encodeTftpPacket(p), port, '127.0.0.1');
  }
  async next(timeoutMs = 10_000): Promise<{ p: TftpPacket; rinfo: RemoteInfo }> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => (clearTimeout(t), resolve());
      });
      this.#wake = undefined;
    }
    return this.#queue.shift()!;
  }
}

describe('the TFTP gateway for plain clients', () => {
  it('serves curl (blksize 512 and 1468), tftp-hpa and atftp (windowsize 8) byte-identical', async () => {
    const gw = await pool();
    const port = String(gw.address.port);
    const want = files.get('boot.img')!;
    const clients: [string, string[], string][] = [];
    const add = (cmd: string, args: (o: string) => string[]): void => {
      const o = out();
      clients.push([cmd, args(o), o]);
    };
    add('curl', (o) => ['-sS', '-o', o, `tftp://127.0.0.1:${port}/boot.img`]);
    add('curl', (o) => ['-sS', '-o', o, '--tftp-blksize', '1468', `tftp://127.0.0.1:${port}/boot.img`]);
    add('tftp', (o) => ['127.0.0.1', port, '-m', 'binary', '-c', 'get', 'boot.img', o]);
    add('atftp', (o) => ['--get', '-r', 'boot.img', '-l', o, '--option', 'blksize 1468', '--option', 'windowsize 8', '127.0.0.1', port]);
    for (const [cmd, args, o] of clients) {
      const ended = nextEnd(gw);
      await run(cmd, args, { timeout: 60_000 });
      expect({ cmd, args, same: readFileSync(o).equals(want) }).toEqual({ cmd, args, same: true });
      expect(await ended).toMatchObject({ ok: true, bytes: want.length, path: 'boot.img' });
    }
    expect(gw.activeTransfers).toBe(0);
  });

  it('answers the options a client asks for in its OACK (blksize, tsize, timeout, windowsize) and sends windows', async () => {
    const gw = await pool(1);
    const c = await new RawClient().bind();
    const want = files.get('tiny.txt')!;
    c.send(
      {
        opcode: TftpOpcode.Rrq,
        filename: 'tiny.txt',
        mode: 'octet',
        options: [
          ['blksize', '100'],
          ['tsize', '0'],
          ['timeout', '3'],
          ['windowsize', '4'],
          ['x-other', '1'],
        ],
      },
      gw.address.port,
    );
    const oack = await c.next();
    expect(oack.p).toEqual({
      opcode: TftpOpcode.Oack,
      options: [
        ['blksize', '100'],
        ['tsize', '1000'],
        ['timeout', '3'],
        ['windowsize', '4'],
      ],
    });
    expect(oack.rinfo.port).not.toBe(gw.address.port);
    const tid = oack.rinfo.port;
    c.send({ opcode: TftpOpcode.Ack, block: 0 }, tid);
    const got: Buffer[] = [];
    for (let window = 0; window < 3; window++) {
      const blocks: number[] = [];
      for (let i = 0; i < 4 && got.length < 11; i++) {
        const { p } = await c.next();
        if (p.opcode !== TftpOpcode.Data) throw new Error(`expected DATA, got opcode ${p.opcode}`);
        blocks.push(p.block);
        got.push(Buffer.from(p.data));
      }
      expect(blocks[0]).toBe(window * 4 + 1);
      c.send({ opcode: TftpOpcode.Ack, block: blocks.at(-1)! }, tid);
    }
    expect(got.map((b) => b.length)).toEqual([...Array(10).fill(100), 0]);
    expect(Buffer.concat(got).equals(want)).toBe(true);
  });

  it('serves a client whose window is larger than the read-ahead buffer', async () => {
    const gw = await pool(1, 65_536);
    const o = out();
    const ended = nextEnd(gw);
    await run('atftp', ['--get', '-r', 'boot.img', '-l', o, '--option', 'blksize 1468', '--option', 'windowsize 64', '127.0.0.1', String(gw.address.port)], {
      timeout: 60_000,
    });
    expect(sha(readFileSync(o))).toBe(sha(files.get('boot.img')!));
    expect(await ended).toMatchObject({ ok: true });
  });

  it('limitRate paces each transfer: curl gets 3 MB at 1 MiB a second no sooner than (size - bucket - window) / rate', async () => {
    const gw = await pool(1, undefined, 1 << 20);
    const want = files.get('boot.img')!;
    const o = out();
    const started = performance.now();
    await run('curl', ['-sS', '-o', o, '--tftp-blksize', '1468', `tftp://127.0.0.1:${gw.address.port}/boot.img`], { timeout: 30_000 });
    const elapsed = performance.now() - started;
    expect(sha(readFileSync(o))).toBe(sha(want));
    // The bucket (64 KiB) goes at once, the last upstream window needs no ACK, the rest comes at the rate: a floor whatever the load.
    expect(elapsed).toBeGreaterThanOrEqual(((want.length - 65_536 - 16 * 1468) / (1 << 20)) * 1000);
  });

  it("passes a PE's error on, refuses uploads and bad requests, and carries on serving", async () => {
    const gw = await pool(1);
    const c = await new RawClient().bind();
    c.send({ opcode: TftpOpcode.Rrq, filename: 'no-such-file', mode: 'octet', options: [] }, gw.address.port);
    expect((await c.next()).p).toMatchObject({ opcode: TftpOpcode.Error, code: 1 });
    c.send({ opcode: TftpOpcode.Wrq, filename: 'up.bin', mode: 'octet', options: [] }, gw.address.port);
    expect((await c.next()).p).toMatchObject({ opcode: TftpOpcode.Error, code: 2 });
    // A malformed request (no terminating zero), long enough to be answered: garbage gets no answer larger than itself.
    c.send(new Uint8Array([0, 1, ...Buffer.from('fo'.repeat(40))]), gw.address.port);
    expect((await c.next()).p).toMatchObject({ opcode: TftpOpcode.Error, code: 4 });
    const o = out();
    await run('curl', ['-sS', '-o', o, `tftp://127.0.0.1:${gw.address.port}/tiny.txt`], { timeout: 30_000 });
    expect(readFileSync(o).equals(files.get('tiny.txt')!)).toBe(true);
  });

  it('keeps a curl download going when its PE dies: the client sees only a delay', async () => {
    const gw = await pool(2);
    const want = files.get('big.img')!;
    const failovers: FailoverInfo[] = [];
    gw.on('failover', (f) => failovers.push(f));
    let killed: number | undefined;
    // Kill the serving PE once the gateway has half the file from it.
    const watch = setInterval(() => {
      for (const t of gw.transfers()) {
        if (killed === undefined && t.pe?.identifier !== undefined && t.total !== undefined && t.received > t.total / 2) {
          killed = t.pe.identifier;
          void pes.find((p) => p.identifier === killed)!.server.close({ leave: false });
        }
      }
    }, 5);
    cleanups.push(async () => clearInterval(watch));
    const o = out();
    const ended = nextEnd(gw);
    await run('curl', ['-sS', '-o', o, '--tftp-blksize', '8192', `tftp://127.0.0.1:${gw.address.port}/big.img`], { timeout: 60_000 });
    expect(killed).toBeDefined();
    expect(sha(readFileSync(o))).toBe(sha(want));
    expect(failovers.length).toBeGreaterThanOrEqual(1);
    expect(failovers[0]).toMatchObject({ from: { identifier: killed }, cookieEchoed: true, path: 'big.img' });
    expect(failovers[0]!.stallMs).toBeLessThan(1_000);
    expect(await ended).toMatchObject({ ok: true, bytes: want.length, failovers: failovers.length });
  });
});
