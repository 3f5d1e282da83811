import type { RSerPoolError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';

/** Payload protocol identifiers (the SCTP PPID registry values RSerPool uses). */
export const PPID = { ASAP: 11, ENRP: 12 } as const;

export type TransportScheme = 'tcp' | 'tls' | 'memory' | 'sctp' | 'sctp+udp';

/** A parsed transport address; `href` is its canonical text form. */
export interface TransportUrl {
  readonly scheme: TransportScheme;
  /** IP address or host name (without IPv6 brackets); for memory://, the endpoint name. */
  readonly host: string;
  /** 0 means "any free port" when listening; memory:// ports are optional and default to 0. */
  readonly port: number;
  readonly href: string;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

import type { Events } from '../events.js';
export type { Events } from '../events.js';

export interface ConnectionEvents {
  /**
   * One whole message. `bytes` may be a view into a receive buffer that the
   * transport will not touch again; copy it only to keep it past a mutation.
   */
  message: (bytes: Uint8Array, ppid: number) => void;
  /** The outbound buffer fell back under its high-water mark after send() returned false. */
  drain: () => void;
  /** Emitted once. `err` is undefined for a graceful close by either side. */
  close: (err: RSerPoolError | undefined) => void;
}

export type ConnectionStatus = 'open' | 'closing' | 'closed';

/**
 * Who the peer proved to be during the transport's handshake (RFC 5355).
 * `name` is what policies match: the PSK identity, or the certificate's
 * common name (its first DNS or IP subject alternative name when it has no CN).
 * On a PSK connection this side dialled, `name` is the identity it presented:
 * the server proved it holds that key, not who it is.
 */
export type PeerIdentity =
  | { readonly kind: 'psk'; readonly name: string }
  | {
      readonly kind: 'certificate';
      readonly name: string;
      readonly subject: string;
      /** Subject alternative names as the certificate lists them, e.g. 'DNS:pe1.example', 'IP Address:127.0.0.1'. */
      readonly altNames: readonly string[];
      /** SHA-256 fingerprint, colon-separated hex as Node prints it. */
      readonly fingerprint256: string;
    };

export interface Connection extends Events<ConnectionEvents> {
  readonly id: string;
  readonly scheme: TransportScheme;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** The peer's authenticated identity; undefined when the transport authenticated nobody (tcp://, sctp://, TLS without a client certificate). */
  readonly peerIdentity?: PeerIdentity | undefined;
  /** The connection's protocol id: the only one a stream (tcp/tls) connection carries. */
  readonly ppid: number;
  readonly status: ConnectionStatus;
  /** Outbound bytes accepted by send() but not yet handed to the network. */
  readonly bufferedAmount: number;
  /**
   * Queues one whole message (do not mutate it afterwards). Returns false when
   * the outbound buffer is above its high-water mark: wait for 'drain'.
   * Throws (and queues nothing) with MessageTooLargeError, InvalidMessageError,
   * PpidMismatchError, BufferFullError, or ConnectionClosedError.
   */
  send(bytes: Uint8Array, ppid?: number): boolean;
  /** Flushes what is queued, then closes; resolves once closed (forcibly after the close timeout). */
  close(): Promise<void>;
  /** Closes at once, discarding queued data; the peer sees a reset. */
  abort(err?: RSerPoolError): void;
  /** Resolves (never rejects) with the close reason, undefined for a graceful close. */
  readonly closed: Promise<RSerPoolError | undefined>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ListenerEvents {
  /** An accepted connection, ready for send(); attach its handlers in this callback. */
  connection: (conn: Connection) => void;
  /** An inbound connection failed before it was accepted (e.g. a TLS handshake); the listener carries on. */
  inboundError: (err: RSerPoolError, remote: Endpoint) => void;
  close: () => void;
}

export interface Listener extends Events<ListenerEvents> {
  /** The bound address, with the real port when asked for port 0. */
  readonly address: TransportUrl;
  /** Stops accepting and frees the address; connections already accepted stay open. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /** Deadline for the whole connect (TCP and TLS handshake); default from the transport's init. */
  timeoutMs?: number;
  /** Protocol id of the connection; defaults to the transport's `ppid` (ASAP). */
  ppid?: number;
}

export interface ListenOptions {
  signal?: AbortSignal;
  /** Protocol id of accepted connections; defaults to the transport's `ppid` (ASAP). */
  ppid?: number;
  /** Stream transports: accepted connections' partial message deadline; default from the transport's init. */
  partialMessageTimeoutMs?: number;
}

export interface MessageTransport {
  readonly scheme: TransportScheme;
  connect(url: TransportUrl | string, opts?: ConnectOptions): Promise<Connection>;
  listen(url: TransportUrl | string, opts?: ListenOptions): Promise<Listener>;
}

/** Limits and defaults shared by every transport. */
export interface TransportInit {
  /** Largest message sent or accepted (bytes, including header and padding). Default 65,538. */
  maxMessageSize?: number;
  /** Default protocol id. Default ASAP (11). */
  ppid?: number;
  /** Default connect deadline. Default 10,000 ms. */
  connectTimeoutMs?: number;
  /** After close(), how long to wait for the peer before resetting. Default 5,000 ms. */
  closeTimeoutMs?: number;
  /** Hard limit on outbound buffered bytes per connection; send() beyond it throws BufferFullError. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Stream transports: a peer that begins a message and does not finish it this long is reset; 0 never. Default 10,000 ms. */
  partialMessageTimeoutMs?: number;
}

export interface TransportComponents {
  clock?: Clock;
  logger?: Logger;
}
