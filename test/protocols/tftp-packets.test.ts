import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  NetasciiDecoder,
  TFTP_MAX_ERROR_TEXT,
  TftpErrorCode,
  TftpOpcode,
  absoluteBlock,
  ackPacket,
  blocksAhead,
  dataHeader,
  dataPacket,
  decodeTftpPacket,
  errorPacket,
  peerError,
  toNetascii,
  wireBlock,
} from '../../protocols/tftp/index.js';

describe('tftp packets - hot-path builders agree with the codec', () => {
  it('builds DATA and ACK with the block number mod 65536', () => {
    expect(decodeTftpPacket(ackPacket(65_536 + 7))).toEqual({ opcode: TftpOpcode.Ack, block: 7 });
    const d = decodeTftpPacket(dataPacket(65_535, new Uint8Array([1, 2, 3])));
    expect(d).toMatchObject({ opcode: TftpOpcode.Data, block: 65_535 });
    expect(Array.from((d as { data: Uint8Array }).data)).toEqual([1, 2, 3]);
    expect(Array.from(dataHeader(131_072 + 258))).toEqual([0, 3, 1, 2]);
  });

  it('maps absolute blocks to the wire and back across a rollover', () => {
    expect(wireBlock(65_536)).toBe(0);
    expect(absoluteBlock(0, 65_535)).toBe(65_536);
    expect(absoluteBlock(65_535, 65_536)).toBe(65_535);
    expect(blocksAhead(2, 65_535)).toBe(3);
    expect(blocksAhead(65_535, 65_536)).toBe(65_535);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: -32_767, max: 32_767 }), (ref, d) => {
        const abs = ref + d;
        if (abs < 0) return;
        expect(absoluteBlock(wireBlock(abs), ref)).toBe(abs);
      }),
    );
  });
});

describe('tftp packets - errorPacket, one rule', () => {
  it('keeps a short text whole and decodes to it', () => {
    expect(decodeTftpPacket(errorPacket(TftpErrorCode.FileNotFound, 'no such file'))).toEqual({
      opcode: TftpOpcode.Error,
      code: TftpErrorCode.FileNotFound,
      message: 'no such file',
    });
  });

  it('cuts a long text to TFTP_MAX_ERROR_TEXT bytes without splitting a character', () => {
    const p = errorPacket(0, 'é'.repeat(500));
    expect(p.length).toBeLessThanOrEqual(5 + TFTP_MAX_ERROR_TEXT);
    const m = decodeTftpPacket(p) as { message: string };
    expect(m.message).toBe('é'.repeat(TFTP_MAX_ERROR_TEXT / 2));
  });

  it('is never larger than maxBytes, and absent when not even an empty text fits', () => {
    for (let max = 0; max < 40; max++) {
      const p = errorPacket(TftpErrorCode.IllegalOperation, 'illegal TFTP operation: unknown opcode 99', max);
      if (max < 5) expect(p).toBeUndefined();
      else {
        expect(p!.length).toBeLessThanOrEqual(max);
        expect(decodeTftpPacket(p!)).toMatchObject({ opcode: TftpOpcode.Error, code: TftpErrorCode.IllegalOperation });
      }
    }
  });

  it('replaces what the wire cannot carry instead of throwing', () => {
    const m = decodeTftpPacket(errorPacket(0, 'a\0b\ud800c')) as { message: string };
    expect(m.message).toBe('a b\ufffdc');
  });
});

describe('tftp packets - netascii', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  it('encodes LF as CR LF and CR as CR NUL', () => {
    expect(Array.from(toNetascii(enc('a\nb\rc')))).toEqual([0x61, 0x0d, 0x0a, 0x62, 0x0d, 0x00, 0x63]);
  });

  it('decodes back whatever the block boundaries', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 6 }), (bytes, cuts) => {
        const wire = toNetascii(bytes);
        const points = [...new Set(cuts.map((c) => Math.min(c, wire.length)))].sort((a, b) => a - b);
        const d = new NetasciiDecoder();
        const parts: Uint8Array[] = [];
        let at = 0;
        for (const c of [...points, wire.length]) {
          parts.push(d.push(wire.subarray(at, c)));
          at = c;
        }
        parts.push(d.end());
        expect(Buffer.concat(parts).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });
});

describe('peerError', () => {
  it('reads code and text of a well-formed ERROR', () => {
    expect(peerError(errorPacket(TftpErrorCode.DiskFull, 'no room'))).toEqual({ code: TftpErrorCode.DiskFull, message: 'no room' });
  });
  it('keeps the code of a malformed ERROR and says it was malformed', () => {
    expect(peerError(Uint8Array.of(0, 5, 0, 3, 0x41))).toEqual({ code: 3, message: 'malformed ERROR packet' });
    expect(peerError(Uint8Array.of(0, 5, 0))).toEqual({ code: TftpErrorCode.NotDefined, message: 'malformed ERROR packet' });
  });
});
