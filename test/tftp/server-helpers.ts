/** A scripted TFTP peer on loopback for the server tests: sends what a test says, hands back what arrives, in order. */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode, type TftpOptionList, type TftpPacket } from '../../protocols/tftp/types.js';
import { isAsapDatagram } from '../../lib/tftp/contract.js';
import { DeadlineError } from '../transport/util.js';

export interface Datagram {
  bytes: Buffer;
  port: number;
}

export class RawPeer {
  readonly socket: Socket;
  readonly #queue: Datagram[] = [];
  #waiter: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (bytes, rinfo) => {
      this.#queue.push({ bytes, port: rinfo.port });
      this.#waiter?.();
    });
  }

  /** Bound to `host` (another 127.0.0.x stands for another client machine). */
  static async open(host = '127.0.0.1'): Promise<RawPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, host, resolve));
    return new RawPeer(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(bytes: Uint8Array, port: number): void {
    this.socket.send(bytes, port, '127.0.0.1');
  }

  sendPacket(p: TftpPacket, port: number): void {
    this.send(encodeTftpPacket(p), port);
  }

  ack(block: number, port: number): void {
    this.sendPacket({ opcode: TftpOpcode.Ack, block: block & 0xffff }, port);
  }

  /** Datagrams already received and not yet taken. */
  get pending(): number {
    return this.#queue.length;
  }

  /** The next datagram in arrival order. */
  async next(timeoutMs = 10_000): Promise<Datagram> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.#queue.shift();
      if (d) return d;
      const left = deadline - Date.now();
      if (left <= 0) throw new DeadlineError(`no datagram within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          this.#waiter = undefined;
          resolve();
        };
      });
    }
  }

  /** The next TFTP packet; ASAP datagrams in between go to `asap` when given, else fail the test. */
  async nextTftp(timeoutMs = 10_000, asap?: (bytes: Buffer) => void): Promise<{ packet: TftpPacket; port: number }> {
    for (;;) {
      const d = await this.next(timeoutMs);
      if (isAsapDatagram(d.bytes)) {
        if (!asap) throw new Error(`unexpected ASAP datagram ${d.bytes.subarray(0, 8).toString('hex')}`);
        asap(d.bytes);
        continue;
      }
      return { packet: decodeTftpPacket(d.bytes), port: d.port };
    }
  }

  close(): void {
    this.socket.close();
  }
}

export function cookieOf(bytes: Uint8Array): Uint8Array {
  const m = decodeAsapMessage(bytes);
  if (m.type !== AsapMessageType.Cookie) throw new Error(`ASAP message type ${m.type}, not a cookie`);
  return m.cookie;
}

export interface DownloadResult {
  data: Buffer;
  oack: TftpOptionList | undefined;
  cookies: Uint8Array[];
  transferPort: number;
  acksSent: number;
}

/**
 * A minimal RFC 1350/2347/7440 download: ACKs at each window's end (or the
 * final block), so the server's windowing is exercised as a real client would.
 */
export async function download(
  peer: RawPeer,
  serverPort: number,
  filename: string,
  options: TftpOptionList = [],
  opts: { mode?: 'octet' | 'netascii'; windowsize?: number; blksize?: number } = {},
): Promise<DownloadResult> {
  const cookies: Uint8Array[] = [];
  peer.sendPacket({ opcode: TftpOpcode.Rrq, filename, mode: opts.mode ?? 'octet', options }, serverPort);
  const chunks: Buffer[] = [];
  let expected = 1;
  let oack: TftpOptionList | undefined;
  let blksize = opts.blksize ?? 512;
  let windowsize = opts.windowsize ?? 1;
  let inWindow = 0;
  let acksSent = 0;
  for (;;) {
    const { packet: p, port } = await peer.nextTftp(10_000, (b) => {
      // A PE waiting on its disk repeats its latest cookie byte for byte (a keep-alive): one cookie.
      const c = cookieOf(b);
      const prev = cookies.at(-1);
      if (!prev || !Buffer.from(prev).equals(c)) cookies.push(c);
    });
    if (p.opcode === TftpOpcode.Oack) {
      oack = p.options;
      for (const [n, v] of p.options) {
        if (n === 'blksize') blksize = Number(v);
        if (n === 'windowsize') windowsize = Number(v);
      }
      peer.ack(0, port);
      acksSent++;
      continue;
    }
    if (p.opcode === TftpOpcode.Error) throw new Error(`TFTP error ${p.code}: ${p.message}`);
    if (p.opcode !== TftpOpcode.Data) throw new Error(`unexpected opcode ${p.opcode}`);
    if (p.block !== (expected & 0xffff)) continue;
    chunks.push(Buffer.from(p.data));
    expected++;
    const last = p.data.length < blksize;
    if (last || ++inWindow >= windowsize) {
      peer.ack(expected - 1, port);
      acksSent++;
      inWindow = 0;
    }
    if (last) return { data: Buffer.concat(chunks), oack, cookies, transferPort: port, acksSent };
  }
}

export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
