import { describe, expect, it } from 'vitest';
import { DecodeError, EncodeError } from '../../protocols/errors.js';
import {
  ErrorCause,
  PolicyType,
  TransportUse,
  decodeParameter,
  encodeParameter,
  formatIpv6,
  parseIpv4,
  parseIpv6,
  poolHandleFromString,
  poolHandleToString,
  unknownParameterAction,
  UnknownParameterAction,
  type Parameter,
} from '../../protocols/parameters/index.js';
import { fromHex, tlv, toHex } from './hex.js';

const V4 = '00010008c0000201'; // IPv4 192.0.2.1
const V6 = '0002001420010db8000000000000000000000001'; // IPv6 2001:db8::1
const tcp = (port: string, use: string): string => tlv(0x5, port + use + V4);

interface Row {
  name: string;
  param: Parameter;
  hex: string;
}

const rows: Row[] = [
  { name: 'IPv4 address', param: { kind: 'address', address: '192.0.2.1' }, hex: '00010008 c0000201' },
  { name: 'IPv6 address', param: { kind: 'address', address: '2001:db8::1' }, hex: '00020014 20010db8 00000000 00000000 00000001' },
  { name: 'IPv4-mapped IPv6 address', param: { kind: 'address', address: '::ffff:192.0.2.1' }, hex: '00020014 00000000 00000000 0000ffff c0000201' },
  {
    name: 'SCTP transport, multi-homed, data plus control',
    param: {
      kind: 'transport',
      transport: { protocol: 'sctp', port: 3863, addresses: ['192.0.2.1', '2001:db8::1'], transportUse: TransportUse.DataPlusControl },
    },
    hex: `00040024 0f17 0001 ${V4} ${V6}`,
  },
  {
    name: 'TCP transport, data only',
    param: { kind: 'transport', transport: { protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: TransportUse.DataOnly } },
    hex: `00050010 1f40 0000 ${V4}`,
  },
  {
    name: 'UDP transport',
    param: { kind: 'transport', transport: { protocol: 'udp', port: 69, addresses: ['192.0.2.1'], transportUse: 0 } },
    hex: `00060010 0045 0000 ${V4}`,
  },
  {
    name: 'UDP-Lite transport',
    param: { kind: 'transport', transport: { protocol: 'udp-lite', port: 69, addresses: ['2001:db8::1'], transportUse: 0 } },
    hex: `0007001c 0045 0000 ${V6}`,
  },
  {
    name: 'DCCP transport with service code',
    param: { kind: 'transport', transport: { protocol: 'dccp', port: 5004, addresses: ['192.0.2.1'], transportUse: 0, serviceCode: 0x52545020 } },
    hex: `00030014 138c 0000 52545020 ${V4}`,
  },
  { name: 'policy round robin', param: { kind: 'policy', policy: { type: PolicyType.RoundRobin } }, hex: '00080008 00000001' },
  {
    name: 'policy weighted round robin',
    param: { kind: 'policy', policy: { type: PolicyType.WeightedRoundRobin, weight: 3 } },
    hex: '0008000c 00000002 00000003',
  },
  { name: 'policy random', param: { kind: 'policy', policy: { type: PolicyType.Random } }, hex: '00080008 00000003' },
  { name: 'policy weighted random', param: { kind: 'policy', policy: { type: PolicyType.WeightedRandom, weight: 9 } }, hex: '0008000c 00000004 00000009' },
  { name: 'policy priority', param: { kind: 'policy', policy: { type: PolicyType.Priority, priority: 2 } }, hex: '0008000c 00000005 00000002' },
  { name: 'policy least used', param: { kind: 'policy', policy: { type: PolicyType.LeastUsed, load: 0x80000000 } }, hex: '0008000c 40000001 80000000' },
  {
    name: 'policy least used with degradation',
    param: { kind: 'policy', policy: { type: PolicyType.LeastUsedDegradation, load: 0x10, loadDegradation: 0x20 } },
    hex: '00080010 40000002 00000010 00000020',
  },
  {
    name: 'policy priority least used',
    param: { kind: 'policy', policy: { type: PolicyType.PriorityLeastUsed, load: 0x10, loadDegradation: 0x20 } },
    hex: '00080010 40000003 00000010 00000020',
  },
  {
    name: 'policy randomized least used',
    param: { kind: 'policy', policy: { type: PolicyType.RandomizedLeastUsed, load: 7 } },
    hex: '0008000c 40000004 00000007',
  },
  {
    name: 'policy priority least used with degradation (RSPLIB)',
    param: { kind: 'policy', policy: { type: PolicyType.PriorityLeastUsedDegradation, load: 1, loadDegradation: 2 } },
    hex: '00080010 b0001003 00000001 00000002',
  },
  {
    name: 'policy weighted random DPF (RSPLIB)',
    param: { kind: 'policy', policy: { type: PolicyType.WeightedRandomDpf, weight: 1, weightDpf: 2, distance: 3 } },
    hex: '00080014 b0002001 00000001 00000002 00000003',
  },
  {
    name: 'policy least used DPF (RSPLIB)',
    param: { kind: 'policy', policy: { type: PolicyType.LeastUsedDpf, load: 1, loadDpf: 2, distance: 3 } },
    hex: '00080014 b0002002 00000001 00000002 00000003',
  },
  {
    name: 'policy least connections (rserpool)',
    param: { kind: 'policy', policy: { type: PolicyType.LeastConnections, connections: 4 } },
    hex: '0008000c b0003001 00000004',
  },
  {
    name: 'policy weighted least connections (rserpool)',
    param: { kind: 'policy', policy: { type: PolicyType.WeightedLeastConnections, weight: 2, connections: 4 } },
    hex: '00080010 b0003002 00000002 00000004',
  },
  {
    name: 'policy weighted response time (rserpool)',
    param: { kind: 'policy', policy: { type: PolicyType.WeightedResponseTime, weight: 2, responseTimeUs: 1500 } },
    hex: '00080010 b0003003 00000002 000005dc',
  },
  {
    name: 'policy consistent hash (rserpool)',
    param: { kind: 'policy', policy: { type: PolicyType.ConsistentHash, weight: 5 } },
    hex: '0008000c b0003004 00000005',
  },
  {
    name: 'policy of unknown type kept raw, padded',
    param: { kind: 'policy', policy: { type: 0x7000abcd, unknown: true, raw: fromHex('0102030405') } },
    hex: '0008000d 7000abcd 0102030405 000000',
  },
  { name: 'pool handle, padded', param: { kind: 'handle', handle: poolHandleFromString('Echo') }, hex: '00090008 4563686f' },
  { name: 'pool handle of 5 bytes', param: { kind: 'handle', handle: poolHandleFromString('Pool5') }, hex: '00090009 506f6f6c35 000000' },
  {
    name: 'pool element with user transport, policy and ASAP transport',
    param: {
      kind: 'element',
      element: {
        identifier: 0x12345678,
        homeRegistrarId: 0x11111111,
        registrationLife: 0xffffffff,
        userTransport: { protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: 0 },
        policy: { type: PolicyType.RoundRobin },
        asapTransport: { protocol: 'tcp', port: 50000, addresses: ['192.0.2.1'], transportUse: 1 },
      },
    },
    hex: `000a0038 12345678 11111111 ffffffff ${tcp('1f40', '0000')} 00080008 00000001 ${tcp('c350', '0001')}`,
  },
  {
    name: 'pool element without ASAP transport',
    param: {
      kind: 'element',
      element: {
        identifier: 1,
        homeRegistrarId: 0,
        registrationLife: 30000,
        userTransport: { protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: 0 },
        policy: { type: PolicyType.Priority, priority: 1 },
      },
    },
    hex: `000a002c 00000001 00000000 00007530 ${tcp('1f40', '0000')} 0008000c 00000005 00000001`,
  },
  {
    name: 'server information',
    param: { kind: 'server', server: { registrarId: 0x11111111, transport: { protocol: 'tcp', port: 9901, addresses: ['192.0.2.1'], transportUse: 0 } } },
    hex: `000b0018 11111111 ${tcp('26ad', '0000')}`,
  },
  {
    name: 'operation error with causes, each padded',
    param: {
      kind: 'error',
      causes: [
        { code: ErrorCause.UnrecognizedParameter, info: fromHex('4077000701020300') },
        { code: ErrorCause.InvalidValues, info: fromHex('01') },
        { code: ErrorCause.LackOfResources, info: new Uint8Array(0) },
      ],
    },
    hex: '000c001c 0001000c 4077000701020300 00030005 01000000 00060004',
  },
  { name: 'cookie, padded', param: { kind: 'cookie', cookie: fromHex('a1b2c3') }, hex: '000d0007 a1b2c300' },
  { name: 'PE identifier', param: { kind: 'identifier', identifier: 0x12345678 }, hex: '000e0008 12345678' },
  { name: 'PE checksum (length 6, 2 bytes padding)', param: { kind: 'checksum', checksum: 0xbeef }, hex: '000f0006 beef0000' },
  { name: 'handle resolution option', param: { kind: 'hrOption', items: 3 }, hex: '803f0008 00000003' },
  { name: 'unknown parameter kept raw', param: { kind: 'unknown', parameter: { type: 0xc0de, raw: fromHex('0102') } }, hex: 'c0de0006 01020000' },
];

