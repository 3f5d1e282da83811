import { DecodeError, DecodeErrorCode, EncodeError } from './errors.js';

/** A plain Uint8Array copy of [start, end): never a view, never a Buffer (whose slice aliases). */
export function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  const out = new Uint8Array(n);
  // A loop beats creating a subarray view for the short values typical here.
  if (n <= 64) for (let i = 0; i < n; i++) out[i] = bytes[start + i]!;
  else out.set(bytes.subarray(start, end));
  return out;
}

/** Bytes to add after `length` to reach a 4-byte boundary. */
export function padding4(length: number): number {
  return (4 - (length & 3)) & 3;
}

/** Writes v as 16 bits big-endian at b[p]; returns p + 2. */
export function putU16(b: Uint8Array, p: number, v: number): number {
  b[p] = v >>> 8;
  b[p + 1] = v;
  return p + 2;
}

/** Writes v as 32 bits big-endian at b[p]; returns p + 4. */
export function putU32(b: Uint8Array, p: number, v: number): number {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
  return p + 4;
}

/** Copies src to b[p]; returns p + src.length. */
export function putBytes(b: Uint8Array, p: number, src: Uint8Array): number {
  const n = src.length;
  // A loop beats TypedArray#set for the short values typical here.
  if (n <= 32) for (let i = 0; i < n; i++) b[p + i] = src[i]!;
  else b.set(src, p);
  return p + n;
}

/**
 * Closes the TLV whose 4-byte header slot starts at `start` and whose value
 * ends at `p`: writes type and length (start..p, nested padding included, as
 * RSPLIB does, never its own trailing padding), then zero padding, since the
 * target may be a caller's buffer that is not zero-filled. Returns the padded end.
 */
export function endTlv(b: Uint8Array, start: number, p: number, type: number): number {
  const length = p - start;
  if (length > 0xffff) throw new EncodeError(`TLV of ${length} bytes exceeds the 16-bit length field`);
  b[start] = type >>> 8;
  b[start + 1] = type;
  b[start + 2] = length >>> 8;
  b[start + 3] = length;
  for (let n = (4 - (length & 3)) & 3; n > 0; n--) b[p++] = 0;
  return p;
}

/**
 * A cursor over one buffer sized up front by the caller (exact size,
 * computed from the values), for the `write*` functions; the encoders
 * themselves use the `put*` functions on (buffer, position) directly.
 */
export class TlvWriter {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(size: number) {
    this.#buf = new Uint8Array(size);
  }

  get position(): number {
    return this.#pos;
  }

  /** Moves to `p`, the position a `put*` function returned. */
  moveTo(p: number): void {
    this.#pos = p;
  }

  u8(v: number): void {
    this.#buf[this.#pos++] = v;
  }

  u16(v: number): void {
    this.#pos = putU16(this.#buf, this.#pos, v);
  }

  u32(v: number): void {
    this.#pos = putU32(this.#buf, this.#pos, v);
  }

  bytes(b: Uint8Array): void {
    this.#pos = putBytes(this.#buf, this.#pos, b);
  }

  /** The output buffer, for writers that fill bytes in place before `skip`. */
  get target(): Uint8Array {
    return this.#buf;
  }

  skip(n: number): void {
    this.#pos += n;
  }

  /** Buffer is zero-filled at allocation, so padding is a skip. */
  pad(): void {
    this.#pos += padding4(this.#pos);
  }

  /** Starts a 16-bit type / 16-bit length TLV; returns its start for `end`. */
  begin(type: number): number {
    const start = this.#pos;
    this.u16(type);
    this.#pos += 2;
    return start;
  }

  /** Patches the length at start+2 (start..here, nested padding included) and pads. */
  end(start: number): void {
    const b = this.#buf;
    this.#pos = endTlv(b, start, this.#pos, (b[start]! << 8) | b[start + 1]!);
  }

  /** The encoded bytes; the size promised to the constructor must have been used exactly. */
  finish(): Uint8Array {
    if (this.#pos !== this.#buf.length) {
      throw new EncodeError(`encoder wrote ${this.#pos} bytes, sized ${this.#buf.length}`);
    }
    return this.#buf;
  }
}

/** One TLV header as read: value spans [valueStart, valueEnd). */
export interface TlvHeader {
  type: number;
  /** Offset of the TLV header in the decoded buffer. */
  offset: number;
  length: number;
  valueStart: number;
  valueEnd: number;
}

/** `TlvReader.tlvType` when errors in the span carry no TLV type. */
const NO_TYPE = -1;

/**
 * A bounded cursor over [pos, end) of one buffer. Every read checks what
 * remains first, so only DecodeError can leave it; offsets are absolute
 * within the buffer given to the top-level decoder. A plain object of
 * integer fields (one shape, so V8 keeps every access monomorphic): `next`
 * leaves the header it read in `type`/`offset`/`length` instead of
 * allocating one.
 */
