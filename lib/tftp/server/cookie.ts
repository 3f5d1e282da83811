/**
 * TFTP state cookies: what a PE needs to resume a transfer another PE of the
 * pool started. Layout (versions 2 and 3):
 *
 *   version (1) | next block (u64 BE) | nonce (12) | AES-256-GCM(CBOR state) | tag (16)
 *
 * Version 2 resumes an octet download; version 3 also a netascii download or
 * an upload, so a PE that knows only version 2 refuses those rather than
 * resuming them as an octet download.
 *
 * The state is sealed: only PEs holding the pool's secret read it, and any
 * altered byte is refused. `next` stays in clear, authenticated as associated
 * data, because the client keeps the cookie with the highest one. The state
 * binds the cookie to the client address it was issued to and carries an
 * issue and an expiry time, so a captured cookie neither replays from
 * elsewhere nor lives for ever.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { CookieError } from './errors.js';
import { UPLOAD_TAG } from './files.js';
import { TFTP_MAX_BLOCK_SIZE, TFTP_MAX_TIMEOUT, TFTP_MAX_WINDOW_SIZE, TFTP_MIN_BLOCK_SIZE, TFTP_MIN_WINDOW_SIZE } from '../../../protocols/tftp/types.js';

export const COOKIE_VERSION = 2;
/** Cookies of a netascii download or an upload. */
export const COOKIE_VERSION_EXTENDED = 3;
const COOKIE_NEXT_OFFSET = 1;
const NONCE_OFFSET = COOKIE_NEXT_OFFSET + 8;
const NONCE_LENGTH = 12;
const SEALED_OFFSET = NONCE_OFFSET + NONCE_LENGTH;
const TAG_LENGTH = 16;
/** Header, nonce and tag around the sealed state. */
const COOKIE_OVERHEAD = SEALED_OFFSET + TAG_LENGTH;
/** A cookie is a couple of hundred bytes; anything near a datagram's size is not one. */
const MAX_COOKIE_LENGTH = 4096;
/** A cookie lives this long by default: long enough for a failover, short enough that a captured one soon stops working. */
export const DEFAULT_COOKIE_LIFETIME_MS = 10 * 60_000;
/** The shortest secret taken from configuration: a guessable secret lets anyone forge cookies. */
export const MIN_COOKIE_SECRET_BYTES = 16;
const HKDF_INFO = 'rserpool tftp state cookie v2';

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
  /** A netascii download: `next` (and tsize) count blocks of the converted text, which every PE converts alike. */
  netascii?: true;
  /**
   * An upload: the tag of its temporary file next to `path`. `next` is the
   * next block the PE needs; the (next - 1) x blksize bytes before it are
   * written and synced. size and mtimeMs are 0; tsize is what the client
   * declared.
   */
  upload?: string;
}

/** A verified cookie: the state, and to whom and when it was issued. */
export interface OpenedCookie extends CookieState {
  /** The client address the cookie was issued to. */
  address: string;
  /** Wall-clock milliseconds (Date.now() of the issuing PE). */
  issuedAt: number;
  expiresAt: number;
}

export type CookieSecret = string | Uint8Array;

/** The AEAD key derived from a pool's secret; derive it once, not per cookie. */
export interface CookieKey {
  readonly aead: KeyObject;
}

export interface SealOptions {
  /** The client address the cookie is for. */
  address: string;
  /** Wall-clock milliseconds. */
  now: number;
  lifetimeMs: number;
}

export interface OpenOptions {
  /** The address the echo came from. */
  address: string;
  /** Wall-clock milliseconds. */
  now: number;
}

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** HKDF-SHA256 from the secret, so any length or alphabet of secret gives a uniform AES-256 key. */
export function deriveCookieKey(secret: CookieSecret): CookieKey {
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (ikm.length === 0) throw new RangeError('a cookie secret cannot be empty');
  return { aead: createSecretKey(Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), HKDF_INFO, 32))) };
}

