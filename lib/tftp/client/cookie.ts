/**
 * The client treats a state cookie as opaque, except for its next block: it
 * keeps the cookie with the highest one and, on failover, knows where the
 * next PE resumes. Layout (server/cookie.ts, versions 2 and 3): 1 version
 * byte, the next block as a u64 in clear, then nonce, sealed state and tag.
 * Nothing here is trusted: the PE opens and checks the cookie.
 */
const VERSIONS: ReadonlySet<number> = new Set([2, 3]);
/** Version, next block, nonce, tag and at least one byte of sealed state. */
const MIN_LENGTH = 1 + 8 + 12 + 16 + 1;

/** The cookie's `next` block, or undefined when the bytes do not read as a cookie. */
export function peekCookieNext(cookie: Uint8Array): number | undefined {
  if (cookie.length < MIN_LENGTH || !VERSIONS.has(cookie[0]!)) return undefined;
  const next = new DataView(cookie.buffer, cookie.byteOffset, cookie.byteLength).getBigUint64(1);
  return next >= 1n && next <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(next) : undefined;
}
