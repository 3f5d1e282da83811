import { describe, expect, it } from 'vitest';
import { EnrpFlags, EnrpMessageType, HandleUpdateAction, decodeEnrpMessage, encodeEnrpMessage, type EnrpMessage } from '../../protocols/enrp/index.js';
import { DecodeError } from '../../protocols/errors.js';
import { ErrorCause, PolicyType, poolHandleFromString, type PoolElementParameter, type ServerInformation } from '../../protocols/parameters/index.js';
import { fromHex, msg, toHex } from './hex.js';

const handle = poolHandleFromString('EchoPool');
const HANDLE = '0009000c 4563686f506f6f6c';
const TCP8000 = '00050010 1f400000 00010008 c0000201';
const element: PoolElementParameter = {
  identifier: 0x12345678,
  homeRegistrarId: 0x11111111,
  registrationLife: 30000,
  userTransport: { protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: 0 },
  policy: { type: PolicyType.RoundRobin },
};
const PE = `000a0028 12345678 11111111 00007530 ${TCP8000} 00080008 00000001`;
const server: ServerInformation = { registrarId: 0x11111111, transport: { protocol: 'tcp', port: 8000, addresses: ['192.0.2.1'], transportUse: 0 } };
const SERVER = `000b0018 11111111 ${TCP8000}`;
const IDS = '11111111 22222222';
// rserpool's PE Owner Identity (0x8f01, skipped by RFC peers): a 32-byte SHA-256.
const digest = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
const OWNER = `8f010024 ${Array.from(digest, (b) => b.toString(16)).join('')}`;
const ids = { senderServerId: 0x11111111, receiverServerId: 0x22222222 };

interface Row {
  name: string;
  message: EnrpMessage;
  hex: string;
}

const T = EnrpMessageType;
const rows: Row[] = [
  { name: 'ENRP_PRESENCE', message: { type: T.Presence, ...ids, checksum: 0x1234, server }, hex: msg(1, 0, `${IDS} 000f0006 12340000 ${SERVER}`) },
  {
    name: 'ENRP_PRESENCE (R flag, no server information)',
    message: { type: T.Presence, flags: EnrpFlags.ReplyRequired, ...ids, checksum: 0xffff },
    hex: msg(1, 1, `${IDS} 000f0006 ffff0000`),
  },
  { name: 'ENRP_HANDLE_TABLE_REQUEST (W flag)', message: { type: T.HandleTableRequest, flags: EnrpFlags.OwnChildrenOnly, ...ids }, hex: msg(2, 1, IDS) },
  {
    name: 'ENRP_HANDLE_TABLE_RESPONSE (M flag, two pools)',
    message: {
      type: T.HandleTableResponse,
      flags: EnrpFlags.MoreToSend,
      ...ids,
      pools: [
        { handle, elements: [element, element] },
        { handle: poolHandleFromString('Pool5'), elements: [element] },
      ],
    },
    hex: msg(3, 2, `${IDS} ${HANDLE} ${PE} ${PE} 00090009 506f6f6c35000000 ${PE}`),
  },
  {
    name: 'ENRP_HANDLE_TABLE_RESPONSE (R flag, empty)',
    message: { type: T.HandleTableResponse, flags: EnrpFlags.Reject, ...ids, pools: [] },
    hex: msg(3, 1, IDS),
  },
  {
    name: 'ENRP_HANDLE_UPDATE (add)',
    message: { type: T.HandleUpdate, ...ids, action: HandleUpdateAction.AddOrUpdate, handle, element },
    hex: msg(4, 0, `${IDS} 0000 0000 ${HANDLE} ${PE}`),
  },
  {
    name: 'ENRP_HANDLE_UPDATE (delete)',
    message: { type: T.HandleUpdate, ...ids, action: HandleUpdateAction.Delete, handle, element },
    hex: msg(4, 0, `${IDS} 0001 0000 ${HANDLE} ${PE}`),
  },
  {
    name: 'ENRP_HANDLE_UPDATE (add, with the PE owner identity after the PE)',
    message: { type: T.HandleUpdate, ...ids, action: HandleUpdateAction.AddOrUpdate, handle, element, ownerIdentity: digest },
    hex: msg(4, 0, `${IDS} 0000 0000 ${HANDLE} ${PE} ${OWNER}`),
  },
  {
    name: 'ENRP_HANDLE_TABLE_RESPONSE (owner identity of the second PE only)',
    message: { type: T.HandleTableResponse, ...ids, pools: [{ handle, elements: [element, element, element], owners: [undefined, digest, undefined] }] },
    hex: msg(3, 0, `${IDS} ${HANDLE} ${PE} ${PE} ${OWNER} ${PE}`),
  },
  {
    name: 'ENRP_PRESENCE (with an unreachable report: identifier, then the pool handle)',
    message: { type: T.Presence, ...ids, checksum: 0x1234, unreachable: { identifier: 0x12345678, handle } },
    hex: msg(1, 0, `${IDS} 000f0006 12340000 8f020010 12345678 4563686f506f6f6c`),
  },
  { name: 'ENRP_LIST_REQUEST', message: { type: T.ListRequest, ...ids }, hex: msg(5, 0, IDS) },
  { name: 'ENRP_LIST_RESPONSE', message: { type: T.ListResponse, ...ids, servers: [server, server] }, hex: msg(6, 0, `${IDS} ${SERVER} ${SERVER}`) },
  { name: 'ENRP_INIT_TAKEOVER', message: { type: T.InitTakeover, ...ids, targetServerId: 0x33333333 }, hex: msg(7, 0, `${IDS} 33333333`) },
  { name: 'ENRP_INIT_TAKEOVER_ACK', message: { type: T.InitTakeoverAck, ...ids, targetServerId: 0x33333333 }, hex: msg(8, 0, `${IDS} 33333333`) },
  { name: 'ENRP_TAKEOVER_SERVER', message: { type: T.TakeoverServer, ...ids, targetServerId: 0x33333333 }, hex: msg(9, 0, `${IDS} 33333333`) },
  {
    name: 'ENRP_ERROR',
    message: { type: T.Error, ...ids, error: [{ code: ErrorCause.RejectionDueToSecurityConsiderations, info: new Uint8Array(0) }] },
    hex: msg(0xa, 0, `${IDS} 000c0008 000a0004`),
  },
];

