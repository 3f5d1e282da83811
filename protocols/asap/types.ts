import type { ErrorCauseEntry, MemberSelectionPolicy, PoolElementParameter, TransportAddress, UnknownParameter } from '../parameters/types.js';

/** RFC 5352 section 2.2 message types. */
export const AsapMessageType = {
  Registration: 0x01,
  Deregistration: 0x02,
  RegistrationResponse: 0x03,
  DeregistrationResponse: 0x04,
  HandleResolution: 0x05,
  HandleResolutionResponse: 0x06,
  EndpointKeepAlive: 0x07,
  EndpointKeepAliveAck: 0x08,
  EndpointUnreachable: 0x09,
  ServerAnnounce: 0x0a,
  Cookie: 0x0b,
  CookieEcho: 0x0c,
  BusinessCard: 0x0d,
  Error: 0x0e,
} as const;
export type AsapMessageType = (typeof AsapMessageType)[keyof typeof AsapMessageType];

/** Flag bits defined per message type (Wireshark packet-asap.c); others are reserved. */
export const AsapFlags = {
  /** ASAP_REGISTRATION_RESPONSE: the registration was rejected. */
  Reject: 0x01,
  /** ASAP_ENDPOINT_KEEP_ALIVE: the sender wants to be the PE's new home registrar. */
  Home: 0x01,
} as const;

interface AsapBase {
  /** The whole flags byte; omitted means 0. */
  flags?: number;
  /** Parameters of unknown type, as received (the encoder writes them last). */
  unknown?: UnknownParameter[];
}

export interface AsapRegistration extends AsapBase {
  type: typeof AsapMessageType.Registration;
  handle: Uint8Array;
  element: PoolElementParameter;
}

export interface AsapDeregistration extends AsapBase {
  type: typeof AsapMessageType.Deregistration;
  handle: Uint8Array;
  identifier: number;
}

export interface AsapRegistrationResponse extends AsapBase {
  type: typeof AsapMessageType.RegistrationResponse;
  handle: Uint8Array;
  identifier: number;
  /** Operation Error causes, when the registrar reports any. */
  error?: ErrorCauseEntry[];
}

export interface AsapDeregistrationResponse extends AsapBase {
  type: typeof AsapMessageType.DeregistrationResponse;
  handle: Uint8Array;
  identifier: number;
  error?: ErrorCauseEntry[];
}

export interface AsapHandleResolution extends AsapBase {
  type: typeof AsapMessageType.HandleResolution;
  handle: Uint8Array;
  /** Handle Resolution Option (draft-dreibholz-rserpool-asap-hropt): PEs wanted. */
  items?: number;
}

export interface AsapHandleResolutionResponse extends AsapBase {
  type: typeof AsapMessageType.HandleResolutionResponse;
  handle: Uint8Array;
  /** Overall member selection policy of the pool. */
  policy?: MemberSelectionPolicy;
  elements: PoolElementParameter[];
  error?: ErrorCauseEntry[];
}

export interface AsapEndpointKeepAlive extends AsapBase {
  type: typeof AsapMessageType.EndpointKeepAlive;
  /** The sending registrar. */
  serverId: number;
  handle: Uint8Array;
  /** The PE addressed (RSPLIB sends it; Wireshark decodes either way). */
  identifier?: number;
}

export interface AsapEndpointKeepAliveAck extends AsapBase {
  type: typeof AsapMessageType.EndpointKeepAliveAck;
  handle: Uint8Array;
  identifier: number;
}

export interface AsapEndpointUnreachable extends AsapBase {
  type: typeof AsapMessageType.EndpointUnreachable;
  handle: Uint8Array;
  identifier: number;
}

export interface AsapServerAnnounce extends AsapBase {
  type: typeof AsapMessageType.ServerAnnounce;
  serverId: number;
  transports: TransportAddress[];
}

export interface AsapCookie extends AsapBase {
  type: typeof AsapMessageType.Cookie;
  cookie: Uint8Array;
}

export interface AsapCookieEcho extends AsapBase {
  type: typeof AsapMessageType.CookieEcho;
  cookie: Uint8Array;
}

export interface AsapBusinessCard extends AsapBase {
  type: typeof AsapMessageType.BusinessCard;
  handle: Uint8Array;
  elements: PoolElementParameter[];
}

export interface AsapError extends AsapBase {
  type: typeof AsapMessageType.Error;
  error: ErrorCauseEntry[];
}

export type AsapMessage =
  | AsapRegistration
  | AsapDeregistration
  | AsapRegistrationResponse
  | AsapDeregistrationResponse
  | AsapHandleResolution
  | AsapHandleResolutionResponse
  | AsapEndpointKeepAlive
  | AsapEndpointKeepAliveAck
  | AsapEndpointUnreachable
  | AsapServerAnnounce
  | AsapCookie
  | AsapCookieEcho
  | AsapBusinessCard
  | AsapError;
