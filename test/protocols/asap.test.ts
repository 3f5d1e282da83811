import { describe, expect, it } from 'vitest';
import { AsapFlags, AsapMessageType, decodeAsapMessage, encodeAsapMessage, type AsapMessage } from '../../protocols/asap/index.js';
import { DecodeError } from '../../protocols/errors.js';
import { ErrorCause, PolicyType, poolHandleFromString, type PoolElementParameter } from '../../protocols/parameters/index.js';
import { fromHex, msg, toHex } from './hex.js';

const handle = poolHandleFromString('EchoPool');
const HANDLE = '0009000c 4563686f506f6f6c';
const PE_ID = '000e0008 12345678';
const TCP8000 = '00050010 1f400000 00010008 c0000201';
const element: PoolElementParameter = {
  identifier: 0x12345678,
  homeRegistrarId: 0,
  registrationLife: 30000,
  userTransport: { protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: 0 },
  policy: { type: PolicyType.RoundRobin },
};
const PE = `000a0028 12345678 00000000 00007530 ${TCP8000} 00080008 00000001`;
const OP_ERROR = '000c0008 00090004'; // Operation Error: Unknown Pool Handle, no info
const COOKIE = '000d0009 0102030405 000000';

interface Row {
  name: string;
  message: AsapMessage;
  hex: string;
}

const T = AsapMessageType;
const rows: Row[] = [
  { name: 'ASAP_REGISTRATION', message: { type: T.Registration, handle, element }, hex: msg(1, 0, HANDLE + PE) },
  { name: 'ASAP_DEREGISTRATION', message: { type: T.Deregistration, handle, identifier: 0x12345678 }, hex: msg(2, 0, HANDLE + PE_ID) },
  { name: 'ASAP_REGISTRATION_RESPONSE (accepted)', message: { type: T.RegistrationResponse, handle, identifier: 0x12345678 }, hex: msg(3, 0, HANDLE + PE_ID) },
  {
    name: 'ASAP_REGISTRATION_RESPONSE (rejected, R flag, operation error)',
    message: {
      type: T.RegistrationResponse,
      flags: AsapFlags.Reject,
      handle,
      identifier: 0x12345678,
      error: [{ code: ErrorCause.UnknownPoolHandle, info: new Uint8Array(0) }],
    },
    hex: msg(3, 1, HANDLE + PE_ID + OP_ERROR),
  },
  { name: 'ASAP_DEREGISTRATION_RESPONSE', message: { type: T.DeregistrationResponse, handle, identifier: 0x12345678 }, hex: msg(4, 0, HANDLE + PE_ID) },
  { name: 'ASAP_HANDLE_RESOLUTION', message: { type: T.HandleResolution, handle }, hex: msg(5, 0, HANDLE) },
  { name: 'ASAP_HANDLE_RESOLUTION with HR option', message: { type: T.HandleResolution, handle, items: 3 }, hex: msg(5, 0, `${HANDLE} 803f0008 00000003`) },
  {
    name: 'ASAP_HANDLE_RESOLUTION_RESPONSE with overall policy and two PEs',
    message: { type: T.HandleResolutionResponse, handle, policy: { type: PolicyType.RoundRobin }, elements: [element, element] },
    hex: msg(6, 0, `${HANDLE} 00080008 00000001 ${PE} ${PE}`),
  },
  {
    name: 'ASAP_HANDLE_RESOLUTION_RESPONSE with operation error',
    message: { type: T.HandleResolutionResponse, handle, elements: [], error: [{ code: ErrorCause.UnknownPoolHandle, info: new Uint8Array(0) }] },
    hex: msg(6, 0, HANDLE + OP_ERROR),
  },
  {
    name: 'ASAP_ENDPOINT_KEEP_ALIVE (H flag)',
    message: { type: T.EndpointKeepAlive, flags: AsapFlags.Home, serverId: 0x11111111, handle, identifier: 0x12345678 },
    hex: msg(7, 1, `11111111 ${HANDLE} ${PE_ID}`),
  },
  { name: 'ASAP_ENDPOINT_KEEP_ALIVE without PE identifier', message: { type: T.EndpointKeepAlive, serverId: 7, handle }, hex: msg(7, 0, `00000007 ${HANDLE}`) },
  { name: 'ASAP_ENDPOINT_KEEP_ALIVE_ACK', message: { type: T.EndpointKeepAliveAck, handle, identifier: 0x12345678 }, hex: msg(8, 0, HANDLE + PE_ID) },
  { name: 'ASAP_ENDPOINT_UNREACHABLE', message: { type: T.EndpointUnreachable, handle, identifier: 0x12345678 }, hex: msg(9, 0, HANDLE + PE_ID) },
  {
    name: 'ASAP_SERVER_ANNOUNCE',
    message: { type: T.ServerAnnounce, serverId: 0x11111111, transports: [{ protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: 0 }] },
    hex: msg(0xa, 0, `11111111 ${TCP8000}`),
  },
  { name: 'ASAP_COOKIE', message: { type: T.Cookie, cookie: fromHex('0102030405') }, hex: msg(0xb, 0, COOKIE) },
  { name: 'ASAP_COOKIE_ECHO', message: { type: T.CookieEcho, cookie: fromHex('0102030405') }, hex: msg(0xc, 0, COOKIE) },
  { name: 'ASAP_BUSINESS_CARD', message: { type: T.BusinessCard, handle, elements: [element] }, hex: msg(0xd, 0, HANDLE + PE) },
  {
    name: 'ASAP_ERROR',
    message: { type: T.Error, error: [{ code: ErrorCause.UnrecognizedMessage, info: fromHex('ee000004') }] },
    hex: msg(0xe, 0, '000c000c 0002 0008 ee000004'),
  },
  {
    name: 'ASAP_HANDLE_RESOLUTION keeping an unknown parameter',
    message: { type: T.HandleResolution, handle, unknown: [{ type: 0x8077, raw: fromHex('abcd') }] },
    hex: msg(5, 0, `${HANDLE} 80770006 abcd0000`),
  },
];