export class TlvReader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;
  /** TLV type reported with errors found in this span, or -1 for none. */
  readonly tlvType: number;
  /** Inside another TLV: running past the end is a bad length, not a short buffer. */
  readonly nested: boolean;
  /** The header `next` read last: type, offset of the header, length field. */
  type = 0;
  offset = 0;
  length = 0;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length, tlvType?: number, nested = false) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    this.tlvType = tlvType ?? NO_TYPE;
    this.nested = nested;
  }

  get position(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get bytesView(): Uint8Array {
    return this.bytes;
  }

  fail(code: DecodeErrorCode, message: string, offset = this.pos, tlvType = this.tlvType): never {
    throw new DecodeError(code, message, tlvType === NO_TYPE ? { offset } : { offset, tlvType });
  }

  #short(n: number, what: string): never {
    return this.fail(DecodeErrorCode.Truncated, `${what} needs ${n} bytes, ${this.end - this.pos} remain`);
  }

  u8(what = 'field'): number {
    if (this.end - this.pos < 1) this.#short(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what = 'field'): number {
    const p = this.pos;
    if (this.end - p < 2) this.#short(2, what);
    const b = this.bytes;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  u32(what = 'field'): number {
    const p = this.pos;
    if (this.end - p < 4) this.#short(4, what);
    const b = this.bytes;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** A copy, so decoded values never alias a buffer the caller may reuse. */
  bytesCopy(n: number, what = 'field'): Uint8Array {
    if (this.end - this.pos < n) this.#short(n, what);
    const out = copyBytes(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * Reads the next TLV header into `type`, `offset` and `length`, and moves
   * past the TLV and its padding. Returns the type.
   */
  next(): number {
    const offset = this.pos;
    const length = tlvLengthAt(this.bytes, offset, this.end, this.tlvType, this.nested);
    this.pos = tlvEnd(offset, length, this.end);
    this.type = (this.bytes[offset]! << 8) | this.bytes[offset + 1]!;
    this.offset = offset;
    this.length = length;
    return this.type;
  }

  /** The header `next` read last, as an object. */
  header(): TlvHeader {
    return { type: this.type, offset: this.offset, length: this.length, valueStart: this.offset + 4, valueEnd: this.offset + this.length };
  }

  /** A reader over the value of the TLV `next` read last, sharing this buffer. */
  sub(): TlvReader {
    const offset = this.offset;
    return new TlvReader(this.bytes, offset + 4, offset + this.length, this.type, true);
  }

  /** Fails unless the whole span was consumed. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) {
      this.fail(DecodeErrorCode.BadLength, `${this.end - this.pos} unexpected byte(s) after ${what}`);
    }
  }
}

/**
 * Checks the TLV header at b[at], inside an enclosure ending at `end` whose
 * type (-1: none) errors report; returns its length field. `nested`: inside
 * another TLV, where running past the end is a bad length, not a short buffer.
 * Its padding must be zero up to the enclosure's end (past it, the padding
 * is the enclosure's own, its length having stopped before it).
 */
export function tlvLengthAt(b: Uint8Array, at: number, end: number, enclosureType: number, nested: boolean): number {
  if (end - at < 4) {
    const message = `${end - at} byte(s) left, too few for a parameter header`;
    throw new DecodeError(DecodeErrorCode.Truncated, message, enclosureType === NO_TYPE ? { offset: at } : { offset: at, tlvType: enclosureType });
  }
  const type = (b[at]! << 8) | b[at + 1]!;
  const length = (b[at + 2]! << 8) | b[at + 3]!;
  if (length < 4) {
    throw new DecodeError(DecodeErrorCode.BadLength, `parameter length ${length} is below the header size`, { offset: at + 2, tlvType: type });
  }
  const valueEnd = at + length;
  if (valueEnd > end) {
    const code = nested ? DecodeErrorCode.BadLength : DecodeErrorCode.Truncated;
    throw new DecodeError(code, `parameter length ${length} runs past its enclosure (${end - at} bytes left)`, { offset: at + 2, tlvType: type });
  }
  const padded = tlvEnd(at, length, end);
  for (let i = valueEnd; i < padded; i++) {
    if (b[i] !== 0) throw new DecodeError(DecodeErrorCode.BadPadding, 'non-zero padding byte', { offset: i, tlvType: type });
  }
  return length;
}

/** Where the TLV at `at` of that length ends, its padding included, within an enclosure ending at `end`. */
export function tlvEnd(at: number, length: number, end: number): number {
  const padded = at + length + ((4 - (length & 3)) & 3);
  return padded > end ? end : padded;
}

/** The fixed 4-byte header of an ASAP or ENRP message. */
interface MessageHeader {
  type: number;
  flags: number;
  /** The length field as received (with or without the final padding). */
  length: number;
}

/**
 * Checks the header of a whole message against the bytes given. The length
 * field may count the final padding (RSPLIB, our encoder) or stop before it
 * (RFC 5352); either way the padding must be present and zero, and nothing
 * may follow it.
 */
export function readMessageHeader(bytes: Uint8Array): MessageHeader {
  if (bytes.length < 4) {
    throw new DecodeError(DecodeErrorCode.Truncated, `${bytes.length} byte(s), too few for a message header`, { offset: bytes.length });
  }
  const type = bytes[0]!;
  const flags = bytes[1]!;
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (length < 4) throw new DecodeError(DecodeErrorCode.BadLength, `message length ${length} is below the header size`, { offset: 2, tlvType: type });
  if (length > bytes.length) {
    throw new DecodeError(DecodeErrorCode.Truncated, `message length ${length} but only ${bytes.length} bytes`, { offset: 2, tlvType: type });
  }
  const padded = length + padding4(length);
  if (bytes.length > padded) {
    throw new DecodeError(DecodeErrorCode.BadLength, `${bytes.length - padded} byte(s) after the message`, { offset: padded, tlvType: type });
  }
  if (bytes.length < padded) throw new DecodeError(DecodeErrorCode.BadPadding, 'final padding missing', { offset: bytes.length, tlvType: type });
  for (let i = length; i < padded; i++) {
    if (bytes[i] !== 0) throw new DecodeError(DecodeErrorCode.BadPadding, 'non-zero padding byte', { offset: i, tlvType: type });
  }
  return { type, flags, length };
}

export function checkFlags(flags: number | undefined): number {
  const f = flags ?? 0;
  if (!Number.isInteger(f) || f < 0 || f > 0xff) throw new EncodeError(`flags ${f} do not fit in 8 bits`);
  return f;
}
