/**
 * The packets a transfer sends on its hot path, built without the generic
 * encoder's checks; block-number rollover; netascii (RFC 764) both ways.
 * Everything a server, client or gateway writes on the wire comes from here
 * or from encodeTftpPacket.
 */
import { TftpOpcode } from './types.js';

/** ERROR text is cut to this many bytes: enough to say why, never a reflection gain. */
export const TFTP_MAX_ERROR_TEXT = 200;

/** The 16-bit block number that goes on the wire for an absolute block (block 0 follows 65535). */
export function wireBlock(absolute: number): number {
  return absolute & 0xffff;
}

/** The absolute block nearest `ref` whose low 16 bits are `wire` (within 32768 either side). */
export function absoluteBlock(wire: number, ref: number): number {
  const d = (wire - ref) & 0xffff;
  return d < 0x8000 ? ref + d : ref + d - 0x10000;
}

/** How far `wire` lies ahead of absolute block `ref`, 0..65535 (bitwise ops wrap at 2^32, a multiple of 65536). */
export function blocksAhead(wire: number, ref: number): number {
  return (wire - ref) & 0xffff;
}

/** Writes a DATA header for absolute block `n` at `at`. */
export function writeDataHeader(out: Uint8Array, at: number, n: number): void {
  out[at] = 0;
  out[at + 1] = TftpOpcode.Data;
  out[at + 2] = (n >> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

/** A DATA header alone, for a packet sent as [header, ...parts]. */
export function dataHeader(n: number): Uint8Array {
  const h = new Uint8Array(4);
  writeDataHeader(h, 0, n);
  return h;
}

/** A whole DATA packet for absolute block `n`. */
export function dataPacket(n: number, data: Uint8Array): Uint8Array {
  const p = new Uint8Array(4 + data.length);
  writeDataHeader(p, 0, n);
  p.set(data, 4);
  return p;
}

/** An ACK for absolute block `n`. */
export function ackPacket(n: number): Uint8Array {
  return new Uint8Array([0, TftpOpcode.Ack, (n >> 8) & 0xff, n & 0xff]);
}

const utf8 = new TextEncoder();

/**
 * An ERROR packet, the one rule for all of them: its text made carriable
 * (NUL and lone surrogates replaced), cut to TFTP_MAX_ERROR_TEXT bytes, and
 * with `maxBytes` (the size of the packet it answers, so no reflection gain)
 * cut to fit that too; undefined when not even an empty text fits.
 */
export function errorPacket(code: number, message: string): Uint8Array;
export function errorPacket(code: number, message: string, maxBytes: number): Uint8Array | undefined;
export function errorPacket(code: number, message: string, maxBytes = Number.POSITIVE_INFINITY): Uint8Array | undefined {
  const room = Math.min(TFTP_MAX_ERROR_TEXT, maxBytes - 5);
  if (room < 0) return undefined;
  const text = utf8.encode(message.replace(/\0/g, ' ').replace(/\p{Cs}/gu, '\ufffd'));
  let length = Math.min(text.length, room);
  // Never cut a multi-byte character in half.
  while (length < text.length && length > 0 && (text[length]! & 0xc0) === 0x80) length--;
  const p = new Uint8Array(5 + length);
  p[1] = TftpOpcode.Error;
  p[2] = (code >> 8) & 0xff;
  p[3] = code & 0xff;
  p.set(text.subarray(0, length), 4);
  return p;
}

/** Local text to netascii (RFC 764): LF -> CR LF, CR -> CR NUL. Returns the input when nothing changes. */
export function toNetascii(bytes: Uint8Array): Uint8Array {
  let extra = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a || bytes[i] === 0x0d) extra++;
  if (extra === 0) return bytes;
  const out = new Uint8Array(bytes.length + extra);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (b === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = b;
  }
  return out;
}

const EMPTY = new Uint8Array(0);

/** Netascii back to local text across block boundaries: CR LF -> LF, CR NUL -> CR, a lone CR kept. */
export class NetasciiDecoder {
  #pendingCr = false;

  /** Decodes `bytes` (a view, not kept) into new bytes. */
  push(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length + 1);
    let o = 0;
    let i = 0;
    if (this.#pendingCr && bytes.length > 0) {
      this.#pendingCr = false;
      const b = bytes[0]!;
      if (b === 0x0a) {
        out[o++] = 0x0a;
        i = 1;
      } else if (b === 0x00) {
        out[o++] = 0x0d;
        i = 1;
      } else out[o++] = 0x0d;
    }
    for (; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (b !== 0x0d) {
        out[o++] = b;
        continue;
      }
      if (i + 1 === bytes.length) {
        this.#pendingCr = true;
        break;
      }
      const n = bytes[i + 1]!;
      if (n === 0x0a) out[o++] = 0x0a;
      else if (n === 0x00) out[o++] = 0x0d;
      else {
        out[o++] = 0x0d;
        continue;
      }
      i++;
    }
    return out.subarray(0, o);
  }

  /** A CR left at the very end is kept as is. */
  end(): Uint8Array {
    if (!this.#pendingCr) return EMPTY;
    this.#pendingCr = false;
    return new Uint8Array([0x0d]);
  }
}
