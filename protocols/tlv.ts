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

/**
 * Writes into one buffer sized up front by the caller (exact size, computed
 * from the values), so encoding allocates once. TLV lengths are patched from
 * the bytes actually written: they count nested padding (as RSPLIB does),
 * never the TLV's own trailing padding.
 */
export class TlvWriter {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(size: number) {
    // No DataView: creating one per message costs more than shifting bytes.
    this.#buf = new Uint8Array(size);
  }

  get position(): number {
    return this.#pos;
  }

  u8(v: number): void {
    this.#buf[this.#pos++] = v;
  }

  u16(v: number): void {
    const b = this.#buf;
    const p = this.#pos;
    b[p] = v >>> 8;
    b[p + 1] = v;
    this.#pos = p + 2;
  }

  u32(v: number): void {
    const b = this.#buf;
    const p = this.#pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.#pos = p + 4;
  }

  bytes(b: Uint8Array): void {
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
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
    const length = this.#pos - start;
    if (length > 0xffff) throw new EncodeError(`TLV of ${length} bytes exceeds the 16-bit length field`);
    this.#buf[start + 2] = length >>> 8;
    this.#buf[start + 3] = length;
    this.pad();
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

/**
 * A bounded cursor over [pos, end) of one buffer. Every read checks what
 * remains first, so only DecodeError can leave it; offsets are absolute
 * within the buffer given to the top-level decoder.
 */
export class TlvReader {
  readonly #bytes: Uint8Array;
  readonly #end: number;
  /** TLV type reported with errors found in this span. */
  readonly #tlvType: number | undefined;
  /** Inside another TLV: running past the end is a bad length, not a short buffer. */
  readonly #nested: boolean;
  #pos: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length, tlvType?: number, nested = false) {
    this.#bytes = bytes;
    this.#nested = nested;
    this.#pos = start;
    this.#end = end;
    this.#tlvType = tlvType;
  }

  get position(): number {
    return this.#pos;
  }

  get end(): number {
    return this.#end;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  get bytesView(): Uint8Array {
    return this.#bytes;
  }

  fail(code: DecodeErrorCode, message: string, offset = this.#pos, tlvType = this.#tlvType): never {
    throw new DecodeError(code, message, tlvType === undefined ? { offset } : { offset, tlvType });
  }

  #need(n: number, what: string): void {
    if (this.#end - this.#pos < n) this.fail(DecodeErrorCode.Truncated, `${what} needs ${n} bytes, ${this.#end - this.#pos} remain`);
  }

  u8(what = 'field'): number {
    this.#need(1, what);
    return this.#bytes[this.#pos++]!;
  }

  u16(what = 'field'): number {
    this.#need(2, what);
    const b = this.#bytes;
    const p = this.#pos;
    this.#pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  u32(what = 'field'): number {
    this.#need(4, what);
    const b = this.#bytes;
    const p = this.#pos;
    this.#pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** A copy, so decoded values never alias a buffer the caller may reuse. */
  bytes(n: number, what = 'field'): Uint8Array {
    this.#need(n, what);
    const out = copyBytes(this.#bytes, this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** Reads the next TLV header and moves past the TLV and its padding. */
  next(): TlvHeader {
    const offset = this.#pos;
    if (this.#end - offset < 4) {
      this.fail(DecodeErrorCode.Truncated, `${this.#end - offset} byte(s) left, too few for a parameter header`);
    }
    const b = this.#bytes;
    const type = (b[offset]! << 8) | b[offset + 1]!;
    const length = (b[offset + 2]! << 8) | b[offset + 3]!;
    if (length < 4) this.fail(DecodeErrorCode.BadLength, `parameter length ${length} is below the header size`, offset + 2, type);
    const valueEnd = offset + length;
    if (valueEnd > this.#end) {
      const code = this.#nested ? DecodeErrorCode.BadLength : DecodeErrorCode.Truncated;
      this.fail(code, `parameter length ${length} runs past its enclosure (${this.#end - offset} bytes left)`, offset + 2, type);
    }
    // Past the enclosure's end, this padding is the enclosure's own (its
    // length stopped before it), checked by the enclosing reader.
    const padded = Math.min(valueEnd + padding4(length), this.#end);
    for (let i = valueEnd; i < padded; i++) {
      if (this.#bytes[i] !== 0) this.fail(DecodeErrorCode.BadPadding, 'non-zero padding byte', i, type);
    }
    this.#pos = padded;
    return { type, offset, length, valueStart: offset + 4, valueEnd };
  }

  /** A reader over one TLV's value, sharing this buffer. */
  sub(h: TlvHeader): TlvReader {
    return new TlvReader(this.#bytes, h.valueStart, h.valueEnd, h.type, true);
  }

  /** Fails unless the whole span was consumed. */
  expectEnd(what: string): void {
    if (this.#pos !== this.#end) {
      this.fail(DecodeErrorCode.BadLength, `${this.#end - this.#pos} unexpected byte(s) after ${what}`);
    }
  }
}

/** The fixed 4-byte header of an ASAP or ENRP message. */
export interface MessageHeader {
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
