import { DecodeError, DecodeErrorCode } from './errors.js';

/**
 * ASAP/ENRP over a byte stream: messages back to back, each framed by the
 * 16-bit length field of its own header (bytes 2-3), padded to 4 bytes, as
 * draft-ietf-rserpool-tcpmapping does. A length that stops before the final
 * padding is accepted (RSPLIB writes the padded length, RFC 5352 the unpadded).
 */
export interface StreamFramerInit {
  /** Largest message accepted; a header announcing more fails before buffering. */
  maxMessageSize?: number;
}

export const MESSAGE_HEADER_LENGTH = 4;
export const DEFAULT_MAX_MESSAGE_SIZE = 65_535 + 3;

export function paddedLength(length: number): number {
  return (length + 3) & ~3;
}

/**
 * Incremental decoder: push chunks in, take whole messages out. "Need more
 * bytes" is an empty result, never an exception. A framing fault throws a
 * DecodeError and leaves the framer unusable: the stream has lost sync.
 * Messages completed before the fault are returned first, so any chunking of
 * a stream yields the same frames before the same error.
 */
export class StreamFramer {
  readonly #max: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #consumed = 0;
  #failed: DecodeError | undefined;

  constructor(init: StreamFramerInit = {}) {
    this.#max = init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  }

  /** Bytes held that do not yet make a whole message. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds a chunk and returns every message now complete, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Uint8Array[] = [];
    while (this.#buffered >= MESSAGE_HEADER_LENGTH) {
      const header = this.#peek(MESSAGE_HEADER_LENGTH);
      const length = (header[2]! << 8) | header[3]!;
      if (length < MESSAGE_HEADER_LENGTH) {
        return this.#fail(
          out,
          new DecodeError(DecodeErrorCode.BadLength, `message length ${length} is below the header size`, {
            offset: this.#consumed + 2,
            tlvType: header[0],
          }),
        );
      }
      const frame = paddedLength(length);
      if (frame > this.#max) {
        return this.#fail(
          out,
          new DecodeError(DecodeErrorCode.TooLarge, `message of ${frame} bytes exceeds the limit of ${this.#max}`, {
            offset: this.#consumed + 2,
            tlvType: header[0],
          }),
        );
      }
      if (this.#buffered < frame) break;
      out.push(this.#take(frame));
    }
    return out;
  }

  /** Frames completed before the fault are still delivered; the fault surfaces on the next push. */
  #fail(done: Uint8Array[], err: DecodeError): Uint8Array[] {
    this.#failed = err;
    this.#chunks = [];
    this.#buffered = 0;
    if (done.length === 0) throw err;
    return done;
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let filled = 0;
    for (const c of this.#chunks) {
      const part = c.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.length;
      if (filled === n) break;
    }
    return out;
  }

  #take(n: number): Uint8Array {
    this.#buffered -= n;
    this.#consumed += n;
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      const msg = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return msg;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        out.set(c, filled);
        filled += c.length;
        this.#chunks.shift();
      } else {
        out.set(c.subarray(0, want), filled);
        this.#chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}
