import { DecodeError, DecodeErrorCode } from '../errors.js';
import {
  ParameterList,
  assertNever,
  checkU32,
  bytesParameterSize,
  operationErrorSize,
  poolElementSize,
  policySize,
  transportSize,
  unknownSize,
  writeBytesParameter,
  writeOperationError,
  writePolicy,
  writePoolElement,
  writeTransport,
  writeU32Parameter,
  writeUnknowns,
} from '../parameters/codec.js';
import { ParameterType } from '../parameters/types.js';
import { TlvReader, TlvWriter, checkFlags, readMessageHeader } from '../tlv.js';
import { AsapMessageType, type AsapDeregistrationResponse, type AsapMessage, type AsapRegistrationResponse } from './types.js';

function messageSize(m: AsapMessage): number {
  let n = 4 + unknownSize(m.unknown);
  switch (m.type) {
    case AsapMessageType.Registration:
      return n + bytesParameterSize(m.handle) + poolElementSize(m.element);
    case AsapMessageType.Deregistration:
    case AsapMessageType.EndpointKeepAliveAck:
    case AsapMessageType.EndpointUnreachable:
      return n + bytesParameterSize(m.handle) + 8;
    case AsapMessageType.RegistrationResponse:
    case AsapMessageType.DeregistrationResponse:
      return n + bytesParameterSize(m.handle) + 8 + (m.error ? operationErrorSize(m.error) : 0);
    case AsapMessageType.HandleResolution:
      return n + bytesParameterSize(m.handle) + (m.items === undefined ? 0 : 8);
    case AsapMessageType.HandleResolutionResponse:
      n += bytesParameterSize(m.handle) + (m.policy ? policySize(m.policy) : 0) + (m.error ? operationErrorSize(m.error) : 0);
      for (const e of m.elements) n += poolElementSize(e);
      return n;
    case AsapMessageType.EndpointKeepAlive:
      return n + 4 + bytesParameterSize(m.handle) + (m.identifier === undefined ? 0 : 8);
    case AsapMessageType.ServerAnnounce:
      n += 4;
      for (const t of m.transports) n += transportSize(t);
      return n;
    case AsapMessageType.Cookie:
    case AsapMessageType.CookieEcho:
      return n + bytesParameterSize(m.cookie);
    case AsapMessageType.BusinessCard:
      n += bytesParameterSize(m.handle);
      for (const e of m.elements) n += poolElementSize(e);
      return n;
    case AsapMessageType.Error:
      return n + operationErrorSize(m.error);
    default:
      return assertNever(m, 'ASAP message');
  }
}

const handle = (w: TlvWriter, h: Uint8Array): void => writeBytesParameter(w, ParameterType.PoolHandle, h);
const peId = (w: TlvWriter, id: number): void => writeU32Parameter(w, ParameterType.PeIdentifier, id, 'PE identifier');

/** RFC 5352 wire bytes; the length field counts the final padding (as RSPLIB). */
export function encodeAsapMessage(m: AsapMessage): Uint8Array {
  const w = new TlvWriter(messageSize(m));
  const start = w.begin((m.type << 8) | checkFlags(m.flags));
  switch (m.type) {
    case AsapMessageType.Registration:
      handle(w, m.handle);
      writePoolElement(w, m.element);
      break;
    case AsapMessageType.Deregistration:
    case AsapMessageType.EndpointKeepAliveAck:
    case AsapMessageType.EndpointUnreachable:
      handle(w, m.handle);
      peId(w, m.identifier);
      break;
    case AsapMessageType.RegistrationResponse:
    case AsapMessageType.DeregistrationResponse:
      handle(w, m.handle);
      peId(w, m.identifier);
      if (m.error) writeOperationError(w, m.error);
      break;
    case AsapMessageType.HandleResolution:
      handle(w, m.handle);
      if (m.items !== undefined) writeU32Parameter(w, ParameterType.HandleResolutionOption, m.items, 'handle resolution items');
      break;
    case AsapMessageType.HandleResolutionResponse:
      handle(w, m.handle);
      if (m.policy) writePolicy(w, m.policy);
      for (const e of m.elements) writePoolElement(w, e);
      if (m.error) writeOperationError(w, m.error);
      break;
    case AsapMessageType.EndpointKeepAlive:
      w.u32(checkU32(m.serverId, 'server identifier'));
      handle(w, m.handle);
      if (m.identifier !== undefined) peId(w, m.identifier);
      break;
    case AsapMessageType.ServerAnnounce:
      w.u32(checkU32(m.serverId, 'server identifier'));
      for (const t of m.transports) writeTransport(w, t);
      break;
    case AsapMessageType.Cookie:
    case AsapMessageType.CookieEcho:
      writeBytesParameter(w, ParameterType.Cookie, m.cookie);
      break;
    case AsapMessageType.BusinessCard:
      handle(w, m.handle);
      for (const e of m.elements) writePoolElement(w, e);
      break;
    case AsapMessageType.Error:
      writeOperationError(w, m.error);
      break;
    default:
      assertNever(m, 'ASAP message');
  }
  writeUnknowns(w, m.unknown);
  w.end(start);
  return w.finish();
}

