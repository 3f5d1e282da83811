import { DecodeError, DecodeErrorCode, EncodeError } from '../errors.js';
import {
  MessageParameters,
  ParameterKind,
  assertNever,
  bytesParameterSize,
  checkU32,
  operationErrorSize,
  poolElementSize,
  putBytesParameter,
  putOperationError,
  putPeChecksum,
  putOwnerIdentity,
  putPoolElement,
  putServerInformation,
  putUnreachableReport,
  putUnknowns,
  readMessageParameters,
  serverInformationSize,
  unknownSize,
  unreachableReportSize,
} from '../parameters/codec.js';
import { OWNER_IDENTITY_BYTES, ParameterType } from '../parameters/types.js';
import { TlvReader, checkFlags, endTlv, putU16, putU32, readMessageHeader } from '../tlv.js';
import { EnrpMessageType, HandleUpdateAction, type EnrpHandleUpdate, type EnrpMessage, type EnrpPresence } from './types.js';

const OWNER_SIZE = 4 + OWNER_IDENTITY_BYTES;

function messageSize(m: EnrpMessage): number {
  let n = 12 + unknownSize(m.unknown);
  switch (m.type) {
    case EnrpMessageType.Presence:
      return n + 8 + (m.server ? serverInformationSize(m.server) : 0) + (m.unreachable ? unreachableReportSize(m.unreachable) : 0);
    case EnrpMessageType.HandleTableRequest:
    case EnrpMessageType.ListRequest:
      return n;
    case EnrpMessageType.HandleTableResponse:
      for (const pool of m.pools) {
        n += bytesParameterSize(pool.handle);
        for (const e of pool.elements) n += poolElementSize(e);
        if (pool.owners) {
          if (pool.owners.length > pool.elements.length) throw new EncodeError(`${pool.owners.length} PE owner identities for ${pool.elements.length} PEs`);
          for (const o of pool.owners) if (o) n += OWNER_SIZE;
        }
      }
      return n;
    case EnrpMessageType.HandleUpdate:
      return n + 4 + bytesParameterSize(m.handle) + poolElementSize(m.element) + (m.ownerIdentity ? OWNER_SIZE : 0);
    case EnrpMessageType.ListResponse:
      for (const s of m.servers) n += serverInformationSize(s);
      return n;
    case EnrpMessageType.InitTakeover:
    case EnrpMessageType.InitTakeoverAck:
    case EnrpMessageType.TakeoverServer:
      return n + 4;
    case EnrpMessageType.Error:
      return n + operationErrorSize(m.error);
    default:
      return assertNever(m, 'ENRP message');
  }
}

/** Writes the message at b[p] (the size computed first); returns the end. */
function putEnrpMessage(m: EnrpMessage, b: Uint8Array, p: number): number {
  const start = p;
  const flags = checkFlags(m.flags);
  p = putU32(b, p + 4, checkU32(m.senderServerId, 'sender server id'));
  p = putU32(b, p, checkU32(m.receiverServerId, 'receiver server id'));
  switch (m.type) {
    case EnrpMessageType.Presence:
      p = putPeChecksum(b, p, m.checksum);
      if (m.server) p = putServerInformation(b, p, m.server);
      if (m.unreachable) p = putUnreachableReport(b, p, m.unreachable);
      break;
    case EnrpMessageType.HandleTableRequest:
    case EnrpMessageType.ListRequest:
      break;
    case EnrpMessageType.HandleTableResponse:
      for (const pool of m.pools) {
        p = putBytesParameter(b, p, ParameterType.PoolHandle, pool.handle);
        const owners = pool.owners;
        for (let i = 0; i < pool.elements.length; i++) {
          p = putPoolElement(b, p, pool.elements[i]!);
          const o = owners?.[i];
          if (o) p = putOwnerIdentity(b, p, o);
        }
      }
      break;
    case EnrpMessageType.HandleUpdate:
      if (m.action !== HandleUpdateAction.AddOrUpdate && m.action !== HandleUpdateAction.Delete) {
        throw new EncodeError(`handle update action ${String(m.action)} is neither 0 nor 1`);
      }
      p = putU16(b, p, m.action);
      p = putU16(b, p, 0);
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      p = putPoolElement(b, p, m.element);
      if (m.ownerIdentity) p = putOwnerIdentity(b, p, m.ownerIdentity);
      break;
    case EnrpMessageType.ListResponse:
      for (const s of m.servers) p = putServerInformation(b, p, s);
      break;
    case EnrpMessageType.InitTakeover:
    case EnrpMessageType.InitTakeoverAck:
    case EnrpMessageType.TakeoverServer:
      p = putU32(b, p, checkU32(m.targetServerId, 'target server id'));
      break;
    case EnrpMessageType.Error:
      p = putOperationError(b, p, m.error);
      break;
    default:
      assertNever(m, 'ENRP message');
  }
  p = putUnknowns(b, p, m.unknown);
  return endTlv(b, start, p, (m.type << 8) | flags);
}

