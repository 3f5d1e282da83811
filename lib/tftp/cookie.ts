/**
 * TFTP state cookies: what a PE needs to resume a download another PE of the
 * pool started. Layout: 1 version byte, a CBOR map (the state), 32 bytes of
 * HMAC-SHA256 over version + CBOR with the pool's secret. The client treats
 * it as opaque bytes.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { CookieError } from './errors.js';
import { TFTP_MAX_BLOCK_SIZE, TFTP_MAX_TIMEOUT, TFTP_MAX_WINDOW_SIZE, TFTP_MIN_BLOCK_SIZE, TFTP_MIN_WINDOW_SIZE } from '../../protocols/tftp/types.js';

export const COOKIE_VERSION = 1;
const MAC_LENGTH = 32;
/** A cookie is a few dozen bytes; anything near a datagram's size is not one. */
const MAX_COOKIE_LENGTH = 4096;

export interface CookieState {
  /** The path as requested, relative to the root (no leading slash), so any PE of the pool can find it. */
  path: string;
  /** File identity: size in bytes and modification time (whole milliseconds). */
  size: number;
  mtimeMs: number;
  blksize: number;
  windowsize: number;
  /** Negotiated RFC 2349 timeout in seconds; 0 when the client did not ask (the PE's own default applies). */
  timeout: number;
  /** Present when the client asked for the transfer size. */
  tsize?: number;
  /** The absolute (not mod 65536) number of the next block the client needs. */
  next: number;
  /** Blocks between cookies. */
  interval: number;
}

export type CookieSecret = string | Uint8Array;

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

function key(secret: CookieSecret): Buffer {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
}

/**
 * The secret a pool uses when none is configured: derived from the pool
 * handle, so PEs of a zero-config pool accept each other's cookies. Anyone
 * who knows the handle can forge cookies with it; set a real secret.
 */
export function defaultCookieSecret(handle: string | Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('rserpool tftp cookie secret\0').update(typeof handle === 'string' ? Buffer.from(handle, 'latin1') : handle).digest());
}

export function encodeCookie(state: CookieState, secret: CookieSecret): Uint8Array {
  const map: Record<string, string | number> = {
    path: state.path,
    size: state.size,
    mtimeMs: state.mtimeMs,
    blksize: state.blksize,
    windowsize: state.windowsize,
    timeout: state.timeout,
    next: state.next,
    interval: state.interval,
  };
  if (state.tsize !== undefined) map.tsize = state.tsize;
  const body = encoder.encode(map);
  const out = Buffer.allocUnsafe(1 + body.length + MAC_LENGTH);
  out[0] = COOKIE_VERSION;
  body.copy(out, 1);
  const mac = createHmac('sha256', key(secret)).update(out.subarray(0, 1 + body.length)).digest();
  mac.copy(out, 1 + body.length);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Checks the signature, then the shape; throws CookieError ('malformed' or 'bad-signature'). */
export function verifyCookie(bytes: Uint8Array, secret: CookieSecret): CookieState {
  if (bytes.length < 1 + 1 + MAC_LENGTH) throw new CookieError('malformed', `${bytes.length} bytes is too short for a cookie`);
  if (bytes.length > MAX_COOKIE_LENGTH) throw new CookieError('malformed', `${bytes.length} bytes is too long for a cookie`);
  if (bytes[0] !== COOKIE_VERSION) throw new CookieError('malformed', `unknown cookie version ${bytes[0]}`);
  const signed = bytes.subarray(0, bytes.length - MAC_LENGTH);
  const mac = createHmac('sha256', key(secret)).update(signed).digest();
  if (!timingSafeEqual(mac, bytes.subarray(bytes.length - MAC_LENGTH))) throw new CookieError('bad-signature', 'the signature does not match this pool\'s secret');
  let value: unknown;
  try {
    value = decoder.decode(Buffer.from(signed.buffer, signed.byteOffset + 1, signed.length - 1));
  } catch (cause) {
    throw new CookieError('malformed', 'the state is not CBOR', { cause });
  }
  return checkState(value);
}

function checkState(v: unknown): CookieState {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CookieError('malformed', 'the state is not a map');
  const o = v as Record<string, unknown>;
  const int = (name: string, min: number, max: number): number => {
    const n = o[name];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw new CookieError('malformed', `field '${name}' is missing or out of range`);
    return n;
  };
  const path = o.path;
  if (typeof path !== 'string' || path.length === 0) throw new CookieError('malformed', "field 'path' is missing");
  const state: CookieState = {
    path,
    size: int('size', 0, Number.MAX_SAFE_INTEGER),
    mtimeMs: int('mtimeMs', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    blksize: int('blksize', TFTP_MIN_BLOCK_SIZE, TFTP_MAX_BLOCK_SIZE),
    windowsize: int('windowsize', TFTP_MIN_WINDOW_SIZE, TFTP_MAX_WINDOW_SIZE),
    timeout: int('timeout', 0, TFTP_MAX_TIMEOUT),
    next: int('next', 1, Number.MAX_SAFE_INTEGER),
    interval: int('interval', 1, Number.MAX_SAFE_INTEGER),
  };
  if (o.tsize !== undefined) state.tsize = int('tsize', 0, Number.MAX_SAFE_INTEGER);
  return state;
}
