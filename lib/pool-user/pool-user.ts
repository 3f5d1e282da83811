/**
 * A pool user: resolves pool handles at a registrar (RFC 5352 3.5), caches
 * the answer briefly, reports unreachable PEs, and moves to the next
 * registrar when the one in use fails.
 */
import { openSession, type Session } from '../session/index.js';
import type { PoolUserConnectOptions } from './types.js';
import { EventEmitter } from 'eventemitter3';
import { systemClock, type Clock } from '../clock.js';
import { RttEstimator } from '../rtt.js';
import { AbortedError, TimeoutError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { AsapChannel, handleBytes, sameBytes } from '../asap-client/channel.js';
import { NoRegistrarError, StoppedError } from '../asap-client/errors.js';
import { listenAnnounces, type AnnounceListener } from '../announce/announce.js';
import { ConnectionClosedError, createTransports, type TransportSet } from '../transport/index.js';
import { AsapMessageType, type AsapHandleResolutionResponse } from '../../protocols/asap/types.js';
import { ErrorCause, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { ResolutionError, UnknownPoolHandleError } from './errors.js';
import type { PoolUser, PoolUserComponents, PoolUserEvents, PoolUserInit, ResolveOptions } from './types.js';

interface Cached {
  items: number;
  elements: PoolElementParameter[];
  at: number;
}

/**
 * A resolution's first wait, before round trips are measured (then 4 smoothed
 * round trips, never less): a frozen registrar costs this, not the whole
 * requestTimeoutMs. Each further try waits twice as long; the last waits
 * requestTimeoutMs, so a cluster that is only slow still answers.
 */
const MIN_REQUEST_WAIT_MS = 250;

const keyOf = (h: Uint8Array): string => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('latin1');

function isAnnounceListener(d: unknown): d is AnnounceListener {
  return typeof d === 'object' && d !== null && typeof (d as AnnounceListener).registrars === 'function';
}

/** `p`, or AbortedError as soon as `signal` fires (p carries on for its other waiters). */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AbortedError('aborted', { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError('aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

class PoolUserImpl extends EventEmitter<PoolUserEvents> implements PoolUser {
  readonly #init: PoolUserInit;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #transports: TransportSet;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<PoolElementParameter[]>>();
  #channel: AsapChannel | undefined;
  #connecting: Promise<AsapChannel> | undefined;
  #cursor = 0;
  #lastUrl: string | undefined;
  #discovery: AnnounceListener | undefined;
  #discoveryStarting: Promise<void> | undefined;
  #closed = false;
  /** Round trips of answered requests (and, until one is, of the connect). */
  readonly #rtt = new RttEstimator();

  constructor(init: PoolUserInit, components: PoolUserComponents) {
    super();
    this.#init = init;
    this.#clock = components.clock ?? systemClock;
    this.#logger = (components.logger ?? silentLogger).child({ component: 'pool-user' });
    this.#transports = components.transports ?? createTransports({}, { clock: this.#clock, logger: components.logger ?? silentLogger });
    const d = init.discovery ?? ((init.registrars ?? []).length === 0 ? {} : false);
    if (isAnnounceListener(d)) this.#discovery = d;
    else if (d !== false) {
      this.#discoveryStarting = listenAnnounces(d, { clock: this.#clock, logger: this.#logger }).then(
        (l) => {
          if (this.#closed) void l.close();
          else this.#discovery = l;
        },
        (err: unknown) => this.#logger.warn({ err: (err as Error).message }, 'registrar discovery unavailable'),
      );
    }
  }

  get registrar(): string | undefined {
    return this.#channel?.open ? this.#channel.url : undefined;
  }

  async resolve(h: Uint8Array | string, opts: ResolveOptions = {}): Promise<PoolElementParameter[]> {
    if (this.#closed) throw new StoppedError('pool user is closed');
    const handle = handleBytes(h);
    const key = keyOf(handle);
    const items = opts.items ?? this.#init.items ?? 3;
    const ttl = this.#init.cacheTtlMs ?? 250;
    const cached = this.#cache.get(key);
    if (!opts.fresh && cached && cached.items === items && this.#clock.now() - cached.at < ttl) return cached.elements.slice();
    const ik = `${items}#${key}`;
    let p = this.#inflight.get(ik);
    if (!p) {
      p = this.#fetch(handle, items)
        .then((elements) => {
          if (ttl > 0) this.#cache.set(key, { items, elements, at: this.#clock.now() });
          return elements;
        })
        .finally(() => this.#inflight.delete(ik));
      this.#inflight.set(ik, p);
    }
    return (await abortable(p, opts.signal)).slice();
  }

  async reportUnreachable(h: Uint8Array | string, identifier: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const handle = handleBytes(h);
    const key = keyOf(handle);
    const cached = this.#cache.get(key);
    if (cached) {
      cached.elements = cached.elements.filter((e) => e.identifier !== identifier);
      if (cached.elements.length === 0) this.#cache.delete(key);
    }
    const ch = await abortable(this.#ensure(), opts.signal);
    ch.send({ type: AsapMessageType.EndpointUnreachable, handle, identifier });
  }

  connect(h: Uint8Array | string, opts: PoolUserConnectOptions = {}): Promise<Session> {
    return openSession(
      { transportFor: (u) => this.#transports.transportFor(u), ...opts, handle: h, resolver: this },
      { clock: this.#clock, logger: this.#logger },
    );
  }

  async start(): Promise<void> {
    if (this.#closed) throw new StoppedError('pool user is closed');
    await this.#discoveryStarting;
  }

  stop(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.clear();
    const ch = this.#channel;
    this.#channel = undefined;
    if (ch) {
      ch.onClose = () => {};
      await ch.close();
    }
    await this.#discoveryStarting;
    if (this.#discovery && !isAnnounceListener(this.#init.discovery)) await this.#discovery.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** One resolution, failing over to the next registrar on a lost connection, a timeout or an unsynchronised registrar. */
  async #fetch(handle: Uint8Array, items: number): Promise<PoolElementParameter[]> {
    let lastErr: Error | undefined;
    const tries = Math.max(3, this.#candidates().length + 1);
    for (let i = 0; i < tries; i++) {
      let ch: AsapChannel;
      try {
        ch = await this.#ensure();
      } catch (err) {
        // None reachable now: a lost SYN costs a connect timeout (TCP resends it after 1 s); the next try connects again.
        if (!(err instanceof NoRegistrarError) || this.#closed || this.#candidates().length === 0) throw err;
        lastErr = err;
        continue;
      }
      let res: AsapHandleResolutionResponse;
      try {
        const sentAt = this.#clock.now();
        res = await ch.request(
          { type: AsapMessageType.HandleResolution, handle, items },
          (m): m is AsapHandleResolutionResponse => m.type === AsapMessageType.HandleResolutionResponse && sameBytes(m.handle, handle),
          { timeoutMs: this.#wait(i, tries) },
        );
        this.#rtt.sample(this.#clock.now() - sentAt);
      } catch (err) {
        if (!(err instanceof ConnectionClosedError || err instanceof TimeoutError)) throw err;
        lastErr = err;
        this.#drop(ch);
        continue;
      }
      const cause = res.error?.[0];
      if (cause?.code === ErrorCause.LackOfResources) {
        lastErr = new ResolutionError(cause.code, `${ch.url} cannot resolve now (lack of resources)`);
        this.#drop(ch);
        continue;
      }
      if (cause?.code === ErrorCause.RejectionDueToSecurityConsiderations) {
        throw new ResolutionError(cause.code, `handle resolution refused by ${ch.url}: not authorized for this pool handle`);
      }
      if (cause && cause.code !== ErrorCause.UnknownPoolHandle) {
        throw new ResolutionError(cause.code, `handle resolution refused by ${ch.url} (cause 0x${cause.code.toString(16)})`);
      }
      if (cause || res.elements.length === 0) throw new UnknownPoolHandleError(handle, `no pool elements under handle '${keyOf(handle)}'`);
      return res.elements;
    }
    throw new NoRegistrarError('no registrar answered the handle resolution', { cause: lastErr });
  }

  /** How long try `attempt` of `tries` waits for its answer. */
  #wait(attempt: number, tries: number): number {
    const max = this.#init.requestTimeoutMs ?? 3_000;
    if (attempt === tries - 1) return max;
    const first = Math.max(this.#init.minRequestTimeoutMs ?? MIN_REQUEST_WAIT_MS, 4 * this.#rtt.srtt);
    return Math.min(max, first * 2 ** attempt);
  }

  #candidates(): string[] {
    const out = [...(this.#init.registrars ?? [])];
    for (const a of this.#discovery?.registrars() ?? []) for (const u of a.urls) if (!out.includes(u)) out.push(u);
    return out;
  }

  #drop(ch: AsapChannel): void {
    if (ch === this.#channel) {
      this.#channel = undefined;
      this.#cursor++;
    }
    ch.onClose = () => {};
    ch.conn.abort();
  }

  #ensure(): Promise<AsapChannel> {
    if (this.#closed) return Promise.reject(new StoppedError('pool user is closed'));
    if (this.#channel?.open) return Promise.resolve(this.#channel);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<AsapChannel> {
    await this.#discoveryStarting;
    const candidates = this.#candidates();
    let lastErr: unknown;
    for (let i = 0; i < candidates.length; i++) {
      const idx = (this.#cursor + i) % candidates.length;
      const url = candidates[idx]!;
      try {
        const connectAt = this.#clock.now();
        const conn = await this.#transports.connect(url, { timeoutMs: this.#init.connectTimeoutMs ?? 5_000 });
        // A handshake is a round trip: the first wait follows it until a request is answered.
        if (!this.#rtt.measured) this.#rtt.sample(this.#clock.now() - connectAt);
        const ch = new AsapChannel(conn, url, this.#clock, this.#logger);
        ch.onClose = (c) => {
          if (c === this.#channel) {
            this.#channel = undefined;
            this.#cursor++;
          }
        };
        const previous = this.#lastUrl;
        this.#lastUrl = url;
        this.#channel = ch;
        this.#cursor = idx;
        if (previous !== url) this.emit('registrar-changed', url, previous);
        return ch;
      } catch (err) {
        lastErr = err;
        this.#logger.info({ url, err: (err as Error).message }, 'registrar not reachable');
      }
    }
    throw new NoRegistrarError(candidates.length === 0 ? 'no registrar configured or announced' : 'no registrar reachable', { cause: lastErr });
  }
}

export function createPoolUser(init: PoolUserInit = {}, components: PoolUserComponents = {}): PoolUser {
  return new PoolUserImpl(init, components);
}
