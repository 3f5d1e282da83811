import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DecodeError, DecodeErrorCode, EncodeError } from '../../protocols/errors.js';
import {
  TFTP_MAX_BLOCK_SIZE,
  TFTP_MAX_PACKET_SIZE,
  TFTP_MODES,
  TftpErrorCode,
  TftpOpcode,
  decodeTftpPacket,
  encodeTftpPacket,
  isTftpPacket,
  parseTftpOptions,
} from '../../protocols/tftp/index.js';
import type { TftpOptionList, TftpPacket } from '../../protocols/tftp/index.js';

const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** A NUL-terminated string as hex. */
const z = (s: string): string => `${Buffer.from(s, 'utf8').toString('hex')}00`;

interface Row {
  name: string;
  packet: TftpPacket;
  hex: string;
}

const rows: Row[] = [
  {
    name: 'RRQ octet without options',
    packet: { opcode: TftpOpcode.Rrq, filename: 'boot/pxelinux.0', mode: 'octet', options: [] },
    hex: `0001 ${z('boot/pxelinux.0')} ${z('octet')}`,
  },
  {
    name: 'WRQ netascii',
    packet: { opcode: TftpOpcode.Wrq, filename: 'notes.txt', mode: 'netascii', options: [] },
    hex: `0002 ${z('notes.txt')} ${z('netascii')}`,
  },
  {
    name: 'RRQ mail',
    packet: { opcode: TftpOpcode.Rrq, filename: 'root', mode: 'mail', options: [] },
    hex: `0001 ${z('root')} ${z('mail')}`,
  },
  {
    name: 'RRQ with the four negotiated options, in order',
    packet: {
      opcode: TftpOpcode.Rrq,
      filename: 'image.bin',
      mode: 'octet',
      options: [
        ['blksize', '1428'],
        ['tsize', '0'],
        ['timeout', '3'],
        ['windowsize', '16'],
      ],
    },
    hex: `0001 ${z('image.bin')} ${z('octet')} ${z('blksize')} ${z('1428')} ${z('tsize')} ${z('0')} ${z('timeout')} ${z('3')} ${z('windowsize')} ${z('16')}`,
  },
  {
    name: 'WRQ with an unknown option and an empty value',
    packet: { opcode: TftpOpcode.Wrq, filename: 'x', mode: 'octet', options: [['rserpool-cookie', '']] },
    hex: `0002 ${z('x')} ${z('octet')} ${z('rserpool-cookie')} 00`,
  },
  {
    name: 'RRQ with a UTF-8 filename',
    packet: { opcode: TftpOpcode.Rrq, filename: 'fichier-été.bin', mode: 'octet', options: [] },
    hex: `0001 ${z('fichier-été.bin')} ${z('octet')}`,
  },
  {
    name: 'DATA block 1',
    packet: { opcode: TftpOpcode.Data, block: 1, data: fromHex('68656c6c6f') },
    hex: '0003 0001 68656c6c6f',
  },
  {
    name: 'DATA empty last block 65535',
    packet: { opcode: TftpOpcode.Data, block: 65535, data: new Uint8Array(0) },
    hex: '0003 ffff',
  },
  { name: 'ACK block 0 (WRQ accepted)', packet: { opcode: TftpOpcode.Ack, block: 0 }, hex: '0004 0000' },
  { name: 'ACK block 258', packet: { opcode: TftpOpcode.Ack, block: 258 }, hex: '0004 0102' },
  {
    name: 'ERROR file not found',
    packet: { opcode: TftpOpcode.Error, code: TftpErrorCode.FileNotFound, message: 'File not found' },
    hex: `0005 0001 ${z('File not found')}`,
  },
  {
    name: 'ERROR 8 option negotiation refused, empty text',
    packet: { opcode: TftpOpcode.Error, code: TftpErrorCode.OptionNegotiationRefused, message: '' },
    hex: '0005 0008 00',
  },
  {
    name: 'ERROR with a code outside the table',
    packet: { opcode: TftpOpcode.Error, code: 0x1234, message: 'vendor' },
    hex: `0005 1234 ${z('vendor')}`,
  },
  {
    name: 'OACK blksize and tsize',
    packet: {
      opcode: TftpOpcode.Oack,
      options: [
        ['blksize', '1428'],
        ['tsize', '1048576'],
      ],
    },
    hex: `0006 ${z('blksize')} ${z('1428')} ${z('tsize')} ${z('1048576')}`,
  },
  { name: 'OACK empty', packet: { opcode: TftpOpcode.Oack, options: [] }, hex: '0006' },
];

