import { DecodeError, DecodeErrorCode, EncodeError } from '../errors.js';
import {
  TFTP_MAX_BLOCK_SIZE,
  TFTP_MAX_PACKET_SIZE,
  TFTP_MAX_TIMEOUT,
  TFTP_MAX_WINDOW_SIZE,
  TFTP_MIN_BLOCK_SIZE,
  TFTP_MIN_TIMEOUT,
  TFTP_MIN_WINDOW_SIZE,
  TFTP_MODES,
  TftpErrorCode,
  TftpOpcode,
} from './types.js';
import type { ParsedTftpOptions, TftpMode, TftpOptionList, TftpPacket } from './types.js';

// ignoreBOM keeps a leading U+FEFF in a filename instead of silently dropping it.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// An error text is for display; a peer's bad encoding must not hide the error code.
const utf8Lenient = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8 = new TextEncoder();

/**
 * True when the datagram starts with a TFTP opcode (0x0001..0x0006). A TFTP
 * PE uses it to tell TFTP from ASAP on the same UDP path: an ASAP header's
 * first byte is the message type (0x01..0x0e, e.g. ASAP_COOKIE 0x0b) and
 * the second its flags, so its first 16 bits are at least 0x0100.
 */
export function isTftpPacket(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0 && bytes[1]! >= TftpOpcode.Rrq && bytes[1]! <= TftpOpcode.Oack;
}

export function decodeTftpPacket(bytes: Uint8Array): TftpPacket {
  if (bytes.length > TFTP_MAX_PACKET_SIZE) {
    throw new DecodeError(DecodeErrorCode.TooLarge, `packet of ${bytes.length} bytes exceeds ${TFTP_MAX_PACKET_SIZE}`, {
      offset: TFTP_MAX_PACKET_SIZE,
    });
  }
  if (bytes.length < 2) throw new DecodeError(DecodeErrorCode.Truncated, 'no room for the opcode', { offset: 0 });
  const opcode = (bytes[0]! << 8) | bytes[1]!;
  switch (opcode) {
    case TftpOpcode.Rrq:
    case TftpOpcode.Wrq: {
      const name = readString(bytes, 2, opcode);
      if (name.end === 2) throw new DecodeError(DecodeErrorCode.BadValue, 'empty filename', { offset: 2, tlvType: opcode });
      let filename: string;
      try {
        filename = utf8Strict.decode(bytes.subarray(2, name.end));
      } catch (cause) {
        throw new DecodeError(DecodeErrorCode.BadValue, 'filename is not UTF-8', { offset: 2, tlvType: opcode, cause });
      }
      const modeStart = name.end + 1;
      const modeEnd = readString(bytes, modeStart, opcode).end;
      const mode = readAscii(bytes, modeStart, modeEnd, opcode).toLowerCase();
      if (!isMode(mode)) throw new DecodeError(DecodeErrorCode.BadValue, `unknown mode '${mode}'`, { offset: modeStart, tlvType: opcode });
      const options = readOptions(bytes, modeEnd + 1, opcode);
      return opcode === TftpOpcode.Rrq ? { opcode: TftpOpcode.Rrq, filename, mode, options } : { opcode: TftpOpcode.Wrq, filename, mode, options };
    }
    case TftpOpcode.Data:
      requireBlockField(bytes, opcode);
      return { opcode: TftpOpcode.Data, block: u16(bytes, 2), data: bytes.subarray(4) };
    case TftpOpcode.Ack:
      requireBlockField(bytes, opcode);
      if (bytes.length > 4) throw new DecodeError(DecodeErrorCode.BadLength, 'bytes after the ACK block number', { offset: 4, tlvType: opcode });
      return { opcode: TftpOpcode.Ack, block: u16(bytes, 2) };
    case TftpOpcode.Error: {
      requireBlockField(bytes, opcode);
      const end = readString(bytes, 4, opcode).end;
      if (end !== bytes.length - 1) {
        throw new DecodeError(DecodeErrorCode.BadLength, 'bytes after the error message', { offset: end + 1, tlvType: opcode });
      }
      return { opcode: TftpOpcode.Error, code: u16(bytes, 2), message: utf8Lenient.decode(bytes.subarray(4, end)) };
    }
    case TftpOpcode.Oack:
      return { opcode: TftpOpcode.Oack, options: readOptions(bytes, 2, opcode) };
    default:
      throw new DecodeError(DecodeErrorCode.UnknownType, `unknown opcode ${opcode}`, { offset: 0, tlvType: opcode });
  }
}