function isAsapType(t: number): t is AsapMessageType {
  return t >= AsapMessageType.Registration && t <= AsapMessageType.Error;
}

/** One whole ASAP message; throws only DecodeError. */
export function decodeAsapMessage(bytes: Uint8Array): AsapMessage {
  const h = readMessageHeader(bytes);
  const type = h.type;
  if (!isAsapType(type)) {
    throw new DecodeError(DecodeErrorCode.UnknownType, `unknown ASAP message type 0x${type.toString(16)}`, { offset: 0, tlvType: type });
  }
  const r = new TlvReader(bytes, 4, bytes.length, type);
  // Registrar id ahead of the parameters (RFC 5352 2.2.7, 2.2.10).
  const serverId = type === AsapMessageType.EndpointKeepAlive || type === AsapMessageType.ServerAnnounce ? r.u32('server identifier') : 0;
  const p = new ParameterList(r, type);
  const base = h.flags === 0 ? {} : { flags: h.flags };
  let m: AsapMessage;
  switch (type) {
    case AsapMessageType.Registration:
      m = { type, ...base, handle: p.require('handle', 'pool handle').handle, element: p.require('element', 'pool element').element };
      break;
    case AsapMessageType.Deregistration:
    case AsapMessageType.EndpointKeepAliveAck:
    case AsapMessageType.EndpointUnreachable:
      m = { type, ...base, handle: p.require('handle', 'pool handle').handle, identifier: p.require('identifier', 'PE identifier').identifier };
      break;
    case AsapMessageType.RegistrationResponse:
    case AsapMessageType.DeregistrationResponse: {
      const r: AsapRegistrationResponse | AsapDeregistrationResponse = {
        type,
        ...base,
        handle: p.require('handle', 'pool handle').handle,
        identifier: p.require('identifier', 'PE identifier').identifier,
      };
      const error = p.take('error');
      if (error) r.error = error.causes;
      m = r;
      break;
    }
    case AsapMessageType.HandleResolution: {
      m = { type, ...base, handle: p.require('handle', 'pool handle').handle };
      const option = p.take('hrOption');
      if (option) m.items = option.items;
      break;
    }
    case AsapMessageType.HandleResolutionResponse: {
      m = { type, ...base, handle: p.require('handle', 'pool handle').handle, elements: p.elements() };
      const policy = p.take('policy');
      if (policy) m.policy = policy.policy;
      const error = p.take('error');
      if (error) m.error = error.causes;
      break;
    }
    case AsapMessageType.EndpointKeepAlive: {
      m = { type, ...base, serverId, handle: p.require('handle', 'pool handle').handle };
      const id = p.take('identifier');
      if (id) m.identifier = id.identifier;
      break;
    }
    case AsapMessageType.ServerAnnounce:
      m = { type, ...base, serverId, transports: p.transports() };
      break;
    case AsapMessageType.Cookie:
    case AsapMessageType.CookieEcho:
      m = { type, ...base, cookie: p.require('cookie', 'cookie').cookie };
      break;
    case AsapMessageType.BusinessCard:
      m = { type, ...base, handle: p.require('handle', 'pool handle').handle, elements: p.elements() };
      break;
    case AsapMessageType.Error:
      m = { type, ...base, error: p.require('error', 'operation error').causes };
      break;
    default:
      return assertNever(type, 'ASAP message type');
  }
  const unknown = p.finish();
  if (unknown) m.unknown = unknown;
  return m;
}
