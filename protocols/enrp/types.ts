import type { ErrorCauseEntry, PoolElementParameter, ServerInformation, UnknownParameter, UnreachableReportParameter } from '../parameters/types.js';

/** RFC 5353 section 2 message types. */
export const EnrpMessageType = {
  Presence: 0x01,
  HandleTableRequest: 0x02,
  HandleTableResponse: 0x03,
  HandleUpdate: 0x04,
  ListRequest: 0x05,
  ListResponse: 0x06,
  InitTakeover: 0x07,
  InitTakeoverAck: 0x08,
  TakeoverServer: 0x09,
  Error: 0x0a,
} as const;
export type EnrpMessageType = (typeof EnrpMessageType)[keyof typeof EnrpMessageType];

/** Flag bits defined per message type (Wireshark packet-enrp.c); others are reserved. */
export const EnrpFlags = {
  /** ENRP_PRESENCE: the receiver must answer with a Presence. */
  ReplyRequired: 0x01,
  /** ENRP_HANDLE_TABLE_REQUEST: only the PEs whose home is the receiver. */
  OwnChildrenOnly: 0x01,
  /** ENRP_HANDLE_TABLE_RESPONSE, ENRP_LIST_RESPONSE: request rejected. */
  Reject: 0x01,
  /** ENRP_HANDLE_TABLE_RESPONSE: more entries follow in another response. */
  MoreToSend: 0x02,
  /** ENRP_HANDLE_UPDATE: takeover suggested (draft, as Wireshark). */
  TakeoverSuggested: 0x01,
} as const;

export const HandleUpdateAction = {
  AddOrUpdate: 0,
  Delete: 1,
} as const;
export type HandleUpdateAction = (typeof HandleUpdateAction)[keyof typeof HandleUpdateAction];

interface EnrpBase {
  /** The whole flags byte; omitted means 0. */
  flags?: number;
  senderServerId: number;
  /** 0 when the message is not addressed to one registrar. */
  receiverServerId: number;
  /** Parameters of unknown type, as received (the encoder writes them last). */
  unknown?: UnknownParameter[];
}

export interface EnrpPresence extends EnrpBase {
  type: typeof EnrpMessageType.Presence;
  /** The sender's PE checksum (RFC 5353 section 3.9; a 16-bit Internet checksum). */
  checksum: number;
  server?: ServerInformation;
  /** rserpool's extension (RFC peers skip it): PUs reported this PE, which the receiver is home for, unreachable. */
  unreachable?: UnreachableReportParameter;
}

export interface EnrpHandleTableRequest extends EnrpBase {
  type: typeof EnrpMessageType.HandleTableRequest;
}

/** One pool of a handle table response: its handle and the PEs that follow it. */
export interface EnrpPoolEntry {
  handle: Uint8Array;
  elements: PoolElementParameter[];
  /** rserpool's extension (RFC peers skip it): the PE Owner Identity of elements[i], sent right after it. */
  owners?: (Uint8Array | undefined)[];
}

export interface EnrpHandleTableResponse extends EnrpBase {
  type: typeof EnrpMessageType.HandleTableResponse;
  pools: EnrpPoolEntry[];
}

export interface EnrpHandleUpdate extends EnrpBase {
  type: typeof EnrpMessageType.HandleUpdate;
  action: HandleUpdateAction;
  handle: Uint8Array;
  element: PoolElementParameter;
  /** rserpool's extension (RFC peers skip it): SHA-256 of the identity that registered the PE. */
  ownerIdentity?: Uint8Array;
}

export interface EnrpListRequest extends EnrpBase {
  type: typeof EnrpMessageType.ListRequest;
}

export interface EnrpListResponse extends EnrpBase {
  type: typeof EnrpMessageType.ListResponse;
  servers: ServerInformation[];
}

export interface EnrpInitTakeover extends EnrpBase {
  type: typeof EnrpMessageType.InitTakeover;
  targetServerId: number;
}

export interface EnrpInitTakeoverAck extends EnrpBase {
  type: typeof EnrpMessageType.InitTakeoverAck;
  targetServerId: number;
}

export interface EnrpTakeoverServer extends EnrpBase {
  type: typeof EnrpMessageType.TakeoverServer;
  targetServerId: number;
}

export interface EnrpError extends EnrpBase {
  type: typeof EnrpMessageType.Error;
  error: ErrorCauseEntry[];
}

export type EnrpMessage =
  | EnrpPresence
  | EnrpHandleTableRequest
  | EnrpHandleTableResponse
  | EnrpHandleUpdate
  | EnrpListRequest
  | EnrpListResponse
  | EnrpInitTakeover
  | EnrpInitTakeoverAck
  | EnrpTakeoverServer
  | EnrpError;