/**
 * What a peer's ERROR packet says, read leniently: the peer ends the transfer
 * either way, so a malformed one still yields its code (when it has one) and
 * says it was malformed.
 */
export function peerError(bytes: Uint8Array): { code: number; message: string } {
  try {
    const p = decodeTftpPacket(bytes);
    if (p.opcode === TftpOpcode.Error) return { code: p.code, message: p.message };
  } catch {
    // Said below.
  }
  return { code: bytes.length >= 4 ? u16(bytes, 2) : TftpErrorCode.NotDefined, message: 'malformed ERROR packet' };
}

/** Encodes a packet; throws EncodeError for values the wire cannot carry (NUL in a string, block > 65535 ...). */
export function encodeTftpPacket(p: TftpPacket): Uint8Array {
  switch (p.opcode) {
    case TftpOpcode.Rrq:
    case TftpOpcode.Wrq: {
      if (p.filename.length === 0) throw new EncodeError('empty filename');
      if (!TFTP_MODES.includes(p.mode)) throw new EncodeError(`unknown mode '${String(p.mode)}'`);
      return assemble(p.opcode, [textField(p.filename, 'filename'), asciiField(p.mode, 'mode'), ...optionFields(p.options)]);
    }
    case TftpOpcode.Data: {
      if (p.data.length > TFTP_MAX_BLOCK_SIZE) throw new EncodeError(`DATA block of ${p.data.length} bytes exceeds ${TFTP_MAX_BLOCK_SIZE}`);
      const out = new Uint8Array(4 + p.data.length);
      writeHeader(out, p.opcode, checkU16(p.block, 'block'));
      out.set(p.data, 4);
      return out;
    }
    case TftpOpcode.Ack: {
      const out = new Uint8Array(4);
      writeHeader(out, p.opcode, checkU16(p.block, 'block'));
      return out;
    }
    case TftpOpcode.Error:
      return assemble(p.opcode, [textField(p.message, 'error message')], checkU16(p.code, 'error code'));
    case TftpOpcode.Oack:
      return assemble(p.opcode, optionFields(p.options));
    default: {
      const never: never = p;
      throw new EncodeError(`unknown opcode ${String((never as { opcode: unknown }).opcode)}`);
    }
  }
}

/**
 * Types and range-checks the options RFC 2348, 2349 and 7440 define. Names
 * are matched case-insensitively; the first occurrence of a known option
 * counts, a repeat is rejected as 'duplicate'.
 */
export function parseTftpOptions(options: TftpOptionList): ParsedTftpOptions {
  const out: ParsedTftpOptions = { other: [], rejected: [] };
  const seen = new Set<string>();
  for (const [rawName, value] of options) {
    const name = rawName.toLowerCase();
    const range = KNOWN_OPTIONS.get(name);
    if (range === undefined) {
      out.other.push([name, value]);
      continue;
    }
    if (seen.has(name)) {
      out.rejected.push({ name, value, problem: 'duplicate' });
      continue;
    }
    seen.add(name);
    // Plain decimal digits only: no sign, space, exponent or hex that Number() would take.
    if (!/^[0-9]+$/.test(value)) {
      out.rejected.push({ name, value, problem: 'not-a-number' });
      continue;
    }
    const n = Number(value);
    if (n < range[0] || n > range[1]) {
      out.rejected.push({ name, value, problem: 'out-of-range' });
      continue;
    }
    out[range[2]] = n;
  }
  return out;
}

type NumericOption = 'blksize' | 'timeout' | 'tsize' | 'windowsize';
const KNOWN_OPTIONS: ReadonlyMap<string, readonly [min: number, max: number, key: NumericOption]> = new Map([
  ['blksize', [TFTP_MIN_BLOCK_SIZE, TFTP_MAX_BLOCK_SIZE, 'blksize']],
  ['timeout', [TFTP_MIN_TIMEOUT, TFTP_MAX_TIMEOUT, 'timeout']],
  ['tsize', [0, Number.MAX_SAFE_INTEGER, 'tsize']],
  ['windowsize', [TFTP_MIN_WINDOW_SIZE, TFTP_MAX_WINDOW_SIZE, 'windowsize']],
] as const);

