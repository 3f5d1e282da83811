import { DecodeError, DecodeErrorCode, EncodeError } from '../errors.js';
import { TlvReader, TlvWriter, copyBytes, endTlv, padding4, putBytes, putU16, putU32, tlvEnd, tlvLengthAt, type TlvHeader } from '../tlv.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv4Into, parseIpv6 } from './ip.js';
import {
  ParameterType,
  PolicyType,
  TransportUse,
  type ErrorCauseEntry,
  type IpAddress,
  type MemberSelectionPolicy,
  type PoolElementParameter,
  type ServerInformation,
  type TransportAddress,
  type TransportProtocol,
  type UnknownParameter,
  type UnreachableReportParameter,
  OWNER_IDENTITY_BYTES,
} from './types.js';

/** Any one RFC 5354 parameter as a value, discriminated on `kind`. */
export type Parameter =
  | { kind: 'address'; address: IpAddress }
  | { kind: 'transport'; transport: TransportAddress }
  | { kind: 'policy'; policy: MemberSelectionPolicy }
  | { kind: 'handle'; handle: Uint8Array }
  | { kind: 'element'; element: PoolElementParameter }
  | { kind: 'server'; server: ServerInformation }
  | { kind: 'error'; causes: ErrorCauseEntry[] }
  | { kind: 'cookie'; cookie: Uint8Array }
  | { kind: 'identifier'; identifier: number }
  | { kind: 'checksum'; checksum: number }
  | { kind: 'hrOption'; items: number }
  | { kind: 'owner'; digest: Uint8Array }
  | { kind: 'unreachableReport'; report: UnreachableReportParameter }
  | { kind: 'unknown'; parameter: UnknownParameter };

/** A decoded parameter with its header, so message decoders can report misplaced ones. */
interface LocatedParameter {
  param: Parameter;
  header: TlvHeader;
}

export function assertNever(x: never, what: string): never {
  throw new EncodeError(`unhandled ${what}: ${JSON.stringify(x)}`);
}

// ---------------------------------------------------------------- values

export function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new EncodeError(`${what} ${v} is not a 32-bit unsigned integer`);
  return v;
}

