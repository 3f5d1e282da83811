import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { RSerPoolError } from '../errors.js';
import type { Endpoint, Events, MessageTransport, TransportScheme, TransportUrl } from '../transport/types.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';

/**
 * What the session needs from a pool user: createPoolUser() satisfies it, a
 * test passes a fake. `resolve` returns PEs in the order to try them (the
 * pool's policy already applied); an empty pool may be [] or a rejection.
 */
export interface SessionResolver {
  resolve(handle: Uint8Array | string, opts?: { signal?: AbortSignal }): Promise<PoolElementParameter[]>;
  reportUnreachable(handle: Uint8Array | string, identifier: number, opts?: { signal?: AbortSignal }): Promise<void>;
}

/** Settings both ends share. */
export interface SessionWireInit {
  /**
   * Payload protocol id of the application data. Over memory:// data goes with
   * it and ASAP control with ppid 11; a tcp/tls stream has no ppid field, so
   * there it only labels the connection. Default 0 (unspecified).
   */
  ppid?: number;
  /** Largest application message accepted or sent (bytes). Default 16 MiB. */
  maxMessageSize?: number;
  /** Bytes of application data per DATA frame; lower it for a transport with a smaller maxMessageSize. Default 65,528. */
  chunkSize?: number;
  /**
   * Bytes the send queue may hold beyond what the transport took (a peer that
   * does not read); a send past it throws SessionLimitError and resets the
   * connection. Default 32 MiB.
   */
  maxQueuedBytes?: number;
  /** Messages the send queue may hold, likewise. Default 65,536. */
  maxQueuedMessages?: number;
}

export interface SessionInit extends SessionWireInit {
  handle: Uint8Array | string;
  resolver: SessionResolver;
  /** The transport for every PE; default tcp. Ignored when `transportFor` is given. */
  transport?: MessageTransport;
  /** Picks a transport per PE URL (a TransportSet's transportFor fits). */
  transportFor?: (url: TransportUrl) => MessageTransport;
  /**
   * Where to reach a PE; undefined skips it. Default: its TCP user transport's
   * first address and port under `scheme` (tcp://, tls://, or memory:// with
   * the address as host name).
   */
  urlOf?: (pe: PoolElementParameter) => string | undefined;
  /** Scheme for the default urlOf. Default: the transport's, else tcp. */
  scheme?: TransportScheme;
  /** Deadline of one connect to a PE. Default 5,000 ms. */
  connectTimeoutMs?: number;
  /** Deadline of one whole failover (resolve and connects). Default 30,000 ms. */
  failoverTimeoutMs?: number;
  /** Failovers in a row, with nothing heard from any PE in between, before giving up. Default 8. */
  maxFailovers?: number;
  /** Send a heartbeat after this long without hearing from the PE; 0 disables heartbeats. Default 5,000 ms. */
  heartbeatIntervalMs?: number;
  /** Fail over when a heartbeat stays unanswered this long. Default 5,000 ms. */
  heartbeatTimeoutMs?: number;
  /** Bytes send() may queue while failing over; beyond it send() throws SessionLimitError. Default 16 MiB. */
  maxPendingBytes?: number;
  /** Aborts the initial open. */
  signal?: AbortSignal;
}

export interface SessionComponents {
  clock?: Clock;
  logger?: Logger;
}

export interface FailoverEvent {
  /** The PE given up. */
  from: PoolElementParameter;
  /** The PE now serving the session. */
  to: PoolElementParameter;
  /** The last cookie went to `to` as ASAP_COOKIE_ECHO before any data. */
  cookieEchoed: boolean;
  /** Why the session left `from`. */
  reason: RSerPoolError;
}

export interface SessionEvents {
  /** One whole application message from the PE. */
  message: (bytes: Uint8Array) => void;
  /** The PE sent a new state cookie (ASAP_COOKIE); it is now `lastCookie`. */
  cookie: (cookie: Uint8Array) => void;
  /** The PE sent its business card: the PEs to fail over to (its last will). */
  businessCard: (handle: Uint8Array, elements: PoolElementParameter[]) => void;
  /** The session moved to another PE; send() works again (queued messages already went out). */
  failover: (event: FailoverEvent) => void;
  /** Emitted once. `err` is undefined after close(), else why the session gave up. */
  close: (err: RSerPoolError | undefined) => void;
}