function isMode(s: string): s is TftpMode {
  return (TFTP_MODES as readonly string[]).includes(s);
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

/** DATA, ACK and ERROR carry a 16-bit block number or error code at offset 2. */
function requireBlockField(bytes: Uint8Array, opcode: number): void {
  if (bytes.length < 4) throw new DecodeError(DecodeErrorCode.Truncated, 'no room for the 16-bit field after the opcode', { offset: 2, tlvType: opcode });
}

/** Finds the NUL ending the string at `start`; the fault offset of an unterminated string is its start. */
function readString(bytes: Uint8Array, start: number, opcode: number): { end: number } {
  const end = bytes.indexOf(0, start);
  if (end < 0) throw new DecodeError(DecodeErrorCode.Truncated, 'string without its terminating NUL', { offset: start, tlvType: opcode });
  return { end };
}

function readAscii(bytes: Uint8Array, start: number, end: number, opcode: number): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b > 0x7f) throw new DecodeError(DecodeErrorCode.BadValue, `non-ASCII byte 0x${b.toString(16)}`, { offset: i, tlvType: opcode });
    s += String.fromCharCode(b);
  }
  return s;
}

function readOptions(bytes: Uint8Array, start: number, opcode: number): Array<[string, string]> {
  const options: Array<[string, string]> = [];
  let pos = start;
  while (pos < bytes.length) {
    const nameEnd = readString(bytes, pos, opcode).end;
    if (nameEnd === pos) throw new DecodeError(DecodeErrorCode.BadValue, 'empty option name', { offset: pos, tlvType: opcode });
    const name = readAscii(bytes, pos, nameEnd, opcode).toLowerCase();
    const valueStart = nameEnd + 1;
    if (valueStart >= bytes.length) {
      throw new DecodeError(DecodeErrorCode.Truncated, `option '${name}' without a value`, { offset: valueStart, tlvType: opcode });
    }
    const valueEnd = readString(bytes, valueStart, opcode).end;
    options.push([name, readAscii(bytes, valueStart, valueEnd, opcode)]);
    pos = valueEnd + 1;
  }
  return options;
}

function checkU16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new EncodeError(`${what} ${n} is not a 16-bit unsigned integer`);
  return n;
}

function textField(s: string, what: string): Uint8Array {
  // With the u flag a surrogate pair is one code point, so this matches only lone halves.
  if (/\p{Cs}/u.test(s)) throw new EncodeError(`${what} holds a lone surrogate`);
  const b = utf8.encode(s);
  if (b.includes(0)) throw new EncodeError(`${what} holds a NUL`);
  return b;
}

function asciiField(s: string, what: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7f) throw new EncodeError(`${what} '${s}' is not NUL-free ASCII`);
    b[i] = c;
  }
  return b;
}

function optionFields(options: TftpOptionList): Uint8Array[] {
  const fields: Uint8Array[] = [];
  for (const [name, value] of options) {
    if (name.length === 0) throw new EncodeError('empty option name');
    fields.push(asciiField(name, 'option name'), asciiField(value, 'option value'));
  }
  return fields;
}

function writeHeader(out: Uint8Array, opcode: number, second?: number): void {
  out[0] = opcode >> 8;
  out[1] = opcode & 0xff;
  if (second !== undefined) {
    out[2] = second >> 8;
    out[3] = second & 0xff;
  }
}

/** Opcode, optional 16-bit field, then NUL-terminated strings. */
function assemble(opcode: number, strings: Uint8Array[], second?: number): Uint8Array {
  let length = second === undefined ? 2 : 4;
  for (const s of strings) length += s.length + 1;
  if (length > TFTP_MAX_PACKET_SIZE) throw new EncodeError(`packet of ${length} bytes exceeds ${TFTP_MAX_PACKET_SIZE}`);
  const out = new Uint8Array(length);
  writeHeader(out, opcode, second);
  let pos = second === undefined ? 2 : 4;
  for (const s of strings) {
    out.set(s, pos);
    pos += s.length + 1;
  }
  return out;
}