function checkU16(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new EncodeError(`${what} ${v} is not a 16-bit unsigned integer`);
  return v;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** A pool handle from its usual UTF-8 text form. */
export function poolHandleFromString(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** The handle as text, or undefined when its bytes are not UTF-8. */
export function poolHandleToString(handle: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(handle);
  } catch {
    return undefined;
  }
}

/** The address as 4 or 16 bytes; EncodeError if it is not an IP address. */
export function ipAddressToBytes(address: IpAddress): Uint8Array {
  const b = address.includes(':') ? parseIpv6(address) : parseIpv4(address);
  if (!b) throw new EncodeError(`not an IP address: ${JSON.stringify(address)}`);
  return b;
}

/** Canonical text of a 4- or 16-byte address. */
export function ipAddressFromBytes(bytes: Uint8Array): IpAddress {
  if (bytes.length === 4) return formatIpv4(bytes);
  if (bytes.length === 16) return formatIpv6(bytes);
  throw new EncodeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
}

// ---------------------------------------------------------------- sizes (padded)

function addressSize(a: IpAddress): number {
  return a.includes(':') ? 20 : 8;
}

export function transportSize(t: TransportAddress): number {
  let n = t.protocol === 'dccp' ? 12 : 8;
  for (const a of t.addresses) n += addressSize(a);
  return n;
}

function policyValueCount(p: Exclude<MemberSelectionPolicy, { unknown: true }>): number {
  switch (p.type) {
    case PolicyType.RoundRobin:
    case PolicyType.Random:
      return 0;
    case PolicyType.WeightedRoundRobin:
    case PolicyType.WeightedRandom:
    case PolicyType.Priority:
    case PolicyType.LeastUsed:
    case PolicyType.RandomizedLeastUsed:
    case PolicyType.LeastConnections:
    case PolicyType.ConsistentHash:
      return 1;
    case PolicyType.LeastUsedDegradation:
    case PolicyType.PriorityLeastUsed:
    case PolicyType.PriorityLeastUsedDegradation:
    case PolicyType.WeightedLeastConnections:
    case PolicyType.WeightedResponseTime:
      return 2;
    case PolicyType.WeightedRandomDpf:
    case PolicyType.LeastUsedDpf:
      return 3;
    default:
      return assertNever(p, 'policy type');
  }
}

/** Parameter length the policy's type requires, or undefined for a type this codec does not know. */
export function policyParameterLength(type: number): number | undefined {
  switch (type) {
    case PolicyType.RoundRobin:
    case PolicyType.Random:
      return 8;
    case PolicyType.WeightedRoundRobin:
    case PolicyType.WeightedRandom:
    case PolicyType.Priority:
    case PolicyType.LeastUsed:
    case PolicyType.RandomizedLeastUsed:
    case PolicyType.LeastConnections:
    case PolicyType.ConsistentHash:
      return 12;
    case PolicyType.LeastUsedDegradation:
    case PolicyType.PriorityLeastUsed:
    case PolicyType.PriorityLeastUsedDegradation:
    case PolicyType.WeightedLeastConnections:
    case PolicyType.WeightedResponseTime:
      return 16;
    case PolicyType.WeightedRandomDpf:
    case PolicyType.LeastUsedDpf:
      return 20;
    default:
      return undefined;
  }
}

function isUnknownPolicy(p: MemberSelectionPolicy): p is { type: number; unknown: true; raw: Uint8Array } {
  return 'unknown' in p;
}

export function policySize(p: MemberSelectionPolicy): number {
  if (isUnknownPolicy(p)) return 8 + p.raw.length + padding4(p.raw.length);
  return 8 + 4 * policyValueCount(p);
}

export function poolElementSize(e: PoolElementParameter): number {
  return 16 + transportSize(e.userTransport) + policySize(e.policy) + (e.asapTransport ? transportSize(e.asapTransport) : 0);
}

export function serverInformationSize(s: ServerInformation): number {
  return 8 + transportSize(s.transport);
}

export function bytesParameterSize(b: Uint8Array): number {
  return 4 + b.length + padding4(b.length);
}

export function operationErrorSize(causes: readonly ErrorCauseEntry[]): number {
  let n = 4;
  for (const c of causes) n += 4 + c.info.length + padding4(c.info.length);
  return n;
}

/** Padded size of any parameter. */
export function parameterSize(p: Parameter): number {
  switch (p.kind) {
    case 'address':
      return addressSize(p.address);
    case 'transport':
      return transportSize(p.transport);
    case 'policy':
      return policySize(p.policy);
    case 'handle':
      return bytesParameterSize(p.handle);
    case 'element':
      return poolElementSize(p.element);
    case 'server':
      return serverInformationSize(p.server);
    case 'error':
      return operationErrorSize(p.causes);
    case 'cookie':
      return bytesParameterSize(p.cookie);
    case 'identifier':
    case 'checksum':
    case 'hrOption':
      return 8;
    case 'owner':
      return bytesParameterSize(p.digest);
    case 'unreachableReport':
      return unreachableReportSize(p.report);
    case 'unknown':
      return bytesParameterSize(p.parameter.raw);
    default:
      return assertNever(p, 'parameter');
  }
}

// ---------------------------------------------------------------- writers
//
// `putX(b, p, x)` writes x at b[p] and returns the position after it (its
// padding included); the encoders chain them over one buffer sized up front.
// `writeX(w, x)` does the same on a TlvWriter.

function transportType(protocol: TransportProtocol): number | undefined {
  switch (protocol) {
    case 'sctp':
      return ParameterType.SctpTransport;
    case 'tcp':
      return ParameterType.TcpTransport;
    case 'udp':
      return ParameterType.UdpTransport;
    case 'udp-lite':
      return ParameterType.UdpLiteTransport;
    case 'dccp':
      return ParameterType.DccpTransport;
    default:
      return undefined;
  }
}

function putAddress(b: Uint8Array, p: number, a: IpAddress): number {
  // IPv4, parsed straight into the output: the common case stays
  // allocation-free. Text with a ':' is never a dotted quad, and is IPv6 to
  // `addressSize` too.
  if (parseIpv4Into(a, b, p + 4)) return endTlv(b, p, p + 8, ParameterType.IPv4Address);
  if (!a.includes(':')) throw new EncodeError(`not an IP address: ${JSON.stringify(a)}`);
  const v = ipAddressToBytes(a);
  return endTlv(b, p, putBytes(b, p + 4, v), v.length === 4 ? ParameterType.IPv4Address : ParameterType.IPv6Address);
}

export function putTransport(b: Uint8Array, p: number, t: TransportAddress): number {
  const protocol = t.protocol;
  const type = transportType(protocol);
  if (type === undefined) throw new EncodeError(`unknown transport protocol ${JSON.stringify(protocol)}`);
  const addresses = t.addresses;
  const n = addresses.length;
  if (n === 0) throw new EncodeError(`${protocol} transport without an address`);
  if (n > 1 && protocol !== 'sctp') throw new EncodeError(`${protocol} transport carries one address, not ${n}`);
  const s = p;
  p = putU16(b, p + 4, checkU16(t.port, 'port'));
  if (protocol === 'sctp' || protocol === 'tcp') {
    const use = t.transportUse;
    if (use !== TransportUse.DataOnly && use !== TransportUse.DataPlusControl) {
      throw new EncodeError(`transport use ${String(use)} is neither 0 nor 1`);
    }
    p = putU16(b, p, use);
  } else {
    p = putU16(b, p, 0);
  }
  if (protocol === 'dccp') p = putU32(b, p, checkU32(t.serviceCode ?? 0, 'DCCP service code'));
  for (let i = 0; i < n; i++) p = putAddress(b, p, addresses[i]!);
  return endTlv(b, s, p, type);
}

export function putPolicy(b: Uint8Array, p: number, policy: MemberSelectionPolicy): number {
  const s = p;
  p = putU32(b, p + 4, checkU32(policy.type, 'policy type'));
  if (isUnknownPolicy(policy)) {
    if (policyParameterLength(policy.type) !== undefined) throw new EncodeError(`policy 0x${policy.type.toString(16)} is known; give its values`);
    return endTlv(b, s, putBytes(b, p, policy.raw), ParameterType.MemberSelectionPolicy);
  }
  switch (policy.type) {
    case PolicyType.RoundRobin:
    case PolicyType.Random:
      break;
    case PolicyType.WeightedRoundRobin:
    case PolicyType.WeightedRandom:
    case PolicyType.ConsistentHash:
      p = putU32(b, p, checkU32(policy.weight, 'weight'));
      break;
    case PolicyType.Priority:
      p = putU32(b, p, checkU32(policy.priority, 'priority'));
      break;
    case PolicyType.LeastUsed:
    case PolicyType.RandomizedLeastUsed:
      p = putU32(b, p, checkU32(policy.load, 'load'));
      break;
    case PolicyType.LeastConnections:
      p = putU32(b, p, checkU32(policy.connections, 'connections'));
      break;
    case PolicyType.LeastUsedDegradation:
    case PolicyType.PriorityLeastUsed:
    case PolicyType.PriorityLeastUsedDegradation:
      p = putU32(b, p, checkU32(policy.load, 'load'));
      p = putU32(b, p, checkU32(policy.loadDegradation, 'load degradation'));
      break;
    case PolicyType.WeightedLeastConnections:
      p = putU32(b, p, checkU32(policy.weight, 'weight'));
      p = putU32(b, p, checkU32(policy.connections, 'connections'));
      break;
    case PolicyType.WeightedResponseTime:
      p = putU32(b, p, checkU32(policy.weight, 'weight'));
      p = putU32(b, p, checkU32(policy.responseTimeUs, 'response time'));
      break;
    case PolicyType.WeightedRandomDpf:
      p = putU32(b, p, checkU32(policy.weight, 'weight'));
      p = putU32(b, p, checkU32(policy.weightDpf, 'weight DPF'));
      p = putU32(b, p, checkU32(policy.distance, 'distance'));
      break;
    case PolicyType.LeastUsedDpf:
      p = putU32(b, p, checkU32(policy.load, 'load'));
      p = putU32(b, p, checkU32(policy.loadDpf, 'load DPF'));
      p = putU32(b, p, checkU32(policy.distance, 'distance'));
      break;
    default:
      assertNever(policy, 'policy type');
  }
  return endTlv(b, s, p, ParameterType.MemberSelectionPolicy);
}

export function putBytesParameter(b: Uint8Array, p: number, type: number, value: Uint8Array): number {
  return endTlv(b, p, putBytes(b, p + 4, value), type);
}

export function putPoolElement(b: Uint8Array, p: number, e: PoolElementParameter): number {
  const s = p;
  p = putU32(b, p + 4, checkU32(e.identifier, 'PE identifier'));
  p = putU32(b, p, checkU32(e.homeRegistrarId, 'home registrar id'));
  p = putU32(b, p, checkU32(e.registrationLife, 'registration life'));
  p = putTransport(b, p, e.userTransport);
  p = putPolicy(b, p, e.policy);
  if (e.asapTransport) p = putTransport(b, p, e.asapTransport);
  return endTlv(b, s, p, ParameterType.PoolElement);
}

export function unreachableReportSize(r: UnreachableReportParameter): number {
  return 8 + r.handle.length + padding4(r.handle.length);
}

export function putOwnerIdentity(b: Uint8Array, p: number, digest: Uint8Array): number {
  if (digest.length !== OWNER_IDENTITY_BYTES) throw new EncodeError(`PE owner identity has ${digest.length} bytes, not ${OWNER_IDENTITY_BYTES}`);
  return putBytesParameter(b, p, ParameterType.PeOwnerIdentity, digest);
}

export function putUnreachableReport(b: Uint8Array, p: number, r: UnreachableReportParameter): number {
  const s = p;
  p = putU32(b, p + 4, checkU32(r.identifier, 'PE identifier'));
  return endTlv(b, s, putBytes(b, p, r.handle), ParameterType.UnreachableReport);
}

export function putServerInformation(b: Uint8Array, p: number, si: ServerInformation): number {
  const s = p;
  p = putU32(b, p + 4, checkU32(si.registrarId, 'registrar id'));
  p = putTransport(b, p, si.transport);
  return endTlv(b, s, p, ParameterType.ServerInformation);
}

export function putOperationError(b: Uint8Array, p: number, causes: readonly ErrorCauseEntry[]): number {
  const s = p;
  p += 4;
  for (let i = 0; i < causes.length; i++) {
    const c = causes[i]!;
    const code = checkU16(c.code, 'cause code');
    p = endTlv(b, p, putBytes(b, p + 4, c.info), code);
  }
  return endTlv(b, s, p, ParameterType.OperationError);
}

export function putU32Parameter(b: Uint8Array, p: number, type: number, v: number, what: string): number {
  return endTlv(b, p, putU32(b, p + 4, checkU32(v, what)), type);
}

export function putPeChecksum(b: Uint8Array, p: number, checksum: number): number {
  return endTlv(b, p, putU16(b, p + 4, checkU16(checksum, 'PE checksum')), ParameterType.PeChecksum);
}

export function putUnknown(b: Uint8Array, p: number, u: UnknownParameter): number {
  if (isKnownParameterType(u.type)) throw new EncodeError(`parameter type 0x${u.type.toString(16)} is known; give its value`);
  return putBytesParameter(b, p, checkU16(u.type, 'parameter type'), u.raw);
}

export function putUnknowns(b: Uint8Array, p: number, unknown: readonly UnknownParameter[] | undefined): number {
  if (unknown) for (let i = 0; i < unknown.length; i++) p = putUnknown(b, p, unknown[i]!);
  return p;
}

export function putParameter(b: Uint8Array, p: number, param: Parameter): number {
  switch (param.kind) {
    case 'address':
      return putAddress(b, p, param.address);
    case 'transport':
      return putTransport(b, p, param.transport);
    case 'policy':
      return putPolicy(b, p, param.policy);
    case 'handle':
      return putBytesParameter(b, p, ParameterType.PoolHandle, param.handle);
    case 'element':
      return putPoolElement(b, p, param.element);
    case 'server':
      return putServerInformation(b, p, param.server);
    case 'error':
      return putOperationError(b, p, param.causes);
    case 'cookie':
      return putBytesParameter(b, p, ParameterType.Cookie, param.cookie);
    case 'identifier':
      return putU32Parameter(b, p, ParameterType.PeIdentifier, param.identifier, 'PE identifier');
    case 'checksum':
      return putPeChecksum(b, p, param.checksum);
    case 'hrOption':
      return putU32Parameter(b, p, ParameterType.HandleResolutionOption, param.items, 'handle resolution items');
    case 'owner':
      return putOwnerIdentity(b, p, param.digest);
    case 'unreachableReport':
      return putUnreachableReport(b, p, param.report);
    case 'unknown':
      return putUnknown(b, p, param.parameter);
    default:
      return assertNever(param, 'parameter');
  }
}

function writeParameter(w: TlvWriter, p: Parameter): void {
  w.moveTo(putParameter(w.target, w.position, p));
}

/** One parameter, padded. */
export function encodeParameter(p: Parameter): Uint8Array {
  const w = new TlvWriter(parameterSize(p));
  writeParameter(w, p);
  return w.finish();
}

// ---------------------------------------------------------------- readers
//
// Each `readX(b, at, length, ...)` decodes the TLV whose header, already
// checked by `tlvLengthAt` (or `TlvReader.next`), is at b[at]: plain
// integer positions, no reader or header objects.

export function isKnownParameterType(type: number): boolean {
  return (
    (type >= ParameterType.IPv4Address && type <= ParameterType.PeChecksum) ||
    type === ParameterType.HandleResolutionOption ||
    type === ParameterType.PeOwnerIdentity ||
    type === ParameterType.UnreachableReport
  );
}

function fail(code: DecodeErrorCode, message: string, offset: number, tlvType: number): never {
  throw new DecodeError(code, message, { offset, tlvType });
}

function u16At(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

function u32At(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

function exactLength(length: number, want: number, what: string, at: number, type: number): void {
  if (length !== want) fail(DecodeErrorCode.BadLength, `${what} parameter has length ${length}, must be ${want}`, at + 2, type);
}

function atLeast(length: number, want: number, what: string, at: number, type: number): void {
  if (length < want) fail(DecodeErrorCode.BadLength, `${what} parameter has length ${length}, at least ${want}`, at + 2, type);
}

function readAddress(b: Uint8Array, at: number, length: number, type: number): IpAddress {
  if (type === ParameterType.IPv4Address) {
    exactLength(length, 8, 'IPv4 address', at, type);
    return formatIpv4(b, at + 4);
  }
  exactLength(length, 20, 'IPv6 address', at, type);
  return formatIpv6(b, at + 4);
}

function protocolOf(type: number): TransportProtocol | undefined {
  switch (type) {
    case ParameterType.SctpTransport:
      return 'sctp';
    case ParameterType.TcpTransport:
      return 'tcp';
    case ParameterType.UdpTransport:
      return 'udp';
    case ParameterType.UdpLiteTransport:
      return 'udp-lite';
    case ParameterType.DccpTransport:
      return 'dccp';
    default:
      return undefined;
  }
}

export function isTransportType(type: number): boolean {
  return type >= ParameterType.DccpTransport && type <= ParameterType.UdpLiteTransport;
}

function readTransport(b: Uint8Array, at: number, length: number, type: number): TransportAddress {
  const protocol = protocolOf(type);
  if (protocol === undefined) return fail(DecodeErrorCode.UnknownType, 'not a transport parameter', at, type);
  atLeast(length, protocol === 'dccp' ? 12 : 8, `${protocol} transport`, at, type);
  const end = at + length;
  const port = u16At(b, at + 4);
  const use = u16At(b, at + 6);
  let transportUse: TransportUse = TransportUse.DataOnly;
  if (protocol === 'sctp' || protocol === 'tcp') {
    if (use !== TransportUse.DataOnly && use !== TransportUse.DataPlusControl) {
      fail(DecodeErrorCode.BadValue, `transport use ${use} is neither 0 nor 1`, at + 6, type);
    }
    transportUse = use === 1 ? TransportUse.DataPlusControl : TransportUse.DataOnly;
  }
  const addresses: IpAddress[] = [];
  const t: TransportAddress = { protocol, port, addresses, transportUse };
  let p = at + 8;
  if (protocol === 'dccp') {
    t.serviceCode = u32At(b, p);
    p += 4;
  }
  while (p < end) {
    const len = tlvLengthAt(b, p, end, type, true);
    const at2 = u16At(b, p);
    if (at2 !== ParameterType.IPv4Address && at2 !== ParameterType.IPv6Address) {
      fail(DecodeErrorCode.BadNesting, `a transport parameter holds only addresses`, p, at2);
    }
    addresses.push(readAddress(b, p, len, at2));
    p = tlvEnd(p, len, end);
  }
  if (addresses.length === 0) fail(DecodeErrorCode.MissingParameter, `${protocol} transport without an address`, at, type);
  if (addresses.length > 1 && protocol !== 'sctp') {
    fail(DecodeErrorCode.BadValue, `${protocol} transport with ${addresses.length} addresses`, at, type);
  }
  return t;
}

function readPolicy(b: Uint8Array, at: number, length: number): MemberSelectionPolicy {
  const PT = ParameterType.MemberSelectionPolicy;
  atLeast(length, 8, 'member selection policy', at, PT);
  const type = u32At(b, at + 4);
  const want = policyParameterLength(type);
  if (want === undefined) return { type, unknown: true, raw: copyBytes(b, at + 8, at + length) };
  if (length !== want) fail(DecodeErrorCode.BadLength, `policy 0x${type.toString(16)} has length ${length}, must be ${want}`, at + 2, PT);
  const v = at + 8;
  switch (type) {
    case PolicyType.RoundRobin:
      return { type };
    case PolicyType.Random:
      return { type };
    case PolicyType.WeightedRoundRobin:
      return { type, weight: u32At(b, v) };
    case PolicyType.WeightedRandom:
      return { type, weight: u32At(b, v) };
    case PolicyType.ConsistentHash:
      return { type, weight: u32At(b, v) };
    case PolicyType.Priority:
      return { type, priority: u32At(b, v) };
    case PolicyType.LeastUsed:
      return { type, load: u32At(b, v) };
    case PolicyType.RandomizedLeastUsed:
      return { type, load: u32At(b, v) };
    case PolicyType.LeastConnections:
      return { type, connections: u32At(b, v) };
    case PolicyType.LeastUsedDegradation:
      return { type, load: u32At(b, v), loadDegradation: u32At(b, v + 4) };
    case PolicyType.PriorityLeastUsed:
      return { type, load: u32At(b, v), loadDegradation: u32At(b, v + 4) };
    case PolicyType.PriorityLeastUsedDegradation:
      return { type, load: u32At(b, v), loadDegradation: u32At(b, v + 4) };
    case PolicyType.WeightedLeastConnections:
      return { type, weight: u32At(b, v), connections: u32At(b, v + 4) };
    case PolicyType.WeightedResponseTime:
      return { type, weight: u32At(b, v), responseTimeUs: u32At(b, v + 4) };
    case PolicyType.WeightedRandomDpf:
      return { type, weight: u32At(b, v), weightDpf: u32At(b, v + 4), distance: u32At(b, v + 8) };
    case PolicyType.LeastUsedDpf:
      return { type, load: u32At(b, v), loadDpf: u32At(b, v + 4), distance: u32At(b, v + 8) };
    default:
      return fail(DecodeErrorCode.UnknownType, 'policy type without a layout', at, PT);
  }
}

function readPoolElement(b: Uint8Array, at: number, length: number): PoolElementParameter {
  const PE = ParameterType.PoolElement;
  atLeast(length, 16, 'pool element', at, PE);
  const end = at + length;
  const identifier = u32At(b, at + 4);
  const homeRegistrarId = u32At(b, at + 8);
  const registrationLife = u32At(b, at + 12);
  let p = at + 16;
  // The user transport, the policy, then maybe the ASAP transport.
  if (p >= end) fail(DecodeErrorCode.MissingParameter, 'pool element without a user transport', at, PE);
  let len = tlvLengthAt(b, p, end, PE, true);
  let type = u16At(b, p);
  if (!isTransportType(type)) fail(DecodeErrorCode.BadNesting, 'pool element: expected a user transport', p, type);
  const userTransport = readTransport(b, p, len, type);
  p = tlvEnd(p, len, end);
  if (p >= end) fail(DecodeErrorCode.MissingParameter, 'pool element without a member selection policy', at, PE);
  len = tlvLengthAt(b, p, end, PE, true);
  type = u16At(b, p);
  if (type !== ParameterType.MemberSelectionPolicy) fail(DecodeErrorCode.BadNesting, 'pool element: expected a member selection policy', p, type);
  const policy = readPolicy(b, p, len);
  p = tlvEnd(p, len, end);
  const e: PoolElementParameter = { identifier, homeRegistrarId, registrationLife, userTransport, policy };
  if (p < end) {
    len = tlvLengthAt(b, p, end, PE, true);
    type = u16At(b, p);
    if (!isTransportType(type)) fail(DecodeErrorCode.BadNesting, 'pool element: expected an ASAP transport', p, type);
    e.asapTransport = readTransport(b, p, len, type);
    p = tlvEnd(p, len, end);
  }
  if (p < end) {
    tlvLengthAt(b, p, end, PE, true);
    fail(DecodeErrorCode.BadNesting, 'pool element holds more than user transport, policy and ASAP transport', p, u16At(b, p));
  }
  return e;
}

function readServerInformation(b: Uint8Array, at: number, length: number): ServerInformation {
  const SI = ParameterType.ServerInformation;
  atLeast(length, 8, 'server information', at, SI);
  const end = at + length;
  const registrarId = u32At(b, at + 4);
  let p = at + 8;
  if (p >= end) fail(DecodeErrorCode.MissingParameter, 'server information without a transport', at, SI);
  const len = tlvLengthAt(b, p, end, SI, true);
  const type = u16At(b, p);
  if (!isTransportType(type)) fail(DecodeErrorCode.BadNesting, 'server information holds a transport', p, type);
  const transport = readTransport(b, p, len, type);
  p = tlvEnd(p, len, end);
  if (p < end) {
    tlvLengthAt(b, p, end, SI, true);
    fail(DecodeErrorCode.BadNesting, 'server information holds exactly one transport', p, u16At(b, p));
  }
  return { registrarId, transport };
}

function readOperationError(b: Uint8Array, at: number, length: number): ErrorCauseEntry[] {
  const end = at + length;
  const causes: ErrorCauseEntry[] = [];
  // Causes share the TLV layout (code, length without padding, info, padding).
  for (let p = at + 4; p < end;) {
    const len = tlvLengthAt(b, p, end, ParameterType.OperationError, true);
    causes.push({ code: u16At(b, p), info: copyBytes(b, p + 4, p + len) });
    p = tlvEnd(p, len, end);
  }
  return causes;
}

function readUnreachableReport(b: Uint8Array, at: number, length: number): UnreachableReportParameter {
  atLeast(length, 8, 'unreachable report', at, ParameterType.UnreachableReport);
  return { identifier: u32At(b, at + 4), handle: copyBytes(b, at + 8, at + length) };
}

/** A copy of the value of the TLV `r.next()` read last. */
function valueCopy(r: TlvReader): Uint8Array {
  return copyBytes(r.bytes, r.offset + 4, r.offset + r.length);
}

/** Reads the next parameter of `r`, whatever its type. */
function readParameter(r: TlvReader): LocatedParameter {
  r.next();
  const header = r.header();
  return { param: readParameterValue(r), header };
}

function readParameterValue(r: TlvReader): Parameter {
  switch (r.type) {
    case ParameterType.IPv4Address:
    case ParameterType.IPv6Address:
      return { kind: 'address', address: readAddress(r.bytes, r.offset, r.length, r.type) };
    case ParameterType.DccpTransport:
    case ParameterType.SctpTransport:
    case ParameterType.TcpTransport:
    case ParameterType.UdpTransport:
    case ParameterType.UdpLiteTransport:
      return { kind: 'transport', transport: readTransport(r.bytes, r.offset, r.length, r.type) };
    case ParameterType.MemberSelectionPolicy:
      return { kind: 'policy', policy: readPolicy(r.bytes, r.offset, r.length) };
    case ParameterType.PoolHandle:
      return { kind: 'handle', handle: valueCopy(r) };
    case ParameterType.PoolElement:
      return { kind: 'element', element: readPoolElement(r.bytes, r.offset, r.length) };
    case ParameterType.ServerInformation:
      return { kind: 'server', server: readServerInformation(r.bytes, r.offset, r.length) };
    case ParameterType.OperationError:
      return { kind: 'error', causes: readOperationError(r.bytes, r.offset, r.length) };
    case ParameterType.Cookie:
      return { kind: 'cookie', cookie: valueCopy(r) };
    case ParameterType.PeIdentifier:
      exactLength(r.length, 8, 'PE identifier', r.offset, r.type);
      return { kind: 'identifier', identifier: u32At(r.bytes, r.offset + 4) };
    case ParameterType.PeChecksum:
      exactLength(r.length, 6, 'PE checksum', r.offset, r.type);
      return { kind: 'checksum', checksum: u16At(r.bytes, r.offset + 4) };
    case ParameterType.HandleResolutionOption:
      exactLength(r.length, 8, 'handle resolution option', r.offset, r.type);
      return { kind: 'hrOption', items: u32At(r.bytes, r.offset + 4) };
    case ParameterType.PeOwnerIdentity:
      exactLength(r.length, 4 + OWNER_IDENTITY_BYTES, 'PE owner identity', r.offset, r.type);
      return { kind: 'owner', digest: valueCopy(r) };
    case ParameterType.UnreachableReport:
      return { kind: 'unreachableReport', report: readUnreachableReport(r.bytes, r.offset, r.length) };
    default:
      return { kind: 'unknown', parameter: { type: r.type, raw: valueCopy(r) } };
  }
}

/** Exactly one parameter (its padding included); anything after it is an error. */
export function decodeParameter(bytes: Uint8Array): Parameter {
  if (bytes.length % 4 !== 0 && bytes.length >= 4) {
    throw new DecodeError(DecodeErrorCode.BadPadding, 'parameter not padded to 4 bytes', { offset: bytes.length, tlvType: (bytes[0]! << 8) | bytes[1]! });
  }
  const r = new TlvReader(bytes);
  const { param } = readParameter(r);
  r.expectEnd('the parameter');
  return param;
}

export function unknownSize(unknown: readonly UnknownParameter[] | undefined): number {
  let n = 0;
  if (unknown) for (const u of unknown) n += bytesParameterSize(u.raw);
  return n;
}

// ---------------------------------------------------------------- message parameters

/** Kinds of top-level parameter, as bits for the masks of `MessageParameters`. */
export const ParameterKind = {
  Transport: 1 << 0,
  Policy: 1 << 1,
  Handle: 1 << 2,
  Element: 1 << 3,
  Server: 1 << 4,
  Error: 1 << 5,
  Cookie: 1 << 6,
  Identifier: 1 << 7,
  Checksum: 1 << 8,
  HrOption: 1 << 9,
  Owner: 1 << 10,
  UnreachableReport: 1 << 11,
} as const;

/** One pool handle and the PEs after it (ENRP handle table response). */
export interface PoolEntry {
  handle: Uint8Array;
  elements: PoolElementParameter[];
  /** PE Owner Identity of elements[i] (the parameter right after it), when any PE of the pool has one. */
  owners?: (Uint8Array | undefined)[];
}

/**
 * The top-level parameters of one message, sorted into fields as they are
 * read, with no per-parameter wrapper objects. A kind in `single` is kept
 * once (a second one is misplaced), a kind in `multi` is collected in
 * order, any other known kind is misplaced; with `pools`, handles and the
 * PEs after them form pool entries (ENRP handle table response). The first
 * misplaced parameter is reported by `finish`, after the message decoder has
 * checked the required ones.
 */
export class MessageParameters {
  readonly messageType: number;
  readonly single: number;
  readonly multi: number;
  /** Kinds in `single` seen so far. */
  seen = 0;
  handle: Uint8Array | undefined = undefined;
  element: PoolElementParameter | undefined = undefined;
  policy: MemberSelectionPolicy | undefined = undefined;
  causes: ErrorCauseEntry[] | undefined = undefined;
  cookie: Uint8Array | undefined = undefined;
  identifier: number | undefined = undefined;
  checksum: number | undefined = undefined;
  items: number | undefined = undefined;
  owner: Uint8Array | undefined = undefined;
  report: UnreachableReportParameter | undefined = undefined;
  server: ServerInformation | undefined = undefined;
  elements: PoolElementParameter[] | undefined;
  transports: TransportAddress[] | undefined;
  servers: ServerInformation[] | undefined;
  pools: PoolEntry[] | undefined;
  unknown: UnknownParameter[] | undefined = undefined;
  misplacedOffset = -1;
  misplacedType = 0;

  constructor(messageType: number, single: number, multi = 0, pools = false) {
    this.messageType = messageType;
    this.single = single;
    this.multi = multi;
    this.elements = multi & ParameterKind.Element ? [] : undefined;
    this.transports = multi & ParameterKind.Transport ? [] : undefined;
    this.servers = multi & ParameterKind.Server ? [] : undefined;
    this.pools = pools ? [] : undefined;
  }

  /** The value of a parameter the message must carry; MISSING_PARAMETER when absent. */
  required<T>(value: T | undefined, what: string): T {
    if (value === undefined) {
      throw new DecodeError(DecodeErrorCode.MissingParameter, `message lacks its ${what} parameter`, { offset: 0, tlvType: this.messageType });
    }
    return value;
  }

  /** Unknown parameters, after checking that no known one was misplaced. */
  finish(): UnknownParameter[] | undefined {
    if (this.misplacedOffset >= 0) {
      throw new DecodeError(DecodeErrorCode.BadNesting, `parameter not allowed (or repeated) in message type 0x${this.messageType.toString(16)}`, {
        offset: this.misplacedOffset,
        tlvType: this.misplacedType,
      });
    }
    return this.unknown;
  }
}

/** 1: keep as the single one; 0: misplaced (the first is recorded); 2: in `multi`. */
function place(mp: MessageParameters, kind: number, r: TlvReader): number {
  if (mp.multi & kind) return 2;
  if (mp.single & kind && (mp.seen & kind) === 0) {
    mp.seen |= kind;
    return 1;
  }
  if (mp.misplacedOffset < 0) {
    mp.misplacedOffset = r.offset;
    mp.misplacedType = r.type;
  }
  return 0;
}

/** Reads every parameter left in `r` into `mp`. */
export function readMessageParameters(r: TlvReader, mp: MessageParameters): void {
  const b = r.bytes;
  let previous = -1;
  for (; r.pos < r.end; previous = r.type) {
    const type = r.next();
    const at = r.offset;
    const length = r.length;
    switch (type) {
      case ParameterType.IPv4Address:
      case ParameterType.IPv6Address:
        readAddress(b, at, length, type);
        place(mp, 0, r);
        break;
      case ParameterType.DccpTransport:
      case ParameterType.SctpTransport:
      case ParameterType.TcpTransport:
      case ParameterType.UdpTransport:
      case ParameterType.UdpLiteTransport: {
        const t = readTransport(b, at, length, type);
        if (place(mp, ParameterKind.Transport, r) === 2) mp.transports!.push(t);
        break;
      }
      case ParameterType.MemberSelectionPolicy: {
        const p = readPolicy(b, at, length);
        if (place(mp, ParameterKind.Policy, r) === 1) mp.policy = p;
        break;
      }
      case ParameterType.PoolHandle: {
        const h = copyBytes(b, at + 4, at + length);
        if (mp.pools) mp.pools.push({ handle: h, elements: [] });
        else if (place(mp, ParameterKind.Handle, r) === 1) mp.handle = h;
        break;
      }
      case ParameterType.PoolElement: {
        const e = readPoolElement(b, at, length);
        const pools = mp.pools;
        if (pools) {
          if (pools.length > 0) pools[pools.length - 1]!.elements.push(e);
          else place(mp, 0, r);
        } else {
          const slot = place(mp, ParameterKind.Element, r);
          if (slot === 1) mp.element = e;
          else if (slot === 2) mp.elements!.push(e);
        }
        break;
      }
      case ParameterType.ServerInformation: {
        const s = readServerInformation(b, at, length);
        const slot = place(mp, ParameterKind.Server, r);
        if (slot === 1) mp.server = s;
        else if (slot === 2) mp.servers!.push(s);
        break;
      }
      case ParameterType.OperationError: {
        const causes = readOperationError(b, at, length);
        if (place(mp, ParameterKind.Error, r) === 1) mp.causes = causes;
        break;
      }
      case ParameterType.Cookie: {
        const c = copyBytes(b, at + 4, at + length);
        if (place(mp, ParameterKind.Cookie, r) === 1) mp.cookie = c;
        break;
      }
      case ParameterType.PeIdentifier: {
        exactLength(length, 8, 'PE identifier', at, type);
        const id = u32At(b, at + 4);
        if (place(mp, ParameterKind.Identifier, r) === 1) mp.identifier = id;
        break;
      }
      case ParameterType.PeChecksum: {
        exactLength(length, 6, 'PE checksum', at, type);
        const c = u16At(b, at + 4);
        if (place(mp, ParameterKind.Checksum, r) === 1) mp.checksum = c;
        break;
      }
      case ParameterType.HandleResolutionOption: {
        exactLength(length, 8, 'handle resolution option', at, type);
        const items = u32At(b, at + 4);
        if (place(mp, ParameterKind.HrOption, r) === 1) mp.items = items;
        break;
      }
      case ParameterType.PeOwnerIdentity: {
        exactLength(length, 4 + OWNER_IDENTITY_BYTES, 'PE owner identity', at, type);
        const digest = copyBytes(b, at + 4, at + length);
        const pool = mp.pools?.[mp.pools.length - 1];
        // In a table response it belongs to the PE right before it, and to one PE only.
        if (pool !== undefined) {
          const i = pool.elements.length - 1;
          if (i >= 0 && previous === ParameterType.PoolElement) {
            const owners = (pool.owners ??= []);
            while (owners.length < i) owners.push(undefined);
            owners.push(digest);
          } else place(mp, 0, r);
        } else if (place(mp, ParameterKind.Owner, r) === 1) mp.owner = digest;
        break;
      }
      case ParameterType.UnreachableReport: {
        const report = readUnreachableReport(b, at, length);
        if (place(mp, ParameterKind.UnreachableReport, r) === 1) mp.report = report;
        break;
      }
      default:
        (mp.unknown ??= []).push({ type, raw: copyBytes(b, at + 4, at + length) });
    }
  }
}
