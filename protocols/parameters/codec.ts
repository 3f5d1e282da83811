import { DecodeError, DecodeErrorCode, EncodeError } from '../errors.js';
import { TlvReader, TlvWriter, copyBytes, padding4, type TlvHeader } from '../tlv.js';
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
  | { kind: 'unknown'; parameter: UnknownParameter };

/** A decoded parameter with its header, so message decoders can report misplaced ones. */
export interface LocatedParameter {
  param: Parameter;
  header: TlvHeader;
}

const TRANSPORT_TYPE: Record<TransportProtocol, number> = {
  sctp: ParameterType.SctpTransport,
  tcp: ParameterType.TcpTransport,
  udp: ParameterType.UdpTransport,
  'udp-lite': ParameterType.UdpLiteTransport,
  dccp: ParameterType.DccpTransport,
};

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
    case 'unknown':
      return bytesParameterSize(p.parameter.raw);
    default:
      return assertNever(p, 'parameter');
  }
}

// ---------------------------------------------------------------- writers

function writeAddress(w: TlvWriter, a: IpAddress): void {
  if (!a.includes(':')) {
    // IPv4, parsed straight into the output: the common case stays allocation-free.
    const s = w.begin(ParameterType.IPv4Address);
    if (!parseIpv4Into(a, w.target, w.position)) throw new EncodeError(`not an IP address: ${JSON.stringify(a)}`);
    w.skip(4);
    w.end(s);
    return;
  }
  const b = ipAddressToBytes(a);
  const s = w.begin(b.length === 4 ? ParameterType.IPv4Address : ParameterType.IPv6Address);
  w.bytes(b);
  w.end(s);
}

export function writeTransport(w: TlvWriter, t: TransportAddress): void {
  const type = TRANSPORT_TYPE[t.protocol];
  if (type === undefined) throw new EncodeError(`unknown transport protocol ${JSON.stringify(t.protocol)}`);
  if (t.addresses.length === 0) throw new EncodeError(`${t.protocol} transport without an address`);
  if (t.addresses.length > 1 && t.protocol !== 'sctp') {
    throw new EncodeError(`${t.protocol} transport carries one address, not ${t.addresses.length}`);
  }
  const s = w.begin(type);
  w.u16(checkU16(t.port, 'port'));
  if (t.protocol === 'sctp' || t.protocol === 'tcp') {
    if (t.transportUse !== TransportUse.DataOnly && t.transportUse !== TransportUse.DataPlusControl) {
      throw new EncodeError(`transport use ${String(t.transportUse)} is neither 0 nor 1`);
    }
    w.u16(t.transportUse);
  } else {
    w.u16(0);
  }
  if (t.protocol === 'dccp') w.u32(checkU32(t.serviceCode ?? 0, 'DCCP service code'));
  for (const a of t.addresses) writeAddress(w, a);
  w.end(s);
}

export function writePolicy(w: TlvWriter, p: MemberSelectionPolicy): void {
  const s = w.begin(ParameterType.MemberSelectionPolicy);
  w.u32(checkU32(p.type, 'policy type'));
  if (isUnknownPolicy(p)) {
    if (policyParameterLength(p.type) !== undefined) throw new EncodeError(`policy 0x${p.type.toString(16)} is known; give its values`);
    w.bytes(p.raw);
  } else {
    switch (p.type) {
      case PolicyType.RoundRobin:
      case PolicyType.Random:
        break;
      case PolicyType.WeightedRoundRobin:
      case PolicyType.WeightedRandom:
      case PolicyType.ConsistentHash:
        w.u32(checkU32(p.weight, 'weight'));
        break;
      case PolicyType.Priority:
        w.u32(checkU32(p.priority, 'priority'));
        break;
      case PolicyType.LeastUsed:
      case PolicyType.RandomizedLeastUsed:
        w.u32(checkU32(p.load, 'load'));
        break;
      case PolicyType.LeastConnections:
        w.u32(checkU32(p.connections, 'connections'));
        break;
      case PolicyType.LeastUsedDegradation:
      case PolicyType.PriorityLeastUsed:
      case PolicyType.PriorityLeastUsedDegradation:
        w.u32(checkU32(p.load, 'load'));
        w.u32(checkU32(p.loadDegradation, 'load degradation'));
        break;
      case PolicyType.WeightedLeastConnections:
        w.u32(checkU32(p.weight, 'weight'));
        w.u32(checkU32(p.connections, 'connections'));
        break;
      case PolicyType.WeightedResponseTime:
        w.u32(checkU32(p.weight, 'weight'));
        w.u32(checkU32(p.responseTimeUs, 'response time'));
        break;
      case PolicyType.WeightedRandomDpf:
        w.u32(checkU32(p.weight, 'weight'));
        w.u32(checkU32(p.weightDpf, 'weight DPF'));
        w.u32(checkU32(p.distance, 'distance'));
        break;
      case PolicyType.LeastUsedDpf:
        w.u32(checkU32(p.load, 'load'));
        w.u32(checkU32(p.loadDpf, 'load DPF'));
        w.u32(checkU32(p.distance, 'distance'));
        break;
      default:
        assertNever(p, 'policy type');
    }
  }
  w.end(s);
}