describe('tftp codec - table', () => {
  for (const row of rows) {
    it(`decodes ${row.name}`, () => {
      expect(decodeTftpPacket(fromHex(row.hex))).toEqual(row.packet);
    });
    it(`encodes ${row.name}`, () => {
      expect(toHex(encodeTftpPacket(row.packet))).toBe(row.hex.replace(/\s+/g, ''));
    });
    it(`round-trips ${row.name}`, () => {
      const bytes = fromHex(row.hex);
      expect(encodeTftpPacket(decodeTftpPacket(bytes))).toEqual(bytes);
    });
  }
});

describe('tftp codec - decoding normalizes', () => {
  it('lower-cases the mode and option names, keeps values as sent', () => {
    const p = decodeTftpPacket(fromHex(`0001 ${z('F')} ${z('OcTeT')} ${z('BLKSIZE')} ${z('512')} ${z('X-Opt')} ${z('AbC')}`));
    expect(p).toEqual({
      opcode: TftpOpcode.Rrq,
      filename: 'F',
      mode: 'octet',
      options: [
        ['blksize', '512'],
        ['x-opt', 'AbC'],
      ],
    });
  });

  it('keeps duplicate options in order', () => {
    const p = decodeTftpPacket(fromHex(`0006 ${z('blksize')} ${z('512')} ${z('blksize')} ${z('1024')}`));
    expect(p).toEqual({
      opcode: TftpOpcode.Oack,
      options: [
        ['blksize', '512'],
        ['blksize', '1024'],
      ],
    });
  });

  it('returns DATA as a view into the input, not a copy', () => {
    const bytes = fromHex('0003 0007 aabbcc');
    const p = decodeTftpPacket(bytes);
    if (p.opcode !== TftpOpcode.Data) throw new Error('expected DATA');
    expect(p.data.buffer).toBe(bytes.buffer);
    expect(p.data.byteOffset).toBe(bytes.byteOffset + 4);
  });

  it('accepts a DATA packet carrying the largest block', () => {
    const bytes = new Uint8Array(TFTP_MAX_PACKET_SIZE);
    bytes[1] = TftpOpcode.Data;
    const p = decodeTftpPacket(bytes);
    expect(p.opcode === TftpOpcode.Data && p.data.length).toBe(TFTP_MAX_BLOCK_SIZE);
  });

  it('shows an ERROR text that is not UTF-8 with replacement characters', () => {
    expect(decodeTftpPacket(fromHex('0005 0000 41ff4200'))).toEqual({ opcode: TftpOpcode.Error, code: 0, message: 'A\ufffdB' });
  });
});

interface ErrorRow {
  name: string;
  hex: string;
  code: DecodeErrorCode;
  offset: number;
}