export type SessionState = 'open' | 'failing-over' | 'closed';

export interface Session extends Events<SessionEvents> {
  readonly handle: Uint8Array;
  /** The PE serving the session (during a failover: the one being left). */
  readonly pe: PoolElementParameter;
  readonly state: SessionState;
  /** The last cookie the PE sent, echoed to the next PE on failover. */
  readonly lastCookie: Uint8Array | undefined;
  /** The PEs of the last business card received, tried first on failover. */
  readonly lastWill: readonly PoolElementParameter[];
  /**
   * Sends one application message. While failing over it is queued and sent
   * to the next PE after the cookie echo. Throws SessionClosedError or
   * SessionLimitError. See README/index for the delivery guarantees.
   */
  send(bytes: Uint8Array): void;
  /** Tells the PE how to reach this PU (a PU that is also a PE); re-sent to each PE after a failover. */
  sendBusinessCard(handle: Uint8Array | string, elements: PoolElementParameter[]): void;
  /**
   * Leaves the current PE (reported unreachable) for another, e.g. after an
   * application timeout. Resolves once the failover is done; rejects with
   * the error that closed the session if it gave up.
   */
  failover(reason?: string | Error, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Flushes what was sent and closes; a failover in progress is cut off and its queued messages dropped. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface SessionServerInit extends SessionWireInit {
  /** URL to listen on, e.g. tcp://127.0.0.1:0. */
  listen: string | TransportUrl;
  /** Default: tcp for a tcp:// URL; required for any other scheme. */
  transport?: MessageTransport;
  /** Close a session whose PU has sent nothing (data or heartbeat) for this long; 0 never. Default 60,000 ms. */
  idleTimeoutMs?: number;
}

export type SessionServerComponents = SessionComponents;

export interface ServerSessionEvents {
  /** One whole application message from the PU. */
  message: (bytes: Uint8Array) => void;
  /** The PU presented a cookie: a takeover. Emitted before any `message` of the session. */
  cookieEcho: (cookie: Uint8Array) => void;
  /** The PU sent its business card (how to reach it back). */
  businessCard: (handle: Uint8Array, elements: PoolElementParameter[]) => void;
  /** Emitted once; `err` says why when it was not a graceful close. */
  close: (err: RSerPoolError | undefined) => void;
}

export interface ServerSession extends Events<ServerSessionEvents> {
  readonly id: string;
  readonly remote: Endpoint;
  /** The cookie the PU echoed, if it did (this session is a takeover). */
  readonly echoedCookie: Uint8Array | undefined;
  readonly closed: boolean;
  /** Bytes queued for the PU that the transport has not taken yet (it does not read as fast as we send). */
  readonly queuedBytes: number;
  /** Sends one application message to the PU; throws SessionClosedError or SessionLimitError. */
  send(bytes: Uint8Array): void;
  /** Sends an ASAP_COOKIE: the state the PU echoes to the next PE if this one fails. */
  sendCookie(cookie: Uint8Array): void;
  /** Sends an ASAP_BUSINESS_CARD: the PEs the PU should fail over to (this PE's last will). */
  sendBusinessCard(handle: Uint8Array | string, elements: PoolElementParameter[]): void;
  /** Flushes and closes. */
  close(): Promise<void>;
  /** Resets the connection at once. */
  abort(err?: RSerPoolError): void;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface SessionServerEvents {
  /** A PU connected; attach the session's handlers in this callback. */
  session: (session: ServerSession) => void;
}

export interface SessionLeaveOptions {
  /** The pool handle for the business card. Default: empty. */
  handle?: Uint8Array | string;
  elements?: PoolElementParameter[];
  cookieOf?: (session: ServerSession) => Uint8Array | undefined;
}

export interface SessionServer extends Events<SessionServerEvents> {
  /** The bound URL (real port after listening on port 0); throws SessionServerStateError before start(). */
  readonly address: TransportUrl;
  readonly sessions: readonly ServerSession[];
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Leaves (deregister the PE first): stops listening, sends each session
   * its cookie (`cookieOf`, when it gives one) and a business card naming
   * `elements` (the PEs to go to; [] lets the PU resolve), then closes it
   * gracefully. The PU fails over at once and does not report this PE
   * unreachable. Resolves once every session is closed.
   */
  leave(opts?: SessionLeaveOptions): Promise<void>;
  /** Stops listening and closes every session. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