export function writeBytesParameter(w: TlvWriter, type: number, b: Uint8Array): void {
  const s = w.begin(type);
  w.bytes(b);
  w.end(s);
}

export function writePoolElement(w: TlvWriter, e: PoolElementParameter): void {
  const s = w.begin(ParameterType.PoolElement);
  w.u32(checkU32(e.identifier, 'PE identifier'));
  w.u32(checkU32(e.homeRegistrarId, 'home registrar id'));
  w.u32(checkU32(e.registrationLife, 'registration life'));
  writeTransport(w, e.userTransport);
  writePolicy(w, e.policy);
  if (e.asapTransport) writeTransport(w, e.asapTransport);
  w.end(s);
}

export function writeServerInformation(w: TlvWriter, si: ServerInformation): void {
  const s = w.begin(ParameterType.ServerInformation);
  w.u32(checkU32(si.registrarId, 'registrar id'));
  writeTransport(w, si.transport);
  w.end(s);
}

export function writeOperationError(w: TlvWriter, causes: readonly ErrorCauseEntry[]): void {
  const s = w.begin(ParameterType.OperationError);
  for (const c of causes) {
    const cs = w.begin(checkU16(c.code, 'cause code'));
    w.bytes(c.info);
    w.end(cs);
  }
  w.end(s);
}

export function writeU32Parameter(w: TlvWriter, type: number, v: number, what: string): void {
  const s = w.begin(type);
  w.u32(checkU32(v, what));
  w.end(s);
}

export function writePeChecksum(w: TlvWriter, checksum: number): void {
  const s = w.begin(ParameterType.PeChecksum);
  w.u16(checkU16(checksum, 'PE checksum'));
  w.end(s);
}

export function writeUnknown(w: TlvWriter, p: UnknownParameter): void {
  if (isKnownParameterType(p.type)) throw new EncodeError(`parameter type 0x${p.type.toString(16)} is known; give its value`);
  writeBytesParameter(w, checkU16(p.type, 'parameter type'), p.raw);
}

export function writeParameter(w: TlvWriter, p: Parameter): void {
  switch (p.kind) {
    case 'address':
      return writeAddress(w, p.address);
    case 'transport':
      return writeTransport(w, p.transport);
    case 'policy':
      return writePolicy(w, p.policy);
    case 'handle':
      return writeBytesParameter(w, ParameterType.PoolHandle, p.handle);
    case 'element':
      return writePoolElement(w, p.element);
    case 'server':
      return writeServerInformation(w, p.server);
    case 'error':
      return writeOperationError(w, p.causes);
    case 'cookie':
      return writeBytesParameter(w, ParameterType.Cookie, p.cookie);
    case 'identifier':
      return writeU32Parameter(w, ParameterType.PeIdentifier, p.identifier, 'PE identifier');
    case 'checksum':
      return writePeChecksum(w, p.checksum);
    case 'hrOption':
      return writeU32Parameter(w, ParameterType.HandleResolutionOption, p.items, 'handle resolution items');
    case 'unknown':
      return writeUnknown(w, p.parameter);
    default:
      return assertNever(p, 'parameter');
  }
}

/** One parameter, padded. */
export function encodeParameter(p: Parameter): Uint8Array {
  const w = new TlvWriter(parameterSize(p));
  writeParameter(w, p);
  return w.finish();
}

// ---------------------------------------------------------------- readers

export function isKnownParameterType(type: number): boolean {
  return (type >= ParameterType.IPv4Address && type <= ParameterType.PeChecksum) || type === ParameterType.HandleResolutionOption;
}

function exactLength(r: TlvReader, h: TlvHeader, want: number, what: string): void {
  if (h.length !== want) r.fail(DecodeErrorCode.BadLength, `${what} parameter has length ${h.length}, must be ${want}`, h.offset + 2, h.type);
}