const errorRows: ErrorRow[] = [
  { name: 'empty input', hex: '', code: DecodeErrorCode.Truncated, offset: 0 },
  { name: 'one byte', hex: '00', code: DecodeErrorCode.Truncated, offset: 0 },
  { name: 'opcode 0', hex: '0000', code: DecodeErrorCode.UnknownType, offset: 0 },
  { name: 'opcode 7', hex: '0007 0001', code: DecodeErrorCode.UnknownType, offset: 0 },
  { name: 'an ASAP_COOKIE header', hex: '0b00 0008 0001 0004', code: DecodeErrorCode.UnknownType, offset: 0 },
  { name: 'RRQ with nothing after the opcode', hex: '0001', code: DecodeErrorCode.Truncated, offset: 2 },
  { name: 'RRQ with an unterminated filename', hex: '0001 616263', code: DecodeErrorCode.Truncated, offset: 2 },
  { name: 'RRQ with an empty filename', hex: `0001 00 ${z('octet')}`, code: DecodeErrorCode.BadValue, offset: 2 },
  { name: 'RRQ with a filename that is not UTF-8', hex: `0001 ff00 ${z('octet')}`, code: DecodeErrorCode.BadValue, offset: 2 },
  { name: 'RRQ without a mode', hex: `0001 ${z('a')}`, code: DecodeErrorCode.Truncated, offset: 4 },
  { name: 'RRQ with an unterminated mode', hex: `0001 ${z('a')} 6f6374`, code: DecodeErrorCode.Truncated, offset: 4 },
  { name: 'RRQ with an unknown mode', hex: `0001 ${z('a')} ${z('binary')}`, code: DecodeErrorCode.BadValue, offset: 4 },
  { name: 'WRQ with a non-ASCII mode', hex: `0002 ${z('a')} 6f6374e97400`, code: DecodeErrorCode.BadValue, offset: 7 },
  { name: 'RRQ with an option name and no value', hex: `0001 ${z('a')} ${z('octet')} ${z('blksize')}`, code: DecodeErrorCode.Truncated, offset: 18 },
  { name: 'RRQ with an unterminated option value', hex: `0001 ${z('a')} ${z('octet')} ${z('blksize')} 353132`, code: DecodeErrorCode.Truncated, offset: 18 },
  { name: 'RRQ with an unterminated option name', hex: `0001 ${z('a')} ${z('octet')} 626c6b`, code: DecodeErrorCode.Truncated, offset: 10 },
  { name: 'RRQ with an empty option name (trailing NUL)', hex: `0001 ${z('a')} ${z('octet')} 00`, code: DecodeErrorCode.BadValue, offset: 10 },
  { name: 'RRQ with a non-ASCII option name', hex: `0001 ${z('a')} ${z('octet')} 62ff00 ${z('1')}`, code: DecodeErrorCode.BadValue, offset: 11 },
  { name: 'OACK with a non-ASCII option value', hex: `0006 ${z('blksize')} 3580 00`, code: DecodeErrorCode.BadValue, offset: 11 },
  { name: 'OACK with a name and no value', hex: `0006 ${z('tsize')}`, code: DecodeErrorCode.Truncated, offset: 8 },
  { name: 'DATA without a block number', hex: '0003 00', code: DecodeErrorCode.Truncated, offset: 2 },
  { name: 'ACK without a block number', hex: '0004', code: DecodeErrorCode.Truncated, offset: 2 },
  { name: 'ACK with trailing bytes', hex: '0004 0001 00', code: DecodeErrorCode.BadLength, offset: 4 },
  { name: 'ERROR without a code', hex: '0005 00', code: DecodeErrorCode.Truncated, offset: 2 },
  { name: 'ERROR without a message', hex: '0005 0001', code: DecodeErrorCode.Truncated, offset: 4 },
  { name: 'ERROR with an unterminated message', hex: '0005 0001 4142', code: DecodeErrorCode.Truncated, offset: 4 },
  { name: 'ERROR with bytes after the message', hex: '0005 0001 4100 42', code: DecodeErrorCode.BadLength, offset: 6 },
  {
    name: 'DATA one byte over the largest block',
    hex: `0003 0001 ${'00'.repeat(TFTP_MAX_BLOCK_SIZE + 1)}`,
    code: DecodeErrorCode.TooLarge,
    offset: TFTP_MAX_PACKET_SIZE,
  },
];

