import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode } from 'cbor-x';
import {
  COOKIE_VERSION,
  COOKIE_VERSION_EXTENDED,
  deriveCookieKey,
  encodeCookie,
  randomCookieSecret,
  verifyCookie,
  type CookieState,
} from '../../lib/tftp/server/cookie.js';
import { CookieError } from '../../lib/tftp/server/errors.js';
import { COOKIE_ERROR_PREFIX } from '../../lib/tftp/contract.js';
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

const NOW = Date.UTC(2026, 0, 1);
const seal = { address: '192.0.2.7', now: NOW, lifetimeMs: 600_000 };
const open = { address: '192.0.2.7', now: NOW + 1000 };
const issued = { address: '192.0.2.7', issuedAt: NOW, expiresAt: NOW + 600_000 };

function refusal(f: () => unknown): CookieError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CookieError);
    return err as CookieError;
  }
  throw new Error('no error thrown');
}

/** A correctly sealed cookie around an arbitrary plaintext, to reach the shape checks behind the AEAD. */
function sealed(plain: Uint8Array, secret: string, next = 5n, version = COOKIE_VERSION): Uint8Array {
  const head = Buffer.alloc(9);
  head[0] = version;
  head.writeBigUInt64BE(next, 1);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', deriveCookieKey(secret).aead, nonce);
  c.setAAD(head);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([head, nonce, body, c.getAuthTag()]);
}

const fields = { ...state, addr: '192.0.2.7', iat: NOW, exp: NOW + 600_000 };

