import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../protocols/errors.js';
import { StreamFramer, paddedLength } from '../../protocols/framing.js';
import { fromHex, toHex } from './hex.js';

const RESOLUTION = '0500001800090011536372697074696e67506f6f6c000000'; // 24 bytes, length counts padding
const UNPADDED = '0500000d00090009506f6f6c35000000'; // length 13, 16 bytes on the wire

describe('StreamFramer', () => {
  it('returns nothing until a whole message is there, then the message', () => {
    const f = new StreamFramer();
    const bytes = fromHex(RESOLUTION);
    expect(f.push(bytes.subarray(0, 3))).toEqual([]);
    expect(f.push(bytes.subarray(3, 20))).toEqual([]);
    expect(f.buffered).toBe(20);
    const out = f.push(bytes.subarray(20));
    expect(out.map(toHex)).toEqual([RESOLUTION]);
    expect(f.buffered).toBe(0);
  });

  it('splits back-to-back messages, padding a length that stops before it', () => {
    const f = new StreamFramer();
    expect(f.push(fromHex(UNPADDED + RESOLUTION + UNPADDED)).map(toHex)).toEqual([UNPADDED, RESOLUTION, UNPADDED]);
  });

  it('refuses a length below the header and stays failed', () => {
    const f = new StreamFramer();
    expect(() => f.push(fromHex('05000002'))).toThrow(DecodeError);
    try {
      f.push(fromHex(RESOLUTION));
      expect.unreachable();
    } catch (err) {
      expect((err as DecodeError).code).toBe('BAD_LENGTH');
      expect((err as DecodeError).offset).toBe(2);
    }
  });

  it('refuses a message above the limit before buffering it', () => {
    const f = new StreamFramer({ maxMessageSize: 16 });
    try {
      f.push(fromHex('05000018'));
      expect.unreachable();
    } catch (err) {
      expect((err as DecodeError).code).toBe('TOO_LARGE');
    }
  });

  it('pads lengths to 4 bytes', () => {
    expect([4, 5, 6, 7, 8].map(paddedLength)).toEqual([4, 8, 8, 8, 8]);
  });
});
