import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode } from 'cbor-x';
import { COOKIE_VERSION, defaultCookieSecret, encodeCookie, verifyCookie, type CookieState } from '../../lib/tftp/cookie.js';
import { CookieError } from '../../lib/tftp/errors.js';
import { COOKIE_ERROR_PREFIX } from '../../lib/tftp/constants.js';
import { RSerPoolError } from '../../lib/errors.js';

const state: CookieState = {
  path: 'images/boot.img',
  size: 33_554_433,
  mtimeMs: 1_700_000_000_123,
  blksize: 1468,
  windowsize: 8,
  timeout: 2,
  tsize: 33_554_433,
  next: 70_001,
  interval: 256,
};

function refusal(f: () => unknown): CookieError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CookieError);
    return err as CookieError;
  }
  throw new Error('no error thrown');
}

/** A correctly signed cookie around an arbitrary body, to reach the shape checks behind the HMAC. */
function signed(body: Uint8Array, secret: string): Uint8Array {
  const head = Buffer.concat([Buffer.from([COOKIE_VERSION]), body]);
  return Buffer.concat([head, createHmac('sha256', secret).update(head).digest()]);
}

describe('state cookies', () => {
  it('round-trips the state, absolute block numbers past 65535 included', () => {
    const c = encodeCookie(state, 'pool secret');
    expect(c[0]).toBe(COOKIE_VERSION);
    expect(verifyCookie(c, 'pool secret')).toEqual(state);
    const { tsize: _omit, ...noTsize } = state;
    expect(verifyCookie(encodeCookie(noTsize, new TextEncoder().encode('k')), new TextEncoder().encode('k'))).toEqual(noTsize);
  });

  it('refuses a cookie signed with another secret, or with any bit flipped', () => {
    const c = encodeCookie(state, 'pool secret');
    expect(refusal(() => verifyCookie(c, 'other pool')).reason).toBe('bad-signature');
    for (const at of [1, 10, c.length - 1]) {
      const bad = Uint8Array.from(c);
      bad[at]! ^= 0x01;
      expect(refusal(() => verifyCookie(bad, 'pool secret')).reason).toBe('bad-signature');
    }
  });

  it('refuses garbage, a short cookie and an unknown version as malformed', () => {
    expect(refusal(() => verifyCookie(new Uint8Array(0), 's')).reason).toBe('malformed');
    expect(refusal(() => verifyCookie(new Uint8Array(20), 's')).reason).toBe('malformed');
    const c = Uint8Array.from(encodeCookie(state, 's'));
    c[0] = 2;
    const e = refusal(() => verifyCookie(c, 's'));
    expect(e.reason).toBe('malformed');
    expect(e.message.startsWith(COOKIE_ERROR_PREFIX)).toBe(true);
    expect(refusal(() => verifyCookie(new Uint8Array(5000), 's')).reason).toBe('malformed');
  });

  it('checks the shape of a correctly signed state', () => {
    expect(refusal(() => verifyCookie(signed(encode([1, 2, 3]), 's'), 's')).reason).toBe('malformed');
    expect(refusal(() => verifyCookie(signed(encode({ ...state, blksize: 7 }), 's'), 's')).message).toMatch(/blksize/);
    expect(refusal(() => verifyCookie(signed(encode({ ...state, next: 0 }), 's'), 's')).message).toMatch(/next/);
    expect(refusal(() => verifyCookie(signed(encode({ ...state, path: '' }), 's'), 's')).message).toMatch(/path/);
    expect(refusal(() => verifyCookie(signed(encode({ ...state, size: 1.5 }), 's'), 's')).message).toMatch(/size/);
    expect(refusal(() => verifyCookie(signed(Buffer.from([0xff, 0xff, 0x1c]), 's'), 's')).reason).toBe('malformed');
  });

  it('never throws anything but a CookieError, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          verifyCookie(bytes, 's');
          return false;
        } catch (err) {
          return err instanceof CookieError && err instanceof RSerPoolError;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('derives a default secret from the pool handle: same handle, same secret', () => {
    expect(Buffer.from(defaultCookieSecret('files'))).toEqual(Buffer.from(defaultCookieSecret('files')));
    expect(Buffer.from(defaultCookieSecret('files'))).not.toEqual(Buffer.from(defaultCookieSecret('images')));
    const c = encodeCookie(state, defaultCookieSecret('files'));
    expect(verifyCookie(c, defaultCookieSecret('files')).next).toBe(70_001);
    expect(refusal(() => verifyCookie(c, defaultCookieSecret('images'))).reason).toBe('bad-signature');
  });
});