/** RFC 5353 wire bytes; the length field counts the final padding (as RSPLIB). */
export function encodeEnrpMessage(m: EnrpMessage): Uint8Array {
  const size = messageSize(m);
  const b = new Uint8Array(size);
  const end = putEnrpMessage(m, b, 0);
  if (end !== size) throw new EncodeError(`encoder wrote ${end} bytes, sized ${size}`);
  return b;
}

/**
 * Writes the message's wire bytes (as `encodeEnrpMessage`) into
 * target[offset..] and returns their exact length; EncodeError, before
 * anything is written, when they do not fit. On an EncodeError about a
 * value, part of that span may have been written.
 */
export function encodeEnrpMessageInto(m: EnrpMessage, target: Uint8Array, offset = 0): number {
  const size = messageSize(m);
  if (!Number.isInteger(offset) || offset < 0 || offset > target.length || target.length - offset < size) {
    throw new EncodeError(`${size}-byte ENRP message does not fit at offset ${offset} of a ${target.length}-byte buffer`);
  }
  const end = putEnrpMessage(m, target, offset);
  if (end - offset !== size) throw new EncodeError(`encoder wrote ${end - offset} bytes, sized ${size}`);
  return size;
}

function isEnrpType(t: number): t is EnrpMessageType {
  return t >= EnrpMessageType.Presence && t <= EnrpMessageType.Error;
}

/** One whole ENRP message; throws only DecodeError. */
export function decodeEnrpMessage(bytes: Uint8Array): EnrpMessage {
  const h = readMessageHeader(bytes);
  const type = h.type;
  if (!isEnrpType(type)) {
    throw new DecodeError(DecodeErrorCode.UnknownType, `unknown ENRP message type 0x${type.toString(16)}`, { offset: 0, tlvType: type });
  }
  const r = new TlvReader(bytes, 4, bytes.length, type);
  const senderServerId = r.u32('sender server id');
  const receiverServerId = r.u32('receiver server id');
  const base = { senderServerId, receiverServerId, ...(h.flags === 0 ? {} : { flags: h.flags }) };
  let m: EnrpMessage;
  let p: MessageParameters;
  switch (type) {
    case EnrpMessageType.Presence: {
      p = new MessageParameters(type, ParameterKind.Checksum | ParameterKind.Server | ParameterKind.UnreachableReport);
      readMessageParameters(r, p);
      const presence: EnrpPresence = { type, ...base, checksum: p.required(p.checksum, 'PE checksum') };
      if (p.server) presence.server = p.server;
      if (p.report) presence.unreachable = p.report;
      m = presence;
      break;
    }
    case EnrpMessageType.HandleTableRequest:
    case EnrpMessageType.ListRequest:
      p = new MessageParameters(type, 0);
      readMessageParameters(r, p);
      m = { type, ...base };
      break;
    case EnrpMessageType.HandleTableResponse:
      // Each pool handle opens an entry; the PEs after it belong to it.
      p = new MessageParameters(type, 0, 0, true);
      readMessageParameters(r, p);
      for (const pool of p.pools!) while (pool.owners && pool.owners.length < pool.elements.length) pool.owners.push(undefined);
      m = { type, ...base, pools: p.pools! };
      break;
    case EnrpMessageType.HandleUpdate: {
      const actionOffset = r.position;
      const action = r.u16('update action');
      r.u16('reserved');
      if (action !== HandleUpdateAction.AddOrUpdate && action !== HandleUpdateAction.Delete) {
        throw new DecodeError(DecodeErrorCode.BadValue, `handle update action ${action} is neither 0 nor 1`, { offset: actionOffset, tlvType: type });
      }
      p = new MessageParameters(type, ParameterKind.Handle | ParameterKind.Element | ParameterKind.Owner);
      readMessageParameters(r, p);
      const update: EnrpHandleUpdate = {
        type,
        ...base,
        action: action === HandleUpdateAction.Delete ? HandleUpdateAction.Delete : HandleUpdateAction.AddOrUpdate,
        handle: p.required(p.handle, 'pool handle'),
        element: p.required(p.element, 'pool element'),
      };
      if (p.owner) update.ownerIdentity = p.owner;
      m = update;
      break;
    }
    case EnrpMessageType.ListResponse:
      p = new MessageParameters(type, 0, ParameterKind.Server);
      readMessageParameters(r, p);
      m = { type, ...base, servers: p.servers! };
      break;
    case EnrpMessageType.InitTakeover:
    case EnrpMessageType.InitTakeoverAck:
    case EnrpMessageType.TakeoverServer: {
      const targetServerId = r.u32('target server id');
      p = new MessageParameters(type, 0);
      readMessageParameters(r, p);
      m = { type, ...base, targetServerId };
      break;
    }
    case EnrpMessageType.Error:
      p = new MessageParameters(type, ParameterKind.Error);
      readMessageParameters(r, p);
      m = { type, ...base, error: p.required(p.causes, 'operation error') };
      break;
    default:
      return assertNever(type, 'ENRP message type');
  }
  const unknown = p.finish();
  if (unknown) m.unknown = unknown;
  return m;
}