function decodeError(bytes: Uint8Array): DecodeError {
  try {
    decodeTftpPacket(bytes);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  throw new Error('decoded without error');
}

describe('tftp codec - decode errors', () => {
  for (const row of errorRows) {
    it(`refuses ${row.name} with ${row.code} at ${row.offset}`, () => {
      const e = decodeError(fromHex(row.hex));
      expect({ code: e.code, offset: e.offset }).toEqual({ code: row.code, offset: row.offset });
    });
  }
});

describe('tftp codec - encode errors', () => {
  const bad: Array<[string, TftpPacket]> = [
    ['an empty filename', { opcode: TftpOpcode.Rrq, filename: '', mode: 'octet', options: [] }],
    ['a NUL in the filename', { opcode: TftpOpcode.Rrq, filename: 'a\0b', mode: 'octet', options: [] }],
    ['a lone surrogate in the filename', { opcode: TftpOpcode.Wrq, filename: 'a\ud800', mode: 'octet', options: [] }],
    ['an unknown mode', { opcode: TftpOpcode.Rrq, filename: 'a', mode: 'binary' as 'octet', options: [] }],
    ['an empty option name', { opcode: TftpOpcode.Rrq, filename: 'a', mode: 'octet', options: [['', '1']] }],
    ['a non-ASCII option value', { opcode: TftpOpcode.Oack, options: [['blksize', '5é']] }],
    ['a NUL in an option name', { opcode: TftpOpcode.Oack, options: [['a\0', '1']] }],
    ['block 65536', { opcode: TftpOpcode.Ack, block: 65536 }],
    ['block -1', { opcode: TftpOpcode.Data, block: -1, data: new Uint8Array(0) }],
    ['a fractional error code', { opcode: TftpOpcode.Error, code: 1.5, message: '' }],
    ['a DATA block over 65464 bytes', { opcode: TftpOpcode.Data, block: 1, data: new Uint8Array(TFTP_MAX_BLOCK_SIZE + 1) }],
    ['an OACK over the largest packet', { opcode: TftpOpcode.Oack, options: [['x', 'y'.repeat(TFTP_MAX_PACKET_SIZE)]] }],
  ];
  for (const [name, packet] of bad) {
    it(`refuses ${name} with EncodeError`, () => {
      expect(() => encodeTftpPacket(packet)).toThrow(EncodeError);
    });
  }
});

describe('tftp options - parseTftpOptions', () => {
  it('types the four known options and keeps the rest in order', () => {
    const options: TftpOptionList = [
      ['BlkSize', '1428'],
      ['x-a', '1'],
      ['timeout', '255'],
      ['tsize', '0'],
      ['windowsize', '65535'],
      ['x-b', '2'],
    ];
    expect(parseTftpOptions(options)).toEqual({
      blksize: 1428,
      timeout: 255,
      tsize: 0,
      windowsize: 65535,
      other: [
        ['x-a', '1'],
        ['x-b', '2'],
      ],
      rejected: [],
    });
  });

  it('accepts the bounds of every range', () => {
    expect(
      parseTftpOptions([
        ['blksize', '8'],
        ['timeout', '1'],
        ['windowsize', '1'],
        ['tsize', String(Number.MAX_SAFE_INTEGER)],
      ]),
    ).toEqual({
      blksize: 8,
      timeout: 1,
      windowsize: 1,
      tsize: Number.MAX_SAFE_INTEGER,
      other: [],
      rejected: [],
    });
    expect(parseTftpOptions([['blksize', '65464']]).blksize).toBe(65464);
  });

  const outOfRange: Array<[string, string]> = [
    ['blksize', '7'],
    ['blksize', '65465'],
    ['timeout', '0'],
    ['timeout', '256'],
    ['windowsize', '0'],
    ['windowsize', '65536'],
    ['tsize', '9007199254740992'],
    ['tsize', '9'.repeat(400)],
  ];
  for (const [name, value] of outOfRange) {
    it(`rejects ${name}=${value.slice(0, 20)} as out of range`, () => {
      expect(parseTftpOptions([[name, value]])).toEqual({ other: [], rejected: [{ name, value, problem: 'out-of-range' }] });
    });
  }

  for (const value of ['', '+5', '-1', ' 5', '5 ', '0x10', '1e3', '1.5', 'Infinity']) {
    it(`rejects blksize='${value}' as not a number`, () => {
      expect(parseTftpOptions([['blksize', value]])).toEqual({ other: [], rejected: [{ name: 'blksize', value, problem: 'not-a-number' }] });
    });
  }

  it('keeps the first of a repeated option and rejects the repeats', () => {
    expect(
      parseTftpOptions([
        ['blksize', '99999'],
        ['BLKSIZE', '1024'],
        ['blksize', '512'],
      ]),
    ).toEqual({
      other: [],
      rejected: [
        { name: 'blksize', value: '99999', problem: 'out-of-range' },
        { name: 'blksize', value: '1024', problem: 'duplicate' },
        { name: 'blksize', value: '512', problem: 'duplicate' },
      ],
    });
  });
});

describe('tftp - isTftpPacket', () => {
  it('accepts every TFTP opcode', () => {
    for (let op = 1; op <= 6; op++) expect(isTftpPacket(Uint8Array.of(0, op, 0, 0))).toBe(true);
  });

  it('refuses opcodes 0 and 7, and inputs under two bytes', () => {
    expect(isTftpPacket(Uint8Array.of(0, 0))).toBe(false);
    expect(isTftpPacket(Uint8Array.of(0, 7))).toBe(false);
    expect(isTftpPacket(Uint8Array.of(0))).toBe(false);
    expect(isTftpPacket(new Uint8Array(0))).toBe(false);
  });

  it('refuses every ASAP message type, whatever its flags', () => {
    for (let type = 0x01; type <= 0x0e; type++) {
      for (const flags of [0x00, 0x01, 0xff]) expect(isTftpPacket(Uint8Array.of(type, flags, 0, 8))).toBe(false);
    }
  });

  it('agrees with the decoder: what it refuses never decodes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        if (isTftpPacket(bytes)) return;
        expect(() => decodeTftpPacket(bytes)).toThrow(DecodeError);
      }),
    );
  });
});

