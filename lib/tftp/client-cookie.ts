/**
 * The client treats a state cookie as opaque, except for its next block: it
 * keeps the cookie with the highest one and, on failover, knows where the
 * next PE resumes. Layout (cookie.ts): 1 version byte, a CBOR map, 32 bytes
 * of HMAC. Nothing here is trusted: the PE verifies the cookie.
 */
import { Decoder } from 'cbor-x';

const MAC_LENGTH = 32;
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** The cookie's `next` block, or undefined when the bytes do not read as a version 1 cookie. */
export function peekCookieNext(cookie: Uint8Array): number | undefined {
  if (cookie.length < 2 + MAC_LENGTH || cookie[0] !== 1) return undefined;
  try {
    const state: unknown = decoder.decode(Buffer.from(cookie.buffer, cookie.byteOffset + 1, cookie.length - 1 - MAC_LENGTH));
    const next = typeof state === 'object' && state !== null ? (state as { next?: unknown }).next : undefined;
    return typeof next === 'number' && Number.isSafeInteger(next) && next >= 1 ? next : undefined;
  } catch {
    return undefined;
  }
}
