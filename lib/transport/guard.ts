/**
 * Admission and timeouts for a server's inbound connections: caps per
 * listener and per source address, a deadline for the first whole message
 * and, optionally, for silence after it. Transport-agnostic; the partial
 * message deadline lives in the stream framing (it sees the bytes).
 */
import { EventEmitter } from 'eventemitter3';
import { InvalidOptionError, type RSerPoolError } from '../errors.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import { ConnectionLimitError, IdleTimeoutError } from './errors.js';
import type { Connection, Endpoint, Listener, ListenerEvents, ListenOptions, TransportUrl } from './types.js';

export interface ConnectionLimits {
  /** Open inbound connections per listener; more are reset at once. Default 1,024. */
  maxConnections?: number;
  /** Open inbound connections per source address and listener. Default 128. */
  maxConnectionsPerHost?: number;
  /** A connection with no whole message this long after accept is reset; 0 never. Default 10,000 ms. */
  firstMessageTimeoutMs?: number;
  /** A connection that sends nothing this long is reset; 0 never. Default 0 (off). */
  idleTimeoutMs?: number;
  /** Stream transports: a message begun and not finished this long resets the connection; 0 never. Default 10,000 ms. */
  partialMessageTimeoutMs?: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<Required<ConnectionLimits>> = Object.freeze({
  maxConnections: 1024,
  maxConnectionsPerHost: 128,
  firstMessageTimeoutMs: 10_000,
  idleTimeoutMs: 0,
  partialMessageTimeoutMs: 10_000,
});

export function connectionLimits(limits: ConnectionLimits = {}): Required<ConnectionLimits> {
  const out = { ...DEFAULT_CONNECTION_LIMITS };
  for (const k of Object.keys(out) as (keyof ConnectionLimits)[]) {
    const v = limits[k];
    if (v === undefined) continue;
    if (!(v >= 0) || !Number.isFinite(v)) throw new InvalidOptionError(`${k} must be a number >= 0, not ${String(v)}`);
    out[k] = v;
  }
  if (out.maxConnections < 1 || out.maxConnectionsPerHost < 1) throw new InvalidOptionError('connection caps must be at least 1');
  return out;
}

/** An IPv4 peer on a dual-stack socket counts as its IPv4 address. */
const hostKey = (e: Endpoint): string => (e.host.startsWith('::ffff:') ? e.host.slice(7) : e.host);

export interface GuardComponents {
  clock: Clock;
  logger: Logger;
}

class GuardedListener extends EventEmitter<ListenerEvents> implements Listener {
  readonly #inner: Listener;
  readonly #limits: Required<ConnectionLimits>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #perHost = new Map<string, number>();
  /** Connections that have not sent a whole message yet, oldest first: the first to make room. */
  readonly #silent = new Set<Connection>();
  #open = 0;

  constructor(inner: Listener, limits: Required<ConnectionLimits>, components: GuardComponents) {
    super();
    this.#inner = inner;
    this.#limits = limits;
    this.#clock = components.clock;
    this.#logger = components.logger;
    inner.on('connection', (conn) => this.#admit(conn));
    inner.on('inboundError', (err, remote) => this.emit('inboundError', err, remote));
    inner.on('close', () => this.emit('close'));
  }

  get address(): TransportUrl {
    return this.#inner.address;
  }

  /** Open connections admitted and not yet closed. */
  get connections(): number {
    return this.#open;
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #admit(conn: Connection): void {
    const host = hostKey(conn.remote);
    const fromHost = this.#perHost.get(host) ?? 0;
    const { maxConnections, maxConnectionsPerHost } = this.#limits;
    let refusal: string | undefined;
    // At a cap, the oldest connection that never sent a message makes room (from the same host for the
    // per-host cap): idle connections alone cannot lock out a client that speaks at once.
    if (fromHost >= maxConnectionsPerHost) {
      if (!this.#evictSilent(host)) refusal = `${fromHost} connections open from ${host}, the cap is ${maxConnectionsPerHost}`;
    } else if (this.#open >= maxConnections) {
      if (!this.#evictSilent(undefined)) refusal = `${this.#open} connections open on ${this.address.href}, the cap is ${maxConnections}`;
    }
    if (refusal !== undefined) {
      const err = new ConnectionLimitError(refusal);
      conn.abort(err);
      this.emit('inboundError', err, conn.remote);
      return;
    }
    if (this.listenerCount('connection') === 0) return conn.abort();
    this.#open++;
    this.#perHost.set(host, (this.#perHost.get(host) ?? 0) + 1);
    this.#silent.add(conn);
    conn.on('message', () => this.#silent.delete(conn));
    conn.on('close', () => {
      this.#silent.delete(conn);
      this.#open--;
      const n = (this.#perHost.get(host) ?? 1) - 1;
      if (n > 0) this.#perHost.set(host, n);
      else this.#perHost.delete(host);
    });
    this.#watch(conn);
    this.emit('connection', conn);
  }

  /** Resets the oldest silent connection (of `host`, if given); false if there is none. */
  #evictSilent(host: string | undefined): boolean {
    for (const old of this.#silent) {
      if (host !== undefined && hostKey(old.remote) !== host) continue;
      this.#silent.delete(old);
      const err = new ConnectionLimitError(`${old.id}: reset to make room at the connection cap (no message sent yet)`);
      old.abort(err);
      this.emit('inboundError', err, old.remote);
      return true;
    }
    return false;
  }

  /** One timer per connection, re-armed from the last message instead of reset on each one. */
  #watch(conn: Connection): void {
    const { firstMessageTimeoutMs: first, idleTimeoutMs: idle } = this.#limits;
    if (first <= 0 && idle <= 0) return;
    const clock = this.#clock;
    let lastRx = clock.now();
    let heard = false;
    let timer: TimerHandle | undefined;
    const arm = (): void => {
      const limit = heard ? idle : first;
      timer = limit > 0 ? clock.setTimeout(check, Math.max(0, lastRx + limit - clock.now())) : undefined;
    };
    const check = (): void => {
      timer = undefined;
      if (conn.status !== 'open') return;
      const limit = heard ? idle : first;
      const quiet = clock.now() - lastRx;
      if (quiet < limit) return arm();
      const err: RSerPoolError = new IdleTimeoutError(
        heard ? `${conn.id}: nothing received for ${quiet} ms` : `${conn.id}: no message within ${quiet} ms of connecting`,
      );
      this.#logger.info({ id: conn.id, remote: `${conn.remote.host}:${conn.remote.port}`, err: err.message }, 'closing a silent connection');
      conn.abort(err);
    };
    conn.on('message', () => {
      lastRx = clock.now();
      if (heard) return;
      heard = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      arm();
    });
    conn.on('close', () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    });
    arm();
  }
}

/** Wraps a listener so that only connections within `limits` reach its 'connection' handlers. */
export function guardListener(inner: Listener, limits: ConnectionLimits, components: GuardComponents): Listener & { readonly connections: number } {
  return new GuardedListener(inner, connectionLimits(limits), components);
}

/** Listens on `url` (with the partial message deadline of `limits`) and guards the listener. */
export async function listenGuarded(
  transport: { listen(url: string, opts?: ListenOptions): Promise<Listener> },
  url: string,
  opts: ListenOptions,
  limits: ConnectionLimits | undefined,
  components: GuardComponents,
): Promise<Listener & { readonly connections: number }> {
  const l = connectionLimits(limits);
  const inner = await transport.listen(url, { ...opts, partialMessageTimeoutMs: l.partialMessageTimeoutMs });
  return new GuardedListener(inner, l, components);
}