// Arbitraries: names lower-case ASCII (decode lower-cases them), strings without NUL.
const asciiNoNul = fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c));
const asciiLowerNoNul = asciiNoNul.filter((c) => c < 'A' || c > 'Z');
const optionList = fc.array(fc.tuple(fc.string({ unit: asciiLowerNoNul, minLength: 1, maxLength: 12 }), fc.string({ unit: asciiNoNul, maxLength: 12 })), {
  maxLength: 6,
});
const text = fc.string({ unit: 'grapheme', maxLength: 24 }).filter((s) => !s.includes('\0'));
const u16 = fc.integer({ min: 0, max: 0xffff });
const mode = fc.constantFrom(...TFTP_MODES);

const packetArb: fc.Arbitrary<TftpPacket> = fc.oneof(
  fc.record({ opcode: fc.constant(TftpOpcode.Rrq), filename: text.filter((s) => s.length > 0), mode, options: optionList }),
  fc.record({ opcode: fc.constant(TftpOpcode.Wrq), filename: text.filter((s) => s.length > 0), mode, options: optionList }),
  fc.record({ opcode: fc.constant(TftpOpcode.Data), block: u16, data: fc.uint8Array({ maxLength: 1500 }) }),
  fc.record({ opcode: fc.constant(TftpOpcode.Ack), block: u16 }),
  fc.record({ opcode: fc.constant(TftpOpcode.Error), code: u16, message: text }),
  fc.record({ opcode: fc.constant(TftpOpcode.Oack), options: optionList }),
);

describe('tftp codec - properties', () => {
  it('round-trips arbitrary packets', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const bytes = encodeTftpPacket(p);
        expect(decodeTftpPacket(bytes)).toEqual(p);
        expect(isTftpPacket(bytes)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes arbitrary bytes to a packet that re-encodes stably, or throws a DecodeError within the input', () => {
    const opcodeFirst = fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 80 })).map(([op, rest]) => Uint8Array.of(0, op, ...rest));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), opcodeFirst), (bytes) => {
        let p: TftpPacket;
        try {
          p = decodeTftpPacket(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
          expect((e as DecodeError).offset).toBeGreaterThanOrEqual(0);
          expect((e as DecodeError).offset).toBeLessThanOrEqual(bytes.length);
          return;
        }
        const again = encodeTftpPacket(p);
        expect(encodeTftpPacket(decodeTftpPacket(again))).toEqual(again);
      }),
      { numRuns: 5000 },
    );
  });
});