describe('parameters - table', () => {
  for (const row of rows) {
    const bytes = fromHex(row.hex);
    it(`decodes ${row.name}`, () => {
      expect(decodeParameter(bytes)).toEqual(row.param);
    });
    it(`encodes ${row.name}`, () => {
      expect(toHex(encodeParameter(row.param))).toBe(toHex(bytes));
    });
    it(`round-trips ${row.name}`, () => {
      expect(toHex(encodeParameter(decodeParameter(bytes)))).toBe(toHex(bytes));
    });
  }

  it('the helper tlv() agrees with the hand-written pool element row', () => {
    expect(tlv(0x1, 'c0000201')).toBe(V4);
  });
});

interface ErrorRow {
  name: string;
  hex: string;
  code: string;
  offset: number;
  tlvType?: number;
}

const errorRows: ErrorRow[] = [
  { name: 'header cut short', hex: '0001', code: 'TRUNCATED', offset: 0 },
  { name: 'length below the header', hex: '00010003 c0000201', code: 'BAD_LENGTH', offset: 2, tlvType: 1 },
  { name: 'length past the buffer', hex: '0001000c c0000201', code: 'TRUNCATED', offset: 2, tlvType: 1 },
  { name: 'oversize length 0xffff', hex: '0009ffff 41424344', code: 'TRUNCATED', offset: 2, tlvType: 9 },
  { name: 'IPv4 address of wrong size', hex: '0001000c c0000201 00000000', code: 'BAD_LENGTH', offset: 2, tlvType: 1 },
  { name: 'IPv6 address of wrong size', hex: '00020008 20010db8', code: 'BAD_LENGTH', offset: 2, tlvType: 2 },
  { name: 'missing padding after a pool handle', hex: '00090005 41', code: 'BAD_PADDING', offset: 5, tlvType: 9 },
  { name: 'non-zero padding', hex: '00090005 41000100', code: 'BAD_PADDING', offset: 6, tlvType: 9 },
  { name: 'bytes after the parameter', hex: '000e0008 00000001 00000000', code: 'BAD_LENGTH', offset: 8 },
  { name: 'policy parameter inside a transport', hex: `00050018 1f40 0000 ${V4} 00080008 00000001`, code: 'BAD_NESTING', offset: 16, tlvType: 8 },
  { name: 'TCP transport without an address', hex: '00050008 1f40 0000', code: 'MISSING_PARAMETER', offset: 0 },
  { name: 'TCP transport with two addresses', hex: `00050018 1f40 0000 ${V4} ${V4}`, code: 'BAD_VALUE', offset: 0 },
  { name: 'transport use 2', hex: `00050010 1f40 0002 ${V4}`, code: 'BAD_VALUE', offset: 6, tlvType: 5 },
  { name: 'address running past its transport', hex: `0005000f 1f40 0000 00010008 c00002 00`, code: 'BAD_LENGTH', offset: 10, tlvType: 1 },
  { name: 'round robin policy with a value', hex: '0008000c 00000001 00000005', code: 'BAD_LENGTH', offset: 2, tlvType: 8 },
  { name: 'weighted round robin without its weight', hex: '00080008 00000002', code: 'BAD_LENGTH', offset: 2, tlvType: 8 },
  { name: 'policy shorter than its type', hex: '00080006 00010000', code: 'BAD_LENGTH', offset: 2, tlvType: 8 },
  { name: 'pool element shorter than its fixed part', hex: '000a000c 00000001 00000000', code: 'BAD_LENGTH', offset: 2, tlvType: 10 },
  { name: 'pool element without a policy', hex: `000a0020 00000001 00000000 00007530 ${tcp('1f40', '0000')}`, code: 'MISSING_PARAMETER', offset: 0 },
  {
    name: 'pool element with policy first',
    hex: `000a0028 00000001 00000000 00007530 00080008 00000001 ${tcp('1f40', '0000')}`,
    code: 'BAD_NESTING',
    offset: 16,
    tlvType: 8,
  },
  {
    name: 'pool element with a fourth parameter',
    hex: `000a0040 00000001 00000000 00007530 ${tcp('1f40', '0000')} 00080008 00000001 ${tcp('1f40', '0000')} 000e0008 00000001`,
    code: 'BAD_NESTING',
    offset: 56,
    tlvType: 14,
  },
  { name: 'server information without transport', hex: '000b0008 00000001', code: 'MISSING_PARAMETER', offset: 0 },
  { name: 'PE identifier of wrong size', hex: '000e000c 00000001 00000000', code: 'BAD_LENGTH', offset: 2, tlvType: 14 },
  { name: 'PE checksum of length 8', hex: '000f0008 12340000', code: 'BAD_LENGTH', offset: 2, tlvType: 15 },
  { name: 'error cause running past its parameter', hex: '000c000c 00010010 00000000', code: 'BAD_LENGTH', offset: 6, tlvType: 1 },
];

