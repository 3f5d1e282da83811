/**
 * Wire format of the session layer between a PU and a PE.
 *
 * draft-ietf-rserpool-tcpmapping-03 adds to TCP what ASAP needs from SCTP:
 * message orientation, heartbeats, protocol identification. We follow it in
 * the two places where it is concrete for us:
 *   - message orientation: every message on the stream, ASAP or data, starts
 *     with the same 4-byte header (type, flags, 16-bit length, padded to 4), so
 *     one framer (protocols/framing.ts) splits the stream and ASAP control
 *     messages stay byte-exact RFC 5352 (a capture decodes them as ASAP);
 *   - heartbeats: a request/acknowledgement pair on the same connection, so
 *     liveness does not depend on TCP noticing a dead peer.
 * Our own type codes sit outside ASAP's 0x01..0x0e, so a receiver tells them
 * apart by the first byte alone:
 *
 *   0xd0 DATA            flags bit 0 = MORE (another chunk of this message follows)
 *                        payload: one chunk of an application message
 *   0xd1 HEARTBEAT       payload: 32-bit nonce
 *   0xd2 HEARTBEAT_ACK   payload: the nonce echoed
 *
 * The length field counts header + payload (not the padding), as RFC 5352.
 * An application message longer than one frame holds is cut into chunks;
 * chunks of one message are written back to back, never interleaved.
 * Pure functions: no I/O, no clock.
 */
import { DecodeError, DecodeErrorCode } from '../../protocols/errors.js';
import { MESSAGE_HEADER_LENGTH, paddedLength } from '../../protocols/framing.js';
import { decodeAsapMessage } from '../../protocols/asap/codec.js';
import type { AsapMessage } from '../../protocols/asap/types.js';

export const SessionFrameType = {
  Data: 0xd0,
  Heartbeat: 0xd1,
  HeartbeatAck: 0xd2,
} as const;
export type SessionFrameType = (typeof SessionFrameType)[keyof typeof SessionFrameType];

export const DataFlags = {
  /** More chunks of the same application message follow. */
  More: 0x01,
} as const;

/** Largest chunk per DATA frame: 4 + 65,528 = 65,532 bytes, a multiple of 4, under the 16-bit length limit. */
export const MAX_CHUNK_SIZE = 65_528;

export type SessionFrame =
  | { kind: 'asap'; message: AsapMessage }
  | { kind: 'data'; more: boolean; chunk: Uint8Array }
  | { kind: 'heartbeat'; nonce: number }
  | { kind: 'heartbeat-ack'; nonce: number };

function frame(type: number, flags: number, payload: Uint8Array, start = 0, end = payload.length): Uint8Array {
  const length = MESSAGE_HEADER_LENGTH + (end - start);
  const out = new Uint8Array(paddedLength(length));
  out[0] = type;
  out[1] = flags;
  out[2] = length >> 8;
  out[3] = length & 0xff;
  out.set(payload.subarray(start, end), MESSAGE_HEADER_LENGTH);
  return out;
}

/** The DATA frames of one application message (one frame for an empty message). */
export function encodeDataFrames(message: Uint8Array, chunkSize = MAX_CHUNK_SIZE): Uint8Array[] {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunk size ${chunkSize} is not in 1..${MAX_CHUNK_SIZE}`);
  }
  if (message.length === 0) return [frame(SessionFrameType.Data, 0, message)];
  const out: Uint8Array[] = [];
  for (let at = 0; at < message.length; at += chunkSize) {
    const end = Math.min(message.length, at + chunkSize);
    out.push(frame(SessionFrameType.Data, end < message.length ? DataFlags.More : 0, message, at, end));
  }
  return out;
}

export function encodeHeartbeat(nonce: number, ack = false): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, nonce >>> 0);
  return frame(ack ? SessionFrameType.HeartbeatAck : SessionFrameType.Heartbeat, 0, payload);
}

/** One whole frame (as the stream framer or a memory connection delivers it); throws only DecodeError. */
export function decodeSessionFrame(bytes: Uint8Array): SessionFrame {
  if (bytes.length < MESSAGE_HEADER_LENGTH) {
    throw new DecodeError(DecodeErrorCode.Truncated, `a frame of ${bytes.length} bytes cannot hold its header`, { offset: 0 });
  }
  const type = bytes[0]!;
  if (type >= 0x01 && type <= 0x0e) return { kind: 'asap', message: decodeAsapMessage(bytes) };
  const flags = bytes[1]!;
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (length < MESSAGE_HEADER_LENGTH || length > bytes.length || bytes.length - length > 3) {
    throw new DecodeError(DecodeErrorCode.BadLength, `frame length ${length} does not fit a frame of ${bytes.length} bytes`, {
      offset: 2,
      tlvType: type,
    });
  }
  for (let i = length; i < bytes.length; i++) {
    if (bytes[i] !== 0) throw new DecodeError(DecodeErrorCode.BadPadding, 'padding is not zero', { offset: i, tlvType: type });
  }
  switch (type) {
    case SessionFrameType.Data:
      if ((flags & ~DataFlags.More) !== 0) {
        throw new DecodeError(DecodeErrorCode.BadValue, `reserved DATA flags 0x${flags.toString(16)} set`, { offset: 1, tlvType: type });
      }
      return { kind: 'data', more: (flags & DataFlags.More) !== 0, chunk: bytes.subarray(MESSAGE_HEADER_LENGTH, length) };
    case SessionFrameType.Heartbeat:
    case SessionFrameType.HeartbeatAck: {
      if (length !== 8) {
        throw new DecodeError(DecodeErrorCode.BadLength, `heartbeat length ${length}, expected 8`, { offset: 2, tlvType: type });
      }
      const nonce = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
      return type === SessionFrameType.Heartbeat ? { kind: 'heartbeat', nonce } : { kind: 'heartbeat-ack', nonce };
    }
    default:
      throw new DecodeError(DecodeErrorCode.UnknownType, `unknown session frame type 0x${type.toString(16)}`, { offset: 0, tlvType: type });
  }
}

/** Joins DATA chunks into application messages; refuses a message above `max` before buffering it. */
export class Reassembler {
  readonly #max: number;
  #parts: Uint8Array[] = [];
  #size = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** The whole message once its last chunk is in, else undefined. */
  push(chunk: Uint8Array, more: boolean): Uint8Array | undefined {
    if (this.#size + chunk.length > this.#max) {
      throw new DecodeError(DecodeErrorCode.TooLarge, `application message above the limit of ${this.#max} bytes`, {
        offset: 0,
        tlvType: SessionFrameType.Data,
      });
    }
    if (!more && this.#parts.length === 0) return chunk.slice();
    this.#parts.push(chunk.slice());
    this.#size += chunk.length;
    if (more) return undefined;
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    this.#size = 0;
    return out;
  }

  get pending(): boolean {
    return this.#parts.length > 0;
  }
}
