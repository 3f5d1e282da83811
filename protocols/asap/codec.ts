import { DecodeError, DecodeErrorCode, EncodeError } from '../errors.js';
import {
  MessageParameters,
  ParameterKind,
  assertNever,
  checkU32,
  bytesParameterSize,
  operationErrorSize,
  poolElementSize,
  policySize,
  putBytesParameter,
  putOperationError,
  putPolicy,
  putPoolElement,
  putTransport,
  putU32Parameter,
  putUnknowns,
  readMessageParameters,
  transportSize,
  unknownSize,
} from '../parameters/codec.js';
import { ParameterType } from '../parameters/types.js';
import { TlvReader, checkFlags, endTlv, putU32, readMessageHeader } from '../tlv.js';
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

/** Writes the message at b[p] (the size computed first); returns the end. */
function putAsapMessage(m: AsapMessage, b: Uint8Array, p: number): number {
  const start = p;
  const flags = checkFlags(m.flags);
  p += 4;
  switch (m.type) {
    case AsapMessageType.Registration:
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      p = putPoolElement(b, p, m.element);
      break;
    case AsapMessageType.Deregistration:
    case AsapMessageType.EndpointKeepAliveAck:
    case AsapMessageType.EndpointUnreachable:
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      p = putU32Parameter(b, p, ParameterType.PeIdentifier, m.identifier, 'PE identifier');
      break;
    case AsapMessageType.RegistrationResponse:
    case AsapMessageType.DeregistrationResponse:
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      p = putU32Parameter(b, p, ParameterType.PeIdentifier, m.identifier, 'PE identifier');
      if (m.error) p = putOperationError(b, p, m.error);
      break;
    case AsapMessageType.HandleResolution:
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      if (m.items !== undefined) p = putU32Parameter(b, p, ParameterType.HandleResolutionOption, m.items, 'handle resolution items');
      break;
    case AsapMessageType.HandleResolutionResponse: {
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      if (m.policy) p = putPolicy(b, p, m.policy);
      const elements = m.elements;
      for (let i = 0; i < elements.length; i++) p = putPoolElement(b, p, elements[i]!);
      if (m.error) p = putOperationError(b, p, m.error);
      break;
    }
    case AsapMessageType.EndpointKeepAlive:
      p = putU32(b, p, checkU32(m.serverId, 'server identifier'));
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      if (m.identifier !== undefined) p = putU32Parameter(b, p, ParameterType.PeIdentifier, m.identifier, 'PE identifier');
      break;
    case AsapMessageType.ServerAnnounce: {
      p = putU32(b, p, checkU32(m.serverId, 'server identifier'));
      const transports = m.transports;
      for (let i = 0; i < transports.length; i++) p = putTransport(b, p, transports[i]!);
      break;
    }
    case AsapMessageType.Cookie:
    case AsapMessageType.CookieEcho:
      p = putBytesParameter(b, p, ParameterType.Cookie, m.cookie);
      break;
    case AsapMessageType.BusinessCard: {
      p = putBytesParameter(b, p, ParameterType.PoolHandle, m.handle);
      const elements = m.elements;
      for (let i = 0; i < elements.length; i++) p = putPoolElement(b, p, elements[i]!);
      break;
    }
    case AsapMessageType.Error:
      p = putOperationError(b, p, m.error);
      break;
    default:
      assertNever(m, 'ASAP message');
  }
  p = putUnknowns(b, p, m.unknown);
  return endTlv(b, start, p, (m.type << 8) | flags);
}

/** RFC 5352 wire bytes; the length field counts the final padding (as RSPLIB). */
export function encodeAsapMessage(m: AsapMessage): Uint8Array {
  const size = messageSize(m);
  const b = new Uint8Array(size);
  const end = putAsapMessage(m, b, 0);
  if (end !== size) throw new EncodeError(`encoder wrote ${end} bytes, sized ${size}`);
  return b;
}

/**
 * Writes the message's wire bytes (as `encodeAsapMessage`) into
 * target[offset..] and returns their exact length; EncodeError, before
 * anything is written, when they do not fit. On an EncodeError about a
 * value, part of that span may have been written.
 */
export function encodeAsapMessageInto(m: AsapMessage, target: Uint8Array, offset = 0): number {
  const size = messageSize(m);
  if (!Number.isInteger(offset) || offset < 0 || offset > target.length || target.length - offset < size) {
    throw new EncodeError(`${size}-byte ASAP message does not fit at offset ${offset} of a ${target.length}-byte buffer`);
  }
  const end = putAsapMessage(m, target, offset);
  if (end - offset !== size) throw new EncodeError(`encoder wrote ${end - offset} bytes, sized ${size}`);
  return size;
}