/** A fresh secret for a PE that has none configured: its cookies then resume only at that PE. */
export function randomCookieSecret(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

function keyOf(k: CookieKey | CookieSecret): KeyObject {
  return typeof k === 'string' || k instanceof Uint8Array ? deriveCookieKey(k).aead : k.aead;
}

/** One spelling per address, whichever socket family saw it (an IPv4 client on a dual-stack socket is ::ffff:a.b.c.d). */
export function normaliseCookieAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export function encodeCookie(state: CookieState, key: CookieKey | CookieSecret, opts: SealOptions): Uint8Array {
  const map: Record<string, string | number> = {
    path: state.path,
    size: state.size,
    mtimeMs: state.mtimeMs,
    blksize: state.blksize,
    windowsize: state.windowsize,
    timeout: state.timeout,
    interval: state.interval,
    addr: normaliseCookieAddress(opts.address),
    iat: Math.floor(opts.now),
    exp: Math.floor(opts.now + opts.lifetimeMs),
  };
  if (state.tsize !== undefined) map.tsize = state.tsize;
  if (state.netascii) map.netascii = 1;
  if (state.upload !== undefined) map.upload = state.upload;
  const plain = encoder.encode(map);
  const out = Buffer.allocUnsafe(COOKIE_OVERHEAD + plain.length);
  out[0] = state.netascii || state.upload !== undefined ? COOKIE_VERSION_EXTENDED : COOKIE_VERSION;
  out.writeBigUInt64BE(BigInt(state.next), COOKIE_NEXT_OFFSET);
  randomBytes(NONCE_LENGTH).copy(out, NONCE_OFFSET);
  const cipher = createCipheriv('aes-256-gcm', keyOf(key), out.subarray(NONCE_OFFSET, SEALED_OFFSET), { authTagLength: TAG_LENGTH });
  cipher.setAAD(out.subarray(0, NONCE_OFFSET));
  const sealed = cipher.update(plain);
  sealed.copy(out, SEALED_OFFSET);
  // GCM is a stream mode: update() returns every byte, final() none.
  cipher.final();
  cipher.getAuthTag().copy(out, SEALED_OFFSET + plain.length);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Opens the cookie, then checks its shape, its expiry and the client's
 * address; throws CookieError ('malformed', 'bad-signature', 'expired' or
 * 'address').
 */
export function verifyCookie(bytes: Uint8Array, key: CookieKey | CookieSecret, opts: OpenOptions): OpenedCookie {
  if (bytes.length < COOKIE_OVERHEAD + 1) throw new CookieError('malformed', `${bytes.length} bytes is too short for a cookie`);
  if (bytes.length > MAX_COOKIE_LENGTH) throw new CookieError('malformed', `${bytes.length} bytes is too long for a cookie`);
  const version = bytes[0];
  if (version !== COOKIE_VERSION && version !== COOKIE_VERSION_EXTENDED) throw new CookieError('malformed', `unknown cookie version ${version}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(key), b.subarray(NONCE_OFFSET, SEALED_OFFSET), { authTagLength: TAG_LENGTH });
    decipher.setAAD(b.subarray(0, NONCE_OFFSET));
    decipher.setAuthTag(b.subarray(b.length - TAG_LENGTH));
    plain = Buffer.concat([decipher.update(b.subarray(SEALED_OFFSET, b.length - TAG_LENGTH)), decipher.final()]);
  } catch (cause) {
    throw new CookieError('bad-signature', "the cookie does not open with this pool's secret", { cause });
  }
  let value: unknown;
  try {
    value = decoder.decode(plain);
  } catch (cause) {
    throw new CookieError('malformed', 'the state is not CBOR', { cause });
  }
  const opened = checkState(value, b.readBigUInt64BE(COOKIE_NEXT_OFFSET), version === COOKIE_VERSION_EXTENDED);
  if (opts.now >= opened.expiresAt) {
    throw new CookieError('expired', `the cookie expired ${Math.round((opts.now - opened.expiresAt) / 1000)} s ago`);
  }
  if (normaliseCookieAddress(opts.address) !== opened.address) {
    // The address it was issued to stays sealed: the refusal goes to whoever sent the echo.
    throw new CookieError('address', 'the cookie was issued to another client address');
  }
  return opened;
}

/** The state alone, without who and when: what a resumed transfer seals again. */
export function stateOf(opened: OpenedCookie): CookieState {
  const { address: _address, issuedAt: _issuedAt, expiresAt: _expiresAt, ...state } = opened;
  return state;
}

function checkState(v: unknown, next: bigint, extended: boolean): OpenedCookie {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CookieError('malformed', 'the state is not a map');
  const o = v as Record<string, unknown>;
  const int = (name: string, min: number, max: number): number => {
    const n = o[name];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max)
      throw new CookieError('malformed', `field '${name}' is missing or out of range`);
    return n;
  };
  const str = (name: string): string => {
    const s = o[name];
    if (typeof s !== 'string' || s.length === 0) throw new CookieError('malformed', `field '${name}' is missing`);
    return s;
  };
  if (next < 1n || next > BigInt(Number.MAX_SAFE_INTEGER)) throw new CookieError('malformed', "field 'next' is out of range");
  const opened: OpenedCookie = {
    path: str('path'),
    size: int('size', 0, Number.MAX_SAFE_INTEGER),
    mtimeMs: int('mtimeMs', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    blksize: int('blksize', TFTP_MIN_BLOCK_SIZE, TFTP_MAX_BLOCK_SIZE),
    windowsize: int('windowsize', TFTP_MIN_WINDOW_SIZE, TFTP_MAX_WINDOW_SIZE),
    timeout: int('timeout', 0, TFTP_MAX_TIMEOUT),
    next: Number(next),
    interval: int('interval', 1, Number.MAX_SAFE_INTEGER),
    address: str('addr'),
    issuedAt: int('iat', 0, Number.MAX_SAFE_INTEGER),
    expiresAt: int('exp', 0, Number.MAX_SAFE_INTEGER),
  };
  if (o.tsize !== undefined) opened.tsize = int('tsize', 0, Number.MAX_SAFE_INTEGER);
  if (extended) {
    if (o.netascii !== undefined) {
      if (o.netascii !== 1) throw new CookieError('malformed', "field 'netascii' is not 1");
      opened.netascii = true;
    }
    if (o.upload !== undefined) {
      // The tag names a file: only the shape a PE gives it, never a path.
      if (typeof o.upload !== 'string' || !UPLOAD_TAG.test(o.upload)) throw new CookieError('malformed', "field 'upload' is not an upload tag");
      opened.upload = o.upload;
    }
    if ((opened.netascii === true) === (opened.upload !== undefined))
      throw new CookieError('malformed', 'a version 3 cookie is a netascii download or an upload');
  }
  return opened;
}