describe('ENRP - table', () => {
  it('covers all 10 message types', () => {
    expect(new Set(rows.map((r) => r.message.type)).size).toBe(10);
  });
  it('writes the fixed-size messages at their exact sizes', () => {
    expect(encodeEnrpMessage({ type: T.ListRequest, ...ids }).length).toBe(12);
    expect(encodeEnrpMessage({ type: T.HandleTableRequest, ...ids }).length).toBe(12);
    expect(encodeEnrpMessage({ type: T.TakeoverServer, ...ids, targetServerId: 1 }).length).toBe(16);
  });
  for (const row of rows) {
    const bytes = fromHex(row.hex);
    it(`decodes ${row.name}`, () => {
      expect(decodeEnrpMessage(bytes)).toEqual(row.message);
    });
    it(`encodes ${row.name}`, () => {
      expect(toHex(encodeEnrpMessage(row.message))).toBe(toHex(bytes));
    });
    it(`round-trips ${row.name}`, () => {
      expect(toHex(encodeEnrpMessage(decodeEnrpMessage(bytes)))).toBe(toHex(bytes));
    });
  }
});

interface ErrorRow {
  name: string;
  hex: string;
  code: string;
  offset: number;
}

const errorRows: ErrorRow[] = [
  { name: 'unknown message type 0x0b', hex: msg(0xb, 0, IDS), code: 'UNKNOWN_TYPE', offset: 0 },
  { name: 'server ids cut short', hex: '05000008 11111111', code: 'TRUNCATED', offset: 8 },
  { name: 'takeover without its target', hex: msg(7, 0, IDS), code: 'TRUNCATED', offset: 12 },
  { name: 'presence without PE checksum', hex: msg(1, 0, `${IDS} ${SERVER}`), code: 'MISSING_PARAMETER', offset: 0 },
  { name: 'handle update action 2', hex: msg(4, 0, `${IDS} 0002 0000 ${HANDLE} ${PE}`), code: 'BAD_VALUE', offset: 12 },
  { name: 'handle update without a pool element', hex: msg(4, 0, `${IDS} 0000 0000 ${HANDLE}`), code: 'MISSING_PARAMETER', offset: 0 },
  { name: 'handle table response with a PE before any handle', hex: msg(3, 0, `${IDS} ${PE}`), code: 'BAD_NESTING', offset: 12 },
  { name: 'handle table response holding server information', hex: msg(3, 0, `${IDS} ${HANDLE} ${SERVER}`), code: 'BAD_NESTING', offset: 24 },
  { name: 'an owner identity right after a pool handle', hex: msg(3, 0, `${IDS} ${HANDLE} ${OWNER}`), code: 'BAD_NESTING', offset: 24 },
  { name: 'two owner identities after one PE', hex: msg(3, 0, `${IDS} ${HANDLE} ${PE} ${OWNER} ${OWNER}`), code: 'BAD_NESTING', offset: 100 },
  { name: 'an owner identity of 31 bytes', hex: msg(4, 0, `${IDS} 0000 0000 ${HANDLE} ${PE} 8f010023 ${'00'.repeat(32)}`), code: 'BAD_LENGTH', offset: 70 },
  { name: 'an owner identity in a list response', hex: msg(6, 0, `${IDS} ${OWNER}`), code: 'BAD_NESTING', offset: 12 },
  { name: 'list request holding a pool handle', hex: msg(5, 0, `${IDS} ${HANDLE}`), code: 'BAD_NESTING', offset: 12 },
  { name: 'server information length past the message', hex: msg(6, 0, `${IDS} 000b00ff 11111111`), code: 'TRUNCATED', offset: 14 },
];

describe('ENRP - decode errors', () => {
  for (const row of errorRows) {
    it(`refuses ${row.name} with ${row.code} at byte ${row.offset}`, () => {
      let caught: unknown;
      try {
        decodeEnrpMessage(fromHex(row.hex));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(DecodeError);
      const e = caught as DecodeError;
      expect({ code: e.code, offset: e.offset }).toEqual({ code: row.code, offset: row.offset });
    });
  }
});