function isAsapType(t: number): t is AsapMessageType {
  return t >= AsapMessageType.Registration && t <= AsapMessageType.Error;
}

const { Handle, Element, Identifier, Error: ErrorKind, HrOption, Policy, Transport, Cookie } = ParameterKind;

/** One whole ASAP message; throws only DecodeError. */
export function decodeAsapMessage(bytes: Uint8Array): AsapMessage {
  const h = readMessageHeader(bytes);
  const type = h.type;
  const flags = h.flags;
  if (!isAsapType(type)) {
    throw new DecodeError(DecodeErrorCode.UnknownType, `unknown ASAP message type 0x${type.toString(16)}`, { offset: 0, tlvType: type });
  }
  const r = new TlvReader(bytes, 4, bytes.length, type);
  let p: MessageParameters;
  let m: AsapMessage;
  // Each case reads the parameters, then takes the required ones in a fixed
  // order, so the same fault gives the same error; `flags` only when set.
  switch (type) {
    case AsapMessageType.Registration: {
      p = new MessageParameters(type, Handle | Element);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      const element = p.required(p.element, 'pool element');
      m = flags === 0 ? { type, handle, element } : { type, flags, handle, element };
      break;
    }
    case AsapMessageType.Deregistration:
    case AsapMessageType.EndpointKeepAliveAck:
    case AsapMessageType.EndpointUnreachable: {
      p = new MessageParameters(type, Handle | Identifier);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      const identifier = p.required(p.identifier, 'PE identifier');
      m = flags === 0 ? { type, handle, identifier } : { type, flags, handle, identifier };
      break;
    }
    case AsapMessageType.RegistrationResponse:
    case AsapMessageType.DeregistrationResponse: {
      p = new MessageParameters(type, Handle | Identifier | ErrorKind);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      const identifier = p.required(p.identifier, 'PE identifier');
      const res: AsapRegistrationResponse | AsapDeregistrationResponse = flags === 0 ? { type, handle, identifier } : { type, flags, handle, identifier };
      if (p.causes) res.error = p.causes;
      m = res;
      break;
    }
    case AsapMessageType.HandleResolution: {
      p = new MessageParameters(type, Handle | HrOption);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      m = flags === 0 ? { type, handle } : { type, flags, handle };
      if (p.items !== undefined) m.items = p.items;
      break;
    }
    case AsapMessageType.HandleResolutionResponse: {
      p = new MessageParameters(type, Handle | Policy | ErrorKind, Element);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      const elements = p.elements!;
      m = flags === 0 ? { type, handle, elements } : { type, flags, handle, elements };
      if (p.policy) m.policy = p.policy;
      if (p.causes) m.error = p.causes;
      break;
    }
    case AsapMessageType.EndpointKeepAlive: {
      // Registrar id ahead of the parameters (RFC 5352 2.2.7).
      const serverId = r.u32('server identifier');
      p = new MessageParameters(type, Handle | Identifier);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      m = flags === 0 ? { type, serverId, handle } : { type, flags, serverId, handle };
      if (p.identifier !== undefined) m.identifier = p.identifier;
      break;
    }
    case AsapMessageType.ServerAnnounce: {
      // Registrar id ahead of the parameters (RFC 5352 2.2.10).
      const serverId = r.u32('server identifier');
      p = new MessageParameters(type, 0, Transport);
      readMessageParameters(r, p);
      const transports = p.transports!;
      m = flags === 0 ? { type, serverId, transports } : { type, flags, serverId, transports };
      break;
    }
    case AsapMessageType.Cookie:
    case AsapMessageType.CookieEcho: {
      p = new MessageParameters(type, Cookie);
      readMessageParameters(r, p);
      const cookie = p.required(p.cookie, 'cookie');
      m = flags === 0 ? { type, cookie } : { type, flags, cookie };
      break;
    }
    case AsapMessageType.BusinessCard: {
      p = new MessageParameters(type, Handle, Element);
      readMessageParameters(r, p);
      const handle = p.required(p.handle, 'pool handle');
      const elements = p.elements!;
      m = flags === 0 ? { type, handle, elements } : { type, flags, handle, elements };
      break;
    }
    case AsapMessageType.Error: {
      p = new MessageParameters(type, ErrorKind);
      readMessageParameters(r, p);
      const error = p.required(p.causes, 'operation error');
      m = flags === 0 ? { type, error } : { type, flags, error };
      break;
    }
    default:
      return assertNever(type, 'ASAP message type');
  }
  const unknown = p.finish();
  if (unknown) m.unknown = unknown;
  return m;
}
