import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { AnnounceListener, AnnounceListenInit } from '../announce/announce.js';
import type { ConnectionLimits, Events, TransportSet } from '../transport/index.js';
import type { MemberSelectionPolicy, TransportAddress } from '../../protocols/parameters/types.js';

export interface PoolElementInit {
  handle: Uint8Array | string;
  policy: MemberSelectionPolicy;
  /** Where PUs reach this PE; address 0.0.0.0 / :: lets the registrar fill in the source address it sees. */
  userTransport: TransportAddress;
  /** Registrar ASAP URLs, tried in order. */
  registrars?: string[];
  /**
   * Registrar discovery by server announce: listener options (a listener is
   * opened and closed with the PE) or a shared listener. Default: on with
   * default options when `registrars` is empty, else off.
   */
  discovery?: AnnounceListenInit | AnnounceListener | false;
  /**
   * Listen for ASAP here (e.g. `tcp://127.0.0.1:0`) and register it as the
   * PE's ASAP transport, so a registrar that takes this PE over can reach it
   * with an H-bit keep-alive; the PE then adopts that connection as its home.
   * Default: none (the PE re-registers elsewhere when its home goes away).
   */
  asapListen?: string;
  /**
   * Who may ask this PE to leave the pool, with an ASAP_DEREGISTRATION naming
   * it sent to `asapListen` (`rserpool drain`): IP addresses or CIDR blocks,
   * and `id:NAME` for an identity a TLS handshake proved. Default loopback
   * only; [] refuses everyone (with the security cause).
   */
  leaveRequestsFrom?: string[];
  /**
   * Who may make itself this PE's home with an H-bit keep-alive sent to
   * `asapListen` (a registrar taking it over; RFC 5355): same forms as
   * `leaveRequestsFrom`. Default loopback only: off loopback, list the
   * registrars' addresses or, better, their TLS identities (`id:NAME`).
   */
  takeoverFrom?: string[];
  /** Caps and timeouts of the connections `asapListen` accepts (see ConnectionLimits for the defaults). */
  asapListenLimits?: ConnectionLimits;
  /** Random non-zero when absent. */
  identifier?: number;
  /** Registration life asked for. Default 30,000 ms. */
  registrationLifeMs?: number;
  /** Re-register after this fraction of the life. Default 0.5. */
  reregisterFraction?: number;
  /**
   * Wait for a registration response (RFC 5352 T2-registration). Default
   * 5,000 ms. A re-registration waits at most half the life left after it,
   * so a PE whose home stopped answering registers elsewhere before it expires.
   */
  registrationTimeoutMs?: number;
  /** Wait for a deregistration response on stop() (T3-deregistration). Default 2,000 ms. */
  deregistrationTimeoutMs?: number;
  /** Connect deadline per registrar. Default 5,000 ms. */
  connectTimeoutMs?: number;
  /**
   * While hunting, a registrar that has not answered the registration this
   * long after the connection is up is passed over for the next (a frozen
   * one's kernel still accepts TCP connections). Default 1,000 ms, but
   * registrationTimeoutMs over SCTP (whose user-space stack accepts nothing
   * while frozen); registrationTimeoutMs caps it.
   */
  huntAttemptTimeoutMs?: number;
  /** Registrar hunt backoff: first pause and cap. Default 250 ms and 10,000 ms. */
  huntBackoffMs?: { initial?: number; max?: number };
  /** start() gives up after this. Default 30,000 ms. */
  startTimeoutMs?: number;
}

export interface PoolElementComponents {
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
  /** Default: tcp only. */
  transports?: TransportSet;
}

export interface PoolElementEvents {
  /** A registration or re-registration was accepted by the registrar at `registrar`. */
  registered: (registrar: string, first: boolean) => void;
  /** The home registrar changed (hunt after a failure, or H-bit keep-alive). */
  'registrar-changed': (registrar: string, previous: string | undefined) => void;
  /** A background failure (re-registration refused, hunt failing); the PE keeps trying. */
  error: (err: Error) => void;
  /**
   * An allowed peer asked this PE to leave the pool (see leaveRequestsFrom).
   * Without a listener the PE stops; with one, the application leaves its
   * own way and calls stop(), which answers the request once deregistered.
   */
  'leave-requested': (from: string) => void;
  /** stop() deregistered (or gave up waiting for the answer). */
  deregistered: (confirmed: boolean) => void;
}

export interface PoolElement extends Events<PoolElementEvents> {
  readonly identifier: number;
  readonly handle: Uint8Array;
  /** URL of the home registrar's ASAP connection, if registered. */
  readonly registrar: string | undefined;
  /** Home registrar id, once a keep-alive told it. */
  readonly registrarId: number | undefined;
  readonly registered: boolean;
  readonly policy: MemberSelectionPolicy;
  /** Registers; resolves once registered, rejects with RegistrationRefusedError / NoRegistrarError / AbortedError. */
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  /** New policy values (same policy type, e.g. a load); re-registers at once. */
  updatePolicy(values: Partial<MemberSelectionPolicy>, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Deregisters (waits for the answer up to deregistrationTimeoutMs) and closes. */
  stop(opts?: { signal?: AbortSignal }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
