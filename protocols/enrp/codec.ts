import { DecodeError, DecodeErrorCode, EncodeError } from '../errors.js';
import {
  ParameterList,
  assertNever,
  bytesParameterSize,
  checkU32,
  operationErrorSize,
  poolElementSize,
  serverInformationSize,
  unknownSize,
  writeBytesParameter,
  writeOperationError,
  writePeChecksum,
  writePoolElement,
  writeServerInformation,
  writeUnknowns,
} from '../parameters/codec.js';
import { ParameterType } from '../parameters/types.js';
import { TlvReader, TlvWriter, checkFlags, readMessageHeader } from '../tlv.js';
import { EnrpMessageType, HandleUpdateAction, type EnrpMessage, type EnrpPoolEntry, type EnrpPresence } from './types.js';

function messageSize(m: EnrpMessage): number {
  let n = 12 + unknownSize(m.unknown);
  switch (m.type) {
    case EnrpMessageType.Presence:
      return n + 8 + (m.server ? serverInformationSize(m.server) : 0);
    case EnrpMessageType.HandleTableRequest:
    case EnrpMessageType.ListRequest:
      return n;
    case EnrpMessageType.HandleTableResponse:
      for (const pool of m.pools) {
        n += bytesParameterSize(pool.handle);
        for (const e of pool.elements) n += poolElementSize(e);
      }
      return n;
    case EnrpMessageType.HandleUpdate:
      return n + 4 + bytesParameterSize(m.handle) + poolElementSize(m.element);
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

/** RFC 5353 wire bytes; the length field counts the final padding (as RSPLIB). */
export function encodeEnrpMessage(m: EnrpMessage): Uint8Array {
  const w = new TlvWriter(messageSize(m));
  const start = w.begin((m.type << 8) | checkFlags(m.flags));
  w.u32(checkU32(m.senderServerId, 'sender server id'));
  w.u32(checkU32(m.receiverServerId, 'receiver server id'));
  switch (m.type) {
    case EnrpMessageType.Presence:
      writePeChecksum(w, m.checksum);
      if (m.server) writeServerInformation(w, m.server);
      break;
    case EnrpMessageType.HandleTableRequest:
    case EnrpMessageType.ListRequest:
      break;
    case EnrpMessageType.HandleTableResponse:
      for (const pool of m.pools) {
        writeBytesParameter(w, ParameterType.PoolHandle, pool.handle);
        for (const e of pool.elements) writePoolElement(w, e);
      }
      break;
    case EnrpMessageType.HandleUpdate:
      if (m.action !== HandleUpdateAction.AddOrUpdate && m.action !== HandleUpdateAction.Delete) {
        throw new EncodeError(`handle update action ${String(m.action)} is neither 0 nor 1`);
      }
      w.u16(m.action);
      w.u16(0);
      writeBytesParameter(w, ParameterType.PoolHandle, m.handle);
      writePoolElement(w, m.element);
      break;
    case EnrpMessageType.ListResponse:
      for (const s of m.servers) writeServerInformation(w, s);
      break;
    case EnrpMessageType.InitTakeover:
    case EnrpMessageType.InitTakeoverAck:
    case EnrpMessageType.TakeoverServer:
      w.u32(checkU32(m.targetServerId, 'target server id'));
      break;
    case EnrpMessageType.Error:
      writeOperationError(w, m.error);
      break;
    default:
      assertNever(m, 'ENRP message');
  }
  writeUnknowns(w, m.unknown);
  w.end(start);
  return w.finish();
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
  let p: ParameterList;
  switch (type) {
    case EnrpMessageType.Presence: {
      p = new ParameterList(r, type);
      const presence: EnrpPresence = { type, ...base, checksum: p.require('checksum', 'PE checksum').checksum };
      const server = p.take('server');
      if (server) presence.server = server.server;
      m = presence;
      break;
    }
    case EnrpMessageType.HandleTableRequest:
    case EnrpMessageType.ListRequest:
      p = new ParameterList(r, type);
      m = { type, ...base };
      break;
    case EnrpMessageType.HandleTableResponse: {
      p = new ParameterList(r, type);
      // Each pool handle opens an entry; the PEs after it belong to it.
      const pools: EnrpPoolEntry[] = [];
      for (const { param, header } of p.rest()) {
        const last = pools[pools.length - 1];
        if (param.kind === 'handle') pools.push({ handle: param.handle, elements: [] });
        else if (param.kind === 'element' && last) last.elements.push(param.element);
        else throw new DecodeError(DecodeErrorCode.BadNesting, 'handle table response holds pool handles and their PEs', { offset: header.offset, tlvType: header.type });
      }
      m = { type, ...base, pools };
      break;
    }
    case EnrpMessageType.HandleUpdate: {
      const actionOffset = r.position;
      const action = r.u16('update action');
      r.u16('reserved');
      if (action !== HandleUpdateAction.AddOrUpdate && action !== HandleUpdateAction.Delete) {
        throw new DecodeError(DecodeErrorCode.BadValue, `handle update action ${action} is neither 0 nor 1`, { offset: actionOffset, tlvType: type });
      }
      p = new ParameterList(r, type);
      m = {
        type,
        ...base,
        action: action === HandleUpdateAction.Delete ? HandleUpdateAction.Delete : HandleUpdateAction.AddOrUpdate,
        handle: p.require('handle', 'pool handle').handle,
        element: p.require('element', 'pool element').element,
      };
      break;
    }
    case EnrpMessageType.ListResponse:
      p = new ParameterList(r, type);
      m = { type, ...base, servers: p.servers() };
      break;
    case EnrpMessageType.InitTakeover:
    case EnrpMessageType.InitTakeoverAck:
    case EnrpMessageType.TakeoverServer: {
      const targetServerId = r.u32('target server id');
      p = new ParameterList(r, type);
      m = { type, ...base, targetServerId };
      break;
    }
    case EnrpMessageType.Error:
      p = new ParameterList(r, type);
      m = { type, ...base, error: p.require('error', 'operation error').causes };
      break;
    default:
      return assertNever(type, 'ENRP message type');
  }
  const unknown = p.finish();
  if (unknown) m.unknown = unknown;
  return m;
}
