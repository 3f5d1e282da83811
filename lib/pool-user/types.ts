import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { AnnounceListener, AnnounceListenInit } from '../announce/announce.js';
import type { Events, TransportSet } from '../transport/index.js';
import type { Session, SessionInit } from '../session/index.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';

export interface PoolUserInit {
  /** Registrar ASAP URLs, tried in order; the next is used when one fails. */
  registrars?: string[];
  /** As for the pool element: announce listener options or a shared listener; default on when `registrars` is empty. */
  discovery?: AnnounceListenInit | AnnounceListener | false;
  /** How long a resolution is reused. Default 250 ms; 0 disables the cache. */
  cacheTtlMs?: number;
  /** PEs asked for per resolution (Handle Resolution Option). Default 3. */
  items?: number;
  /**
   * The longest wait for a handle resolution response. Default 3,000 ms. Only
   * the last try waits this long: the first waits minRequestTimeoutMs or 4
   * measured round trips, whichever is longer, each further one twice that.
   */
  requestTimeoutMs?: number;
  /** The first try's wait before round trips are measured (a frozen registrar costs this). Default 250 ms. */
  minRequestTimeoutMs?: number;
  /** Connect deadline per registrar. Default 5,000 ms. */
  connectTimeoutMs?: number;
}

export interface PoolUserComponents {
  clock?: Clock;
  logger?: Logger;
  transports?: TransportSet;
}

export interface PoolUserEvents {
  /** The registrar connection in use changed (first connect or failover). */
  'registrar-changed': (registrar: string, previous: string | undefined) => void;
}

export interface ResolveOptions {
  signal?: AbortSignal;
  /** Overrides init.items for this call (a cached answer is reused only if it was asked with the same count). */
  items?: number;
  /** Skip the cache. */
  fresh?: boolean;
}

/** Session options for `connect()`; the pool user supplies the resolver and the transports. */
export type PoolUserConnectOptions = Omit<SessionInit, 'handle' | 'resolver'>;

export interface PoolUser extends Events<PoolUserEvents> {
  readonly registrar: string | undefined;
  /** PEs of the pool, chosen by the registrar by the pool's policy; rejects with UnknownPoolHandleError for an unknown or empty pool. */
  resolve(handle: Uint8Array | string, opts?: ResolveOptions): Promise<PoolElementParameter[]>;
  /** Sends ASAP_ENDPOINT_UNREACHABLE and drops the PE from the cache. */
  reportUnreachable(handle: Uint8Array | string, identifier: number, opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * A session with a PE of the pool, for a custom TCP/TLS service: it fails
   * over by itself when its PE dies, echoing the PE's last state cookie to
   * the next one (see lib/session).
   */
  connect(handle: Uint8Array | string, opts?: PoolUserConnectOptions): Promise<Session>;
  /** Waits for registrar discovery to be listening (resolve() also works without it). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The same as stop(). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
