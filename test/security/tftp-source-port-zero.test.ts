/**
 * Issue 11 finding 2: one UDP datagram from source port 0 killed `tftp
 * serve`, `tftp gateway` and `tftp get` (the reply to it, send(..., 0) or
 * connect(0), threw out of the socket's event). Real processes, real
 * datagrams from port 0 (a raw socket); each process must still serve after.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { startCli, type CliProcess } from '../cli/run.js';
import { RawPeer, download, tempDir } from '../tftp/server-helpers.js';
import { canSendRaw, sendRawUdp } from './raw-udp.js';

const content = randomBytes(20_000);
const rrq = (filename: string, options: [string, string][] = []): Uint8Array => encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename, mode: 'octet', options });
/** What a hostile sender tries from port 0: requests, a stray ACK, garbage, a cookie echo, an ERROR. */
const volley = [
  rrq('file.bin'),
  rrq('file.bin', [
    ['blksize', '1468'],
    ['windowsize', '8'],
  ]),
  rrq('missing.bin'),
  encodeTftpPacket({ opcode: TftpOpcode.Ack, block: 1 }),
  Buffer.from([0, 9, 1, 2, 3]),
  Buffer.from([0]),
  encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: randomBytes(80) }),
  Buffer.from([0xff, 0xff, 0xff]),
];

// Root only: a datagram from port 0 needs a raw socket.
describe.skipIf(!canSendRaw)('datagrams from UDP source port 0 (needs root for a raw socket)', () => {
  let dir: { path: string; remove: () => Promise<void> };
  const procs: CliProcess[] = [];
  let url: string;
  let pePort: number;

  function start(args: string[]): CliProcess {
    const p = startCli(args);
    procs.push(p);
    return p;
  }

  async function stillRunning(p: CliProcess): Promise<void> {
    const state = await Promise.race([p.exited.then((c) => `exited ${c}`), new Promise<string>((resolve) => setImmediate(() => resolve('running')))]);
    expect(state, p.output()).toBe('running');
  }

  beforeAll(async () => {
    dir = await tempDir('rserpool-port0-');
    await writeFile(join(dir.path, 'file.bin'), content);
    const registrar = start(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off']);
    url = (await registrar.waitForLine(/asap (tcp:\/\/127\.0\.0\.1:\d+)/, 20_000))[1]!;
    const pe = start(['tftp', 'serve', '--root', dir.path, '--registrar', url, '--port', '0', '--handle', 'port0-files']);
    pePort = Number((await pe.waitForLine(/^serving .+ on 127\.0\.0\.1:(\d+) as PE/, 20_000))[1]);
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await dir.remove();
  });

  it('tftp serve drops them and goes on serving', async () => {
    await sendRawUdp('127.0.0.1', pePort, volley);
    const peer = await RawPeer.open();
    try {
      const r = await download(peer, pePort, 'file.bin', [['blksize', '1468']]);
      expect(r.data.equals(content)).toBe(true);
    } finally {
      peer.close();
    }
    await stillRunning(procs[1]!);
  });

  it('tftp gateway drops them and goes on serving', async () => {
    const gw = start(['tftp', 'gateway', '--listen', '127.0.0.1:0', '--registrar', url, '--handle', 'port0-files', '--quiet']);
    const port = Number((await gw.waitForLine(/^gateway listening on 127\.0\.0\.1:(\d+)/, 20_000))[1]);
    await sendRawUdp('127.0.0.1', port, volley);
    const peer = await RawPeer.open();
    try {
      const r = await download(peer, port, 'file.bin', [['blksize', '1468']]);
      expect(r.data.equals(content)).toBe(true);
    } finally {
      peer.close();
    }
    await stillRunning(gw);
  });

  it("tftp get ignores a DATA from port 0 and takes the PE's", async () => {
    // A scripted PE registered by the sidecar: it sees the client's port, so port 0 can aim there.
    const fake = await RawPeer.open();
    try {
      const sidecar = start(['register', '--handle', 'port0-fake', '--transport', `udp://127.0.0.1:${fake.port}`, '--registrar', url]);
      await sidecar.waitForLine(/^registered /, 20_000);
      const out = join(dir.path, 'got.bin');
      const get = start(['tftp', 'get', 'port0-fake:/x.bin', '-o', out, '--registrar', url, '--no-progress', '--timeout', '2s', '--dead-after', '10s']);
      const request = await fake.next(20_000);
      expect(request.bytes[1]).toBe(TftpOpcode.Rrq);
      const forged = encodeTftpPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.from('forged') });
      await sendRawUdp('127.0.0.1', request.port, [forged, Buffer.from([0, TftpOpcode.Data, 0, 1, ...randomBytes(512)])]);
      fake.sendPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.from('genuine') }, request.port);
      expect(await get.exited, get.output()).toBe(0);
      expect((await readFile(out)).toString()).toBe('genuine');
    } finally {
      fake.close();
    }
  });
});