describe('ASAP - table', () => {
  it('covers all 14 message types', () => {
    expect(new Set(rows.map((r) => r.message.type)).size).toBe(14);
  });
  for (const row of rows) {
    const bytes = fromHex(row.hex);
    it(`decodes ${row.name}`, () => {
      expect(decodeAsapMessage(bytes)).toEqual(row.message);
    });
    it(`encodes ${row.name}`, () => {
      expect(toHex(encodeAsapMessage(row.message))).toBe(toHex(bytes));
    });
    it(`round-trips ${row.name}`, () => {
      expect(toHex(encodeAsapMessage(decodeAsapMessage(bytes)))).toBe(toHex(bytes));
    });
  }

  it('accepts a length field that stops before the final padding (RFC 5352 style)', () => {
    // Handle resolution for "Pool5": parameter length 9, message length 13, 3 bytes of padding.
    const m = decodeAsapMessage(fromHex('0500000d 00090009 506f6f6c35 000000'));
    expect(m).toEqual({ type: T.HandleResolution, handle: poolHandleFromString('Pool5') });
  });
});

interface ErrorRow {
  name: string;
  hex: string;
  code: string;
  offset: number;
}

const errorRows: ErrorRow[] = [
  { name: 'fewer bytes than a header', hex: '0500', code: 'TRUNCATED', offset: 2 },
  { name: 'message length below 4', hex: '05000002', code: 'BAD_LENGTH', offset: 2 },
  { name: 'message length past the buffer', hex: '05000020 0009000c 4563686f506f6f6c', code: 'TRUNCATED', offset: 2 },
  { name: 'bytes after the message', hex: `05000010 ${HANDLE} 00000000`, code: 'BAD_LENGTH', offset: 16 },
  { name: 'final padding missing', hex: '0500000d 00090009 506f6f6c35', code: 'BAD_PADDING', offset: 13 },
  { name: 'non-zero final padding', hex: '0500000d 00090009 506f6f6c35 000100', code: 'BAD_PADDING', offset: 14 },
  { name: 'unknown message type 0x0f', hex: '0f000004', code: 'UNKNOWN_TYPE', offset: 0 },
  { name: 'message type 0', hex: '00000004', code: 'UNKNOWN_TYPE', offset: 0 },
  { name: 'parameter length running past the message', hex: '05000010 00090040 4563686f506f6f6c', code: 'TRUNCATED', offset: 6 },
  { name: 'registration without a pool element', hex: msg(1, 0, HANDLE), code: 'MISSING_PARAMETER', offset: 0 },
  { name: 'deregistration without a PE identifier', hex: msg(2, 0, HANDLE), code: 'MISSING_PARAMETER', offset: 0 },
  { name: 'a cookie inside a registration', hex: msg(1, 0, HANDLE + PE + COOKIE), code: 'BAD_NESTING', offset: 56 },
  { name: 'two pool handles in a handle resolution', hex: msg(5, 0, HANDLE + HANDLE), code: 'BAD_NESTING', offset: 16 },
  { name: 'keep-alive cut inside its server identifier', hex: '07000006 1111', code: 'BAD_PADDING', offset: 6 },
  { name: 'keep-alive without its server identifier', hex: '07000004', code: 'TRUNCATED', offset: 4 },
  { name: 'keep-alive without a pool handle', hex: '07000008 11111111', code: 'MISSING_PARAMETER', offset: 0 },
];

describe('ASAP - decode errors', () => {
  for (const row of errorRows) {
    it(`refuses ${row.name} with ${row.code} at byte ${row.offset}`, () => {
      let caught: unknown;
      try {
        decodeAsapMessage(fromHex(row.hex));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(DecodeError);
      const e = caught as DecodeError;
      expect({ code: e.code, offset: e.offset }).toEqual({ code: row.code, offset: row.offset });
    });
  }
});
