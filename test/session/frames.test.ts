import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DecodeError } from '../../protocols/errors.js';
import { StreamFramer } from '../../protocols/framing.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { MAX_CHUNK_SIZE, Reassembler, decodeSessionFrame, encodeDataFrames, encodeHeartbeat } from '../../lib/session/frames.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('session frames', () => {
  it.each([
    { name: 'empty message', message: new Uint8Array(0), hex: ['d0000004'] },
    { name: 'three bytes, padded', message: new Uint8Array([1, 2, 3]), hex: ['d000000701020300'] },
  ])('encodes $name', ({ message, hex: want }) => {
    expect(encodeDataFrames(message).map(hex)).toEqual(want);
  });

  it('encodes a heartbeat and its ack with the nonce', () => {
    expect(hex(encodeHeartbeat(0x01020304))).toBe('d100000801020304');
    expect(hex(encodeHeartbeat(7, true))).toBe('d200000800000007');
    expect(decodeSessionFrame(encodeHeartbeat(9, true))).toEqual({ kind: 'heartbeat-ack', nonce: 9 });
  });

  it('cuts a message into MORE-flagged chunks that the ASAP stream framer splits and the reassembler joins', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 * 4_000 }), fc.integer({ min: 1, max: 4_000 }), fc.integer({ min: 1, max: 5_000 }), (n, chunk, cut) => {
        const msg = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
        const stream = Buffer.concat(encodeDataFrames(msg, chunk));
        const framer = new StreamFramer();
        const r = new Reassembler(1 << 20);
        const out: Uint8Array[] = [];
        for (let at = 0; at < stream.length; at += cut) {
          for (const f of framer.push(stream.subarray(at, at + cut))) {
            const d = decodeSessionFrame(f);
            if (d.kind !== 'data') throw new Error('not data');
            const whole = r.push(d.chunk, d.more);
            if (whole) out.push(whole);
          }
        }
        expect(out.length).toBe(1);
        expect(hex(out[0]!)).toBe(hex(msg));
      }),
      { numRuns: 200 },
    );
  });

  it('keeps each frame within the 16-bit length of the ASAP header', () => {
    const frames = encodeDataFrames(new Uint8Array(MAX_CHUNK_SIZE * 2 + 5));
    expect(frames.map((f) => f.length)).toEqual([MAX_CHUNK_SIZE + 4, MAX_CHUNK_SIZE + 4, 12]);
    expect(frames.map((f) => f[1])).toEqual([1, 1, 0]);
  });

  it('passes ASAP messages through byte-exact', () => {
    const bytes = encodeAsapMessage({ type: AsapMessageType.Cookie, cookie: new Uint8Array([9, 8, 7]) });
    const f = decodeSessionFrame(bytes);
    expect(f.kind).toBe('asap');
    if (f.kind === 'asap' && f.message.type === AsapMessageType.Cookie) expect([...f.message.cookie]).toEqual([9, 8, 7]);
  });

  it.each([
    { hex: 'd000', code: 'TRUNCATED' },
    { hex: 'd0000003', code: 'BAD_LENGTH' },
    { hex: 'd000000901020300', code: 'BAD_LENGTH' },
    { hex: 'd000000501000100', code: 'BAD_PADDING' },
    { hex: 'd0800004', code: 'BAD_VALUE' },
    { hex: 'd1000004', code: 'BAD_LENGTH' },
    { hex: '77000004', code: 'UNKNOWN_TYPE' },
  ])('refuses $hex with $code', ({ hex: h, code }) => {
    let err: unknown;
    try {
      decodeSessionFrame(Buffer.from(h, 'hex'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe(code);
  });

  it('arbitrary bytes decode to a frame or a DecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeSessionFrame(b);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
    );
  });

  it('refuses a reassembled message above the limit before buffering it', () => {
    const r = new Reassembler(10);
    expect(r.push(new Uint8Array(6), true)).toBeUndefined();
    expect(() => r.push(new Uint8Array(6), false)).toThrow(DecodeError);
  });
});
