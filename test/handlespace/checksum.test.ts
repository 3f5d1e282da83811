import { describe, expect, it } from 'vitest';
import { finishChecksum, handleWordSum, peChecksumTerm } from '../../lib/handlespace/index.js';

/** RFC 1071 style reference: one's-complement sum of big-endian words of a byte string, complemented. */
function reference(chunks: Uint8Array[]): number {
  let sum = 0;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i += 2) sum += (c[i]! << 8) | (c[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

const idBytes = (id: number) => new Uint8Array([id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]);

describe('checksum', () => {
  it('checksum - sums the handle as big-endian words then the PE identifier', () => {
    const handle = new TextEncoder().encode('ab');
    const term = peChecksumTerm(handleWordSum(handle), 0x00010002);
    expect(term).toBe(0x6162 + 0x0001 + 0x0002);
    expect(finishChecksum(term)).toBe(~0x6165 & 0xffff);
  });

  it('checksum - pads an odd-length handle with a zero byte and starts the identifier on a fresh word', () => {
    const handle = new TextEncoder().encode('abc');
    expect(handleWordSum(handle)).toBe(0x6162 + 0x6300);
    const id = 0xdeadbeef;
    expect(finishChecksum(peChecksumTerm(handleWordSum(handle), id))).toBe(reference([handle, idBytes(id)]));
  });

  it("checksum - folds carries end-around over many PEs like a byte-wise one's-complement sum", () => {
    const handle = new Uint8Array([0xff, 0xff, 0xff, 0xfe, 0x01]);
    let sum = 0;
    const chunks: Uint8Array[] = [];
    for (let id = 0xfffff000; id < 0xfffff000 + 500; id++) {
      sum += peChecksumTerm(handleWordSum(handle), id >>> 0);
      chunks.push(handle, idBytes(id >>> 0));
    }
    expect(finishChecksum(sum)).toBe(reference(chunks));
  });

  it('checksum - of no PEs is 0xffff', () => {
    expect(finishChecksum(0)).toBe(0xffff);
  });
});