describe('state cookies', () => {
  it('round-trips the state with its address and times, absolute block numbers past 65535 included, in about 180 bytes', () => {
    const c = encodeCookie(state, 'pool secret', seal);
    expect(c[0]).toBe(COOKIE_VERSION);
    expect(c.length).toBeLessThan(200);
    expect(verifyCookie(c, 'pool secret', open)).toEqual({ ...state, ...issued });
    const { tsize: _omit, ...noTsize } = state;
    const key = deriveCookieKey(new TextEncoder().encode('k'));
    expect(verifyCookie(encodeCookie(noTsize, key, seal), key, open)).toEqual({ ...noTsize, ...issued });
  });

  it('seals the state: two cookies for the same state differ, and neither shows the path', () => {
    const a = Buffer.from(encodeCookie(state, 'pool secret', seal));
    const b = Buffer.from(encodeCookie(state, 'pool secret', seal));
    expect(a.equals(b)).toBe(false);
    expect(a.includes(Buffer.from(state.path))).toBe(false);
  });

  it('refuses a cookie sealed with another secret, or with any bit flipped', () => {
    const c = encodeCookie(state, 'pool secret', seal);
    expect(refusal(() => verifyCookie(c, 'other pool', open)).reason).toBe('bad-signature');
    for (const at of [1, 8, 10, 25, c.length - 1]) {
      const bad = Uint8Array.from(c);
      bad[at]! ^= 0x01;
      expect(refusal(() => verifyCookie(bad, 'pool secret', open)).reason).toBe('bad-signature');
    }
  });

  it('refuses a cookie at or after its expiry, and one echoed from another address', () => {
    const c = encodeCookie(state, 's', seal);
    expect(verifyCookie(c, 's', { ...open, now: NOW + 599_999 }).next).toBe(70_001);
    expect(refusal(() => verifyCookie(c, 's', { ...open, now: NOW + 600_000 })).reason).toBe('expired');
    const e = refusal(() => verifyCookie(c, 's', { ...open, address: '192.0.2.8' }));
    expect(e.reason).toBe('address');
    expect(e.message).not.toMatch(/192\.0\.2\.7/);
  });

  it('takes an IPv4 client seen on a dual-stack socket as the same address', () => {
    const c = encodeCookie(state, 's', { ...seal, address: '::ffff:192.0.2.7' });
    expect(verifyCookie(c, 's', open).address).toBe('192.0.2.7');
    const v6 = encodeCookie(state, 's', { ...seal, address: '2001:DB8::1' });
    expect(verifyCookie(v6, 's', { ...open, address: '2001:db8::1' }).next).toBe(70_001);
  });

  it('refuses garbage, a short cookie and an unknown version (the HMAC-signed version 1 included) as malformed', () => {
    expect(refusal(() => verifyCookie(new Uint8Array(0), 's', open)).reason).toBe('malformed');
    expect(refusal(() => verifyCookie(new Uint8Array(20), 's', open)).reason).toBe('malformed');
    const c = Uint8Array.from(encodeCookie(state, 's', seal));
    c[0] = 1;
    const e = refusal(() => verifyCookie(c, 's', open));
    expect(e.reason).toBe('malformed');
    expect(e.message.startsWith(COOKIE_ERROR_PREFIX)).toBe(true);
    expect(refusal(() => verifyCookie(new Uint8Array(5000), 's', open)).reason).toBe('malformed');
  });

  it('checks the shape of a correctly sealed state', () => {
    expect(verifyCookie(sealed(encode(fields), 's'), 's', open).next).toBe(5);
    expect(refusal(() => verifyCookie(sealed(encode([1, 2, 3]), 's'), 's', open)).reason).toBe('malformed');
    expect(refusal(() => verifyCookie(sealed(encode({ ...fields, blksize: 7 }), 's'), 's', open)).message).toMatch(/blksize/);
    expect(refusal(() => verifyCookie(sealed(encode(fields), 's', 0n), 's', open)).message).toMatch(/next/);
    expect(refusal(() => verifyCookie(sealed(encode(fields), 's', 2n ** 60n), 's', open)).message).toMatch(/next/);
    expect(refusal(() => verifyCookie(sealed(encode({ ...fields, path: '' }), 's'), 's', open)).message).toMatch(/path/);
    expect(refusal(() => verifyCookie(sealed(encode({ ...fields, size: 1.5 }), 's'), 's', open)).message).toMatch(/size/);
    expect(refusal(() => verifyCookie(sealed(encode({ ...fields, addr: undefined }), 's'), 's', open)).message).toMatch(/addr/);
    expect(refusal(() => verifyCookie(sealed(encode({ ...fields, exp: 'soon' }), 's'), 's', open)).message).toMatch(/exp/);
    expect(refusal(() => verifyCookie(sealed(Buffer.from([0xff, 0xff, 0x1c]), 's'), 's', open)).reason).toBe('malformed');
  });

  it('never throws anything but a CookieError, whatever the bytes', () => {
    const key = deriveCookieKey('s');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, v2) => {
        if (v2 && bytes.length > 0) bytes[0] = COOKIE_VERSION;
        try {
          verifyCookie(bytes, key, open);
          return false;
        } catch (err) {
          return err instanceof CookieError && err instanceof RSerPoolError;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('carries a netascii download and an upload (its temporary file tag) as version 3; version 2 stays for octet downloads', () => {
    const text: CookieState = { ...state, netascii: true };
    const t = encodeCookie(text, 's', seal);
    expect(t[0]).toBe(COOKIE_VERSION_EXTENDED);
    expect(verifyCookie(t, 's', open)).toEqual({ ...text, ...issued });
    const up: CookieState = {
      path: 'uploads/big.bin',
      size: 0,
      mtimeMs: 0,
      blksize: 1468,
      windowsize: 16,
      timeout: 0,
      tsize: 100_000_000,
      next: 2858,
      interval: 256,
      upload: '4242-0123456789ab',
    };
    const u = encodeCookie(up, 's', seal);
    expect(u[0]).toBe(COOKIE_VERSION_EXTENDED);
    expect(verifyCookie(u, 's', open)).toEqual({ ...up, ...issued });
    expect(Buffer.from(u).includes(Buffer.from(up.upload!))).toBe(false);
    expect(encodeCookie(state, 's', seal)[0]).toBe(COOKIE_VERSION);
  });

  it('refuses an upload cookie tampered with (a version 2 PE would misread it), echoed by another client, expired, or naming no upload tag', () => {
    const up: CookieState = {
      path: 'uploads/big.bin',
      size: 0,
      mtimeMs: 0,
      blksize: 1468,
      windowsize: 16,
      timeout: 0,
      next: 2858,
      interval: 256,
      upload: '4242-0123456789ab',
    };
    const u = encodeCookie(up, 's', seal);
    const downgraded = Uint8Array.from(u);
    downgraded[0] = COOKIE_VERSION;
    expect(refusal(() => verifyCookie(downgraded, 's', open)).reason).toBe('bad-signature');
    const later = Uint8Array.from(u);
    later[8]! ^= 0x10;
    expect(refusal(() => verifyCookie(later, 's', open)).reason).toBe('bad-signature');
    expect(refusal(() => verifyCookie(u, 's', { ...open, address: '192.0.2.8' })).reason).toBe('address');
    expect(refusal(() => verifyCookie(u, 's', { ...open, now: NOW + 600_000 })).reason).toBe('expired');
    const v3 = (extra: Record<string, unknown>) => sealed(encode({ ...fields, ...extra }), 's', 5n, COOKIE_VERSION_EXTENDED);
    expect(verifyCookie(v3({ upload: '1-00000000000a' }), 's', open).upload).toBe('1-00000000000a');
    // The tag becomes part of a file name: never a path, never another shape.
    for (const tag of ['../../etc/passwd', 'x/../../y', '1-0123', '', 7, '1-0123456789AB'])
      expect(refusal(() => verifyCookie(v3({ upload: tag }), 's', open)).message).toMatch(/upload/);
    expect(refusal(() => verifyCookie(v3({ netascii: 2 }), 's', open)).message).toMatch(/netascii/);
    expect(refusal(() => verifyCookie(v3({}), 's', open)).reason).toBe('malformed');
    expect(refusal(() => verifyCookie(v3({ netascii: 1, upload: '1-00000000000a' }), 's', open)).reason).toBe('malformed');
    // Version 2 knows neither field: a PE ignores them there.
    expect(verifyCookie(sealed(encode({ ...fields, upload: '../x', netascii: 1 }), 's'), 's', open)).not.toHaveProperty('upload');
  });

  it('random secrets differ, and an empty secret is no secret', () => {
    const a = randomCookieSecret();
    expect(a.length).toBe(32);
    expect(Buffer.from(a).equals(Buffer.from(randomCookieSecret()))).toBe(false);
    expect(refusal(() => verifyCookie(encodeCookie(state, a, seal), randomCookieSecret(), open)).reason).toBe('bad-signature');
    expect(() => deriveCookieKey('')).toThrow(RangeError);
  });
});
