import { describe, expect, it } from 'vitest';
import { EncodeError } from '../../protocols/errors.js';
import { encodeAsapMessageInto } from '../../protocols/asap/codec.js';
import { encodeEnrpMessageInto } from '../../protocols/enrp/codec.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/index.js';
import { wireSamples } from '../../protocols/samples.js';

const samples = wireSamples();

describe('encodeAsapMessageInto / encodeEnrpMessageInto', () => {
  it('write the same bytes as the allocating encoders at an offset in a dirty buffer, and return their length', () => {
    let checked = 0;
    for (const s of samples) {
      const bytes = s.bytes;
      const isAsap = s.proto === 'asap';
      const msg = isAsap ? decodeAsapMessage(bytes) : decodeEnrpMessage(bytes);
      const want = isAsap ? encodeAsapMessage(msg as never) : encodeEnrpMessage(msg as never);
      // 0xff everywhere: padding must be written, not assumed zero.
      const target = new Uint8Array(want.length + 10).fill(0xff);
      const n = isAsap ? encodeAsapMessageInto(msg as never, target, 7) : encodeEnrpMessageInto(msg as never, target, 7);
      expect(n).toBe(want.length);
      expect(target.subarray(7, 7 + n)).toEqual(want);
      expect(Array.from(target.subarray(0, 7))).toEqual(new Array(7).fill(0xff));
      expect(Array.from(target.subarray(7 + n))).toEqual(new Array(3).fill(0xff));
      checked++;
    }
    expect(checked).toBeGreaterThan(3);
  });

  it('refuse a target too small, or a bad offset, with EncodeError before writing', () => {
    const s = samples.find((x) => x.proto === 'asap')!;
    const msg = decodeAsapMessage(s.bytes);
    const target = new Uint8Array(s.bytes.length + 1).fill(0xaa);
    expect(() => encodeAsapMessageInto(msg, target, 2)).toThrow(EncodeError);
    expect(() => encodeAsapMessageInto(msg, target, -1)).toThrow(EncodeError);
    expect(() => encodeAsapMessageInto(msg, target, 0.5)).toThrow(EncodeError);
    expect(Array.from(target)).toEqual(new Array(target.length).fill(0xaa));
    expect(encodeAsapMessageInto(msg, target, 1)).toBe(s.bytes.length);
  });
});