function atLeast(r: TlvReader, h: TlvHeader, want: number, what: string): void {
  if (h.length < want) r.fail(DecodeErrorCode.BadLength, `${what} parameter has length ${h.length}, at least ${want}`, h.offset + 2, h.type);
}

function readAddress(r: TlvReader, h: TlvHeader): IpAddress {
  const b = r.bytesView;
  if (h.type === ParameterType.IPv4Address) {
    exactLength(r, h, 8, 'IPv4 address');
    return formatIpv4(b, h.valueStart);
  }
  exactLength(r, h, 20, 'IPv6 address');
  return formatIpv6(b, h.valueStart);
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

function readTransport(r: TlvReader, h: TlvHeader): TransportAddress {
  const protocol = protocolOf(h.type);
  if (protocol === undefined) return r.fail(DecodeErrorCode.UnknownType, 'not a transport parameter', h.offset, h.type);
  atLeast(r, h, protocol === 'dccp' ? 12 : 8, `${protocol} transport`);
  const v = r.sub(h);
  const port = v.u16('port');
  const use = v.u16('transport use');
  let transportUse: TransportUse = TransportUse.DataOnly;
  if (protocol === 'sctp' || protocol === 'tcp') {
    if (use !== TransportUse.DataOnly && use !== TransportUse.DataPlusControl) {
      v.fail(DecodeErrorCode.BadValue, `transport use ${use} is neither 0 nor 1`, h.valueStart + 2);
    }
    transportUse = use === 1 ? TransportUse.DataPlusControl : TransportUse.DataOnly;
  }
  const t: TransportAddress = { protocol, port, addresses: [], transportUse };
  if (protocol === 'dccp') t.serviceCode = v.u32('DCCP service code');
  while (v.remaining > 0) {
    const a = v.next();
    if (a.type !== ParameterType.IPv4Address && a.type !== ParameterType.IPv6Address) {
      v.fail(DecodeErrorCode.BadNesting, `a transport parameter holds only addresses`, a.offset, a.type);
    }
    t.addresses.push(readAddress(v, a));
  }
  if (t.addresses.length === 0) v.fail(DecodeErrorCode.MissingParameter, `${protocol} transport without an address`, h.offset);
  if (t.addresses.length > 1 && protocol !== 'sctp') {
    v.fail(DecodeErrorCode.BadValue, `${protocol} transport with ${t.addresses.length} addresses`, h.offset);
  }
  return t;
}

function readPolicy(r: TlvReader, h: TlvHeader): MemberSelectionPolicy {
  atLeast(r, h, 8, 'member selection policy');
  const v = r.sub(h);
  const type = v.u32('policy type');
  const want = policyParameterLength(type);
  if (want === undefined) return { type, unknown: true, raw: v.bytes(v.remaining) };
  if (h.length !== want) {
    v.fail(DecodeErrorCode.BadLength, `policy 0x${type.toString(16)} has length ${h.length}, must be ${want}`, h.offset + 2);
  }
  switch (type) {
    case PolicyType.RoundRobin:
      return { type };
    case PolicyType.Random:
      return { type };
    case PolicyType.WeightedRoundRobin:
      return { type, weight: v.u32() };
    case PolicyType.WeightedRandom:
      return { type, weight: v.u32() };
    case PolicyType.ConsistentHash:
      return { type, weight: v.u32() };
    case PolicyType.Priority:
      return { type, priority: v.u32() };
    case PolicyType.LeastUsed:
      return { type, load: v.u32() };
    case PolicyType.RandomizedLeastUsed:
      return { type, load: v.u32() };
    case PolicyType.LeastConnections:
      return { type, connections: v.u32() };
    case PolicyType.LeastUsedDegradation:
      return { type, load: v.u32(), loadDegradation: v.u32() };
    case PolicyType.PriorityLeastUsed:
      return { type, load: v.u32(), loadDegradation: v.u32() };
    case PolicyType.PriorityLeastUsedDegradation:
      return { type, load: v.u32(), loadDegradation: v.u32() };
    case PolicyType.WeightedLeastConnections:
      return { type, weight: v.u32(), connections: v.u32() };
    case PolicyType.WeightedResponseTime:
      return { type, weight: v.u32(), responseTimeUs: v.u32() };
    case PolicyType.WeightedRandomDpf:
      return { type, weight: v.u32(), weightDpf: v.u32(), distance: v.u32() };
    case PolicyType.LeastUsedDpf:
      return { type, load: v.u32(), loadDpf: v.u32(), distance: v.u32() };
    default:
      return v.fail(DecodeErrorCode.UnknownType, 'policy type without a layout', h.offset);
  }
}

function isPolicyType(type: number): boolean {
  return type === ParameterType.MemberSelectionPolicy;
}

/** The next TLV inside a pool element, which must be of the kind `ok` accepts. */
function nestedTlv(v: TlvReader, h: TlvHeader, what: string, ok: (type: number) => boolean): TlvHeader {
  if (v.remaining === 0) v.fail(DecodeErrorCode.MissingParameter, `pool element without ${what}`, h.offset);
  const c = v.next();
  if (!ok(c.type)) v.fail(DecodeErrorCode.BadNesting, `pool element: expected ${what}`, c.offset, c.type);
  return c;
}

function readPoolElement(r: TlvReader, h: TlvHeader): PoolElementParameter {
  atLeast(r, h, 16, 'pool element');
  const v = r.sub(h);
  const identifier = v.u32();
  const homeRegistrarId = v.u32();
  const registrationLife = v.u32();
  const userTransport = readTransport(v, nestedTlv(v, h, 'a user transport', isTransportType));
  const policy = readPolicy(v, nestedTlv(v, h, 'a member selection policy', isPolicyType));
  const e: PoolElementParameter = { identifier, homeRegistrarId, registrationLife, userTransport, policy };
  if (v.remaining > 0) e.asapTransport = readTransport(v, nestedTlv(v, h, 'an ASAP transport', isTransportType));
  if (v.remaining > 0) {
    const extra = v.next();
    v.fail(DecodeErrorCode.BadNesting, 'pool element holds more than user transport, policy and ASAP transport', extra.offset, extra.type);
  }
  return e;
}

function readServerInformation(r: TlvReader, h: TlvHeader): ServerInformation {
  atLeast(r, h, 8, 'server information');
  const v = r.sub(h);
  const registrarId = v.u32();
  if (v.remaining === 0) v.fail(DecodeErrorCode.MissingParameter, 'server information without a transport', h.offset);
  const c = v.next();
  if (!isTransportType(c.type)) v.fail(DecodeErrorCode.BadNesting, 'server information holds a transport', c.offset, c.type);
  const transport = readTransport(v, c);
  if (v.remaining > 0) {
    const extra = v.next();
    v.fail(DecodeErrorCode.BadNesting, 'server information holds exactly one transport', extra.offset, extra.type);
  }
  return { registrarId, transport };
}

function readOperationError(r: TlvReader, h: TlvHeader): ErrorCauseEntry[] {
  const v = r.sub(h);
  const causes: ErrorCauseEntry[] = [];
  // Causes share the TLV layout (code, length without padding, info, padding).
  while (v.remaining > 0) {
    const c = v.next();
    causes.push({ code: c.type, info: copyBytes(v.bytesView, c.valueStart, c.valueEnd) });
  }
  return causes;
}

/** Reads the next parameter of `r`, whatever its type. */
export function readParameter(r: TlvReader): LocatedParameter {
  const header = r.next();
  return { param: readParameterValue(r, header), header };
}

function readParameterValue(r: TlvReader, h: TlvHeader): Parameter {
  const b = r.bytesView;
  switch (h.type) {
    case ParameterType.IPv4Address:
    case ParameterType.IPv6Address:
      return { kind: 'address', address: readAddress(r, h) };
    case ParameterType.DccpTransport:
    case ParameterType.SctpTransport:
    case ParameterType.TcpTransport:
    case ParameterType.UdpTransport:
    case ParameterType.UdpLiteTransport:
      return { kind: 'transport', transport: readTransport(r, h) };
    case ParameterType.MemberSelectionPolicy:
      return { kind: 'policy', policy: readPolicy(r, h) };
    case ParameterType.PoolHandle:
      return { kind: 'handle', handle: copyBytes(b, h.valueStart, h.valueEnd) };
    case ParameterType.PoolElement:
      return { kind: 'element', element: readPoolElement(r, h) };
    case ParameterType.ServerInformation:
      return { kind: 'server', server: readServerInformation(r, h) };
    case ParameterType.OperationError:
      return { kind: 'error', causes: readOperationError(r, h) };
    case ParameterType.Cookie:
      return { kind: 'cookie', cookie: copyBytes(b, h.valueStart, h.valueEnd) };
    case ParameterType.PeIdentifier:
      exactLength(r, h, 8, 'PE identifier');
      return { kind: 'identifier', identifier: r.sub(h).u32() };
    case ParameterType.PeChecksum:
      exactLength(r, h, 6, 'PE checksum');
      return { kind: 'checksum', checksum: r.sub(h).u16() };
    case ParameterType.HandleResolutionOption:
      exactLength(r, h, 8, 'handle resolution option');
      return { kind: 'hrOption', items: r.sub(h).u32() };
    default:
      return { kind: 'unknown', parameter: { type: h.type, raw: copyBytes(b, h.valueStart, h.valueEnd) } };
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

type ParameterOf<K extends Parameter['kind']> = Extract<Parameter, { kind: K }>;

/**
 * The top-level parameters of one message, taken by kind. Whatever a
 * message decoder did not take is misplaced (BAD_NESTING) unless its type
 * is unknown, in which case it is kept for the caller's RFC 5354 rule.
 */
export class ParameterList {
  readonly #items: LocatedParameter[];
  readonly #used: boolean[];
  readonly #messageType: number;
  readonly #messageOffset: number;

  constructor(r: TlvReader, messageType: number) {
    this.#items = [];
    while (r.remaining > 0) this.#items.push(readParameter(r));
    this.#used = new Array<boolean>(this.#items.length).fill(false);
    this.#messageType = messageType;
    this.#messageOffset = 0;
  }

  /** The first unused parameter of that kind, if any. */
  take<K extends Parameter['kind']>(kind: K): ParameterOf<K> | undefined {
    for (let i = 0; i < this.#items.length; i++) {
      const it = this.#items[i]!;
      if (!this.#used[i] && it.param.kind === kind) {
        this.#used[i] = true;
        return it.param as ParameterOf<K>;
      }
    }
    return undefined;
  }

  require<K extends Parameter['kind']>(kind: K, what: string): ParameterOf<K> {
    const p = this.take(kind);
    if (!p) {
      throw new DecodeError(DecodeErrorCode.MissingParameter, `message lacks its ${what} parameter`, {
        offset: this.#messageOffset,
        tlvType: this.#messageType,
      });
    }
    return p;
  }

  takeAll<K extends Parameter['kind']>(kind: K): ParameterOf<K>[] {
    const out: ParameterOf<K>[] = [];
    for (let p = this.take(kind); p; p = this.take(kind)) out.push(p);
    return out;
  }

  elements(): PoolElementParameter[] {
    const out: PoolElementParameter[] = [];
    for (let p = this.take('element'); p; p = this.take('element')) out.push(p.element);
    return out;
  }

  transports(): TransportAddress[] {
    const out: TransportAddress[] = [];
    for (let p = this.take('transport'); p; p = this.take('transport')) out.push(p.transport);
    return out;
  }

  servers(): ServerInformation[] {
    const out: ServerInformation[] = [];
    for (let p = this.take('server'); p; p = this.take('server')) out.push(p.server);
    return out;
  }

  /** In order, for layouts where position matters (pool entries). */
  rest(): LocatedParameter[] {
    const out: LocatedParameter[] = [];
    for (let i = 0; i < this.#items.length; i++) {
      if (!this.#used[i] && this.#items[i]!.param.kind !== 'unknown') {
        this.#used[i] = true;
        out.push(this.#items[i]!);
      }
    }
    return out;
  }

  /** Unknown parameters, after checking that every known one was taken. */
  finish(): UnknownParameter[] | undefined {
    let unknown: UnknownParameter[] | undefined;
    for (let i = 0; i < this.#items.length; i++) {
      if (this.#used[i]) continue;
      const { param, header } = this.#items[i]!;
      if (param.kind !== 'unknown') {
        throw new DecodeError(DecodeErrorCode.BadNesting, `parameter not allowed (or repeated) in message type 0x${this.#messageType.toString(16)}`, {
          offset: header.offset,
          tlvType: header.type,
        });
      }
      (unknown ??= []).push(param.parameter);
    }
    return unknown;
  }
}

export function unknownSize(unknown: readonly UnknownParameter[] | undefined): number {
  let n = 0;
  if (unknown) for (const u of unknown) n += bytesParameterSize(u.raw);
  return n;
}

export function writeUnknowns(w: TlvWriter, unknown: readonly UnknownParameter[] | undefined): void {
  if (unknown) for (const u of unknown) writeUnknown(w, u);
}