describe('parameters - decode errors', () => {
  for (const row of errorRows) {
    it(`refuses ${row.name} with ${row.code} at byte ${row.offset}`, () => {
      let caught: unknown;
      try {
        decodeParameter(fromHex(row.hex));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(DecodeError);
      const e = caught as DecodeError;
      expect({ code: e.code, offset: e.offset }).toEqual({ code: row.code, offset: row.offset });
      if (row.tlvType !== undefined) expect(e.tlvType).toBe(row.tlvType);
    });
  }
});

describe('parameters - encode errors', () => {
  const bad: Array<[string, Parameter]> = [
    ['an address that is not one', { kind: 'address', address: '300.1.2.3' }],
    [
      'a TCP transport with two addresses',
      { kind: 'transport', transport: { protocol: 'tcp', port: 1, addresses: ['192.0.2.1', '192.0.2.2'], transportUse: 0 } },
    ],
    ['a transport without an address', { kind: 'transport', transport: { protocol: 'sctp', port: 1, addresses: [], transportUse: 0 } }],
    ['a port above 65535', { kind: 'transport', transport: { protocol: 'udp', port: 70000, addresses: ['192.0.2.1'], transportUse: 0 } }],
    ['a negative weight', { kind: 'policy', policy: { type: PolicyType.WeightedRandom, weight: -1 } }],
    ['a known policy type given as unknown', { kind: 'policy', policy: { type: PolicyType.RoundRobin, unknown: true, raw: new Uint8Array(0) } }],
    ['a known parameter type given as unknown', { kind: 'unknown', parameter: { type: 0x9, raw: new Uint8Array(0) } }],
    ['a pool handle too long for the length field', { kind: 'handle', handle: new Uint8Array(70000) }],
  ];
  for (const [name, param] of bad) {
    it(`refuses ${name}`, () => {
      expect(() => encodeParameter(param)).toThrow(EncodeError);
    });
  }
});

describe('parameters - addresses and handles', () => {
  it('formats IPv6 canonically (RFC 5952)', () => {
    const cases: Array<[string, string]> = [
      ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['::ffff:192.0.2.128', '::ffff:192.0.2.128'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ];
    for (const [input, canonical] of cases) expect(formatIpv6(parseIpv6(input)!)).toBe(canonical);
  });

  it('refuses malformed addresses', () => {
    for (const a of ['1.2.3', '1.2.3.4.5', '01.2.3.4', '256.0.0.1', '1..2.3', '']) expect(parseIpv4(a)).toBeUndefined();
    for (const a of ['1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', ':::', 'g::1', '1:2:3:4:5:6:7::8', 'fe80::1%eth0']) expect(parseIpv6(a)).toBeUndefined();
  });

  it('converts pool handles to and from UTF-8 text', () => {
    expect(toHex(poolHandleFromString('Pööl'))).toBe('50c3b6c3b66c');
    expect(poolHandleToString(fromHex('50c3b6c3b66c'))).toBe('Pööl');
    expect(poolHandleToString(fromHex('ff'))).toBeUndefined();
  });

  it('derives the RFC 5354 unknown-parameter action from the top two bits', () => {
    expect(unknownParameterAction(0x0077)).toBe(UnknownParameterAction.Stop);
    expect(unknownParameterAction(0x4077)).toBe(UnknownParameterAction.StopAndReport);
    expect(unknownParameterAction(0x8077)).toBe(UnknownParameterAction.Skip);
    expect(unknownParameterAction(0xc077)).toBe(UnknownParameterAction.SkipAndReport);
  });
});
