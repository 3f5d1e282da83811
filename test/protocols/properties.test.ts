import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/index.js';
import { DecodeError } from '../../protocols/errors.js';
import { StreamFramer } from '../../protocols/framing.js';
import { decodeParameter, encodeParameter, ipAddressFromBytes, ipAddressToBytes } from '../../protocols/parameters/index.js';
import { asapMessage, enrpMessage, ipAddress, operationError, poolElement, policy, serverInformation, transport } from './arbitraries.js';

const NUM_RUNS = 500;

/** Decoding returns a value or throws DecodeError; anything else (RangeError, TypeError...) fails the property. */
function decodesOrRefuses(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    expect(err.offset).toBeGreaterThanOrEqual(0);
    expect(err.offset).toBeLessThanOrEqual(bytes.length);
  }
}

/** Flip, overwrite, insert, delete or truncate bytes of a valid encoding. */
const mutated = (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('set', 'insert', 'delete', 'truncate')), { minLength: 1, maxLength: 4 }))
    .map(([b, edits]) => {
      let out = Array.from(b);
      for (const [pos, value, op] of edits) {
        const at = out.length === 0 ? 0 : pos % out.length;
        if (op === 'set') out[at] = value;
        else if (op === 'insert') out.splice(at, 0, value);
        else if (op === 'delete') out.splice(at, 1);
        else out = out.slice(0, at);
      }
      return Uint8Array.from(out);
    });

describe('properties - round trips', () => {
  it('any ASAP message survives encode then decode unchanged', () => {
    fc.assert(
      fc.property(asapMessage, (m) => {
        const bytes = encodeAsapMessage(m);
        expect(bytes.length % 4).toBe(0);
        expect((bytes[2]! << 8) | bytes[3]!).toBe(bytes.length);
        expect(decodeAsapMessage(bytes)).toEqual(m);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('any ENRP message survives encode then decode unchanged', () => {
    fc.assert(
      fc.property(enrpMessage, (m) => {
        const bytes = encodeEnrpMessage(m);
        expect(bytes.length % 4).toBe(0);
        expect(decodeEnrpMessage(bytes)).toEqual(m);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('any parameter survives encode then decode unchanged', () => {
    const param = fc.oneof(
      ipAddress.map((address) => ({ kind: 'address' as const, address })),
      transport.map((t) => ({ kind: 'transport' as const, transport: t })),
      policy.map((p) => ({ kind: 'policy' as const, policy: p })),
      poolElement.map((element) => ({ kind: 'element' as const, element })),
      serverInformation.map((server) => ({ kind: 'server' as const, server })),
      operationError.map((causes) => ({ kind: 'error' as const, causes })),
    );
    fc.assert(
      fc.property(param, (p) => {
        expect(decodeParameter(encodeParameter(p))).toEqual(p);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('canonical IP address text survives text -> bytes -> text', () => {
    fc.assert(
      fc.property(ipAddress, (a) => {
        expect(ipAddressFromBytes(ipAddressToBytes(a))).toBe(a);
      }),
    );
  });
});

describe('properties - hostile input', () => {
  it('arbitrary bytes decode to a message or a DecodeError, never anything else', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // A plausible header makes the decoder reach the parameters.
      fc.tuple(fc.nat({ max: 16 }), fc.uint8Array({ maxLength: 80 })).map(([t, rest]) => {
        const len = rest.length + 4;
        return Uint8Array.from([t, 0, len >> 8, len & 0xff, ...rest]);
      }),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        decodesOrRefuses(decodeAsapMessage, b);
        decodesOrRefuses(decodeEnrpMessage, b);
        decodesOrRefuses(decodeParameter, b);
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid encodings decode to a message or a DecodeError, never anything else', () => {
    fc.assert(
      fc.property(mutated(asapMessage.map(encodeAsapMessage)), (b) => {
        decodesOrRefuses(decodeAsapMessage, b);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(mutated(enrpMessage.map(encodeEnrpMessage)), (b) => {
        decodesOrRefuses(decodeEnrpMessage, b);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('properties - stream framing', () => {
  it('any chunking of a stream of valid messages yields the same frames', () => {
    const stream = fc.array(fc.oneof(asapMessage.map(encodeAsapMessage), enrpMessage.map(encodeEnrpMessage)), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 10 }), (messages, cutsRaw) => {
        const all = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
        let at = 0;
        for (const m of messages) {
          all.set(m, at);
          at += m.length;
        }
        const cuts = [...new Set(cutsRaw.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const framer = new StreamFramer();
        const frames: Uint8Array[] = [];
        let prev = 0;
        for (const c of [...cuts, all.length]) {
          frames.push(...framer.push(all.subarray(prev, c)));
          prev = c;
        }
        expect(frames.map((f) => Array.from(f))).toEqual(messages.map((m) => Array.from(m)));
        expect(framer.buffered).toBe(0);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
