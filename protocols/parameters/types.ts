/**
 * RFC 5354 parameters as plain values. The codec in this folder maps them to
 * and from the wire; lib/ uses them as its data model.
 */

export const ParameterType = {
  IPv4Address: 0x0001,
  IPv6Address: 0x0002,
  DccpTransport: 0x0003,
  SctpTransport: 0x0004,
  TcpTransport: 0x0005,
  UdpTransport: 0x0006,
  UdpLiteTransport: 0x0007,
  MemberSelectionPolicy: 0x0008,
  PoolHandle: 0x0009,
  PoolElement: 0x000a,
  ServerInformation: 0x000b,
  OperationError: 0x000c,
  Cookie: 0x000d,
  PeIdentifier: 0x000e,
  PeChecksum: 0x000f,
  /** draft-dreibholz-rserpool-asap-hropt */
  HandleResolutionOption: 0x803f,
  /**
   * rserpool's own ENRP extensions, typed 0b10xx (RFC 5354 section 3: skip,
   * do not report), so RFC peers such as RSPLIB pass over them. The SHA-256
   * of the identity that registered a PE, right after its Pool Element.
   */
  PeOwnerIdentity: 0x8f01,
  /** In an ENRP presence to a PE's home: PUs reported that PE (identifier, then pool handle) unreachable. */
  UnreachableReport: 0x8f02,
} as const;
export type ParameterType = (typeof ParameterType)[keyof typeof ParameterType];

/** Bytes of a PE Owner Identity value (a SHA-256 digest). */
export const OWNER_IDENTITY_BYTES = 32;

/** What RFC 5354 section 3 says to do with an unrecognized parameter (its type's top two bits). */
export const UnknownParameterAction = {
  Stop: 0b00,
  StopAndReport: 0b01,
  Skip: 0b10,
  SkipAndReport: 0b11,
} as const;
export type UnknownParameterAction = (typeof UnknownParameterAction)[keyof typeof UnknownParameterAction];

export function unknownParameterAction(type: number): UnknownParameterAction {
  return ((type >>> 14) & 0b11) as UnknownParameterAction;
}

/** A parameter this codec does not know, kept as received (value bytes without header or padding). */
export interface UnknownParameter {
  type: number;
  raw: Uint8Array;
}

/** An IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1") address in text form. */
export type IpAddress = string;

export const TransportUse = {
  DataOnly: 0,
  DataPlusControl: 1,
} as const;
export type TransportUse = (typeof TransportUse)[keyof typeof TransportUse];

export type TransportProtocol = 'sctp' | 'tcp' | 'udp' | 'udp-lite' | 'dccp';

/** SCTP / TCP / UDP / UDP-Lite / DCCP transport parameter. */
export interface TransportAddress {
  protocol: TransportProtocol;
  port: number;
  /** One for TCP/UDP/UDP-Lite/DCCP, one or more for SCTP. */
  addresses: IpAddress[];
  /** SCTP and TCP only; UDP, UDP-Lite and DCCP carry a reserved field, always 0. */
  transportUse: TransportUse;
  /** DCCP only. */
  serviceCode?: number;
}

/** RFC 5356 policy types, RSPLIB's published extensions, and this project's own. */
export const PolicyType = {
  RoundRobin: 0x00000001,
  WeightedRoundRobin: 0x00000002,
  Random: 0x00000003,
  WeightedRandom: 0x00000004,
  Priority: 0x00000005,
  LeastUsed: 0x40000001,
  LeastUsedDegradation: 0x40000002,
  PriorityLeastUsed: 0x40000003,
  RandomizedLeastUsed: 0x40000004,
  /** RSPLIB (draft-dreibholz-rserpool-delay), known to Wireshark. */
  PriorityLeastUsedDegradation: 0xb0001003,
  WeightedRandomDpf: 0xb0002001,
  LeastUsedDpf: 0xb0002002,
  /** rserpool's own (private range): load = active sessions. */
  LeastConnections: 0xb0003001,
  WeightedLeastConnections: 0xb0003002,
  /** rserpool's own: the PE reports its response time in microseconds. */
  WeightedResponseTime: 0xb0003003,
  /** rserpool's own: sticky clients by hash of the PU's key on a ring. */
  ConsistentHash: 0xb0003004,
} as const;
export type PolicyType = (typeof PolicyType)[keyof typeof PolicyType];

/** Loads are fractions of 0xffffffff (100 %), as RFC 5356 section 4.2. */
export const LOAD_MAX = 0xffffffff;

export type MemberSelectionPolicy =
  | { type: typeof PolicyType.RoundRobin }
  | { type: typeof PolicyType.Random }
  | { type: typeof PolicyType.WeightedRoundRobin; weight: number }
  | { type: typeof PolicyType.WeightedRandom; weight: number }
  | { type: typeof PolicyType.Priority; priority: number }
  | { type: typeof PolicyType.LeastUsed; load: number }
  | { type: typeof PolicyType.RandomizedLeastUsed; load: number }
  | { type: typeof PolicyType.LeastUsedDegradation; load: number; loadDegradation: number }
  | { type: typeof PolicyType.PriorityLeastUsed; load: number; loadDegradation: number }
  | { type: typeof PolicyType.PriorityLeastUsedDegradation; load: number; loadDegradation: number }
  | { type: typeof PolicyType.WeightedRandomDpf; weight: number; weightDpf: number; distance: number }
  | { type: typeof PolicyType.LeastUsedDpf; load: number; loadDpf: number; distance: number }
  | { type: typeof PolicyType.LeastConnections; connections: number }
  | { type: typeof PolicyType.WeightedLeastConnections; weight: number; connections: number }
  | { type: typeof PolicyType.WeightedResponseTime; weight: number; responseTimeUs: number }
  | { type: typeof PolicyType.ConsistentHash; weight: number }
  /** A policy type this codec does not know: its values kept as received. */
  | { type: number; unknown: true; raw: Uint8Array };

/** RFC 5354 section 3.3: the Pool Element parameter. */
export interface PoolElementParameter {
  identifier: number;
  /** 0 while it has none. */
  homeRegistrarId: number;
  /** Registration life in milliseconds; 0xffffffff = infinite. */
  registrationLife: number;
  userTransport: TransportAddress;
  policy: MemberSelectionPolicy;
  asapTransport?: TransportAddress;
}

/** rserpool's Unreachable Report parameter: which PE PUs reported. */
export interface UnreachableReportParameter {
  identifier: number;
  handle: Uint8Array;
}

/** RFC 5354 section 3.4: the Server Information parameter. */
export interface ServerInformation {
  registrarId: number;
  transport: TransportAddress;
}

/** RFC 5354 section 3.5.x error cause codes. */
export const ErrorCause = {
  UnrecognizedParameter: 0x1,
  UnrecognizedMessage: 0x2,
  InvalidValues: 0x3,
  NonUniquePeIdentifier: 0x4,
  InconsistentPoolingPolicy: 0x5,
  LackOfResources: 0x6,
  InconsistentTransportType: 0x7,
  InconsistentDataControlConfiguration: 0x8,
  UnknownPoolHandle: 0x9,
  RejectionDueToSecurityConsiderations: 0xa,
} as const;
export type ErrorCause = (typeof ErrorCause)[keyof typeof ErrorCause];

/** One error cause of an Operation Error parameter; `info` is the cause-specific bytes (an offending parameter or message, unpadded). */
export interface ErrorCauseEntry {
  code: number;
  info: Uint8Array;
}
