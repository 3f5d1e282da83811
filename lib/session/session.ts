/**
 * The PU side of a session (after RSPLIB's rsp_sendmsg/rsp_recvmsg): one
 * connection to one PE at a time; when it fails, the next PE is taken from
 * the PE's last business card, else from a fresh resolution, and is handed
 * the last cookie (ASAP_COOKIE_ECHO) before any data.
 *
 * Delivery: at most once. A message the transport took before the PE was
 * lost is not sent again (the dead PE may or may not have processed it);
 * messages the transport had not taken in full, and messages sent during the
 * failover, go to the next PE, in order, after the cookie echo. If the
 * session gives up, queued messages are dropped. An application that needs
 * at-least-once resends its outstanding requests on `failover` and makes
 * them idempotent (the cookie tells the new PE how far the old one got).
 */
import { EventEmitter } from 'eventemitter3';
import { AsapMessageType, type AsapBusinessCard, type AsapMessage } from '../../protocols/asap/types.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';
import { AbortedError, InvalidOptionError, RSerPoolError } from '../errors.js';
import { systemClock, type Clock } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import { createTcpTransport } from '../transport/tcp.js';
import { ConnectionClosedError } from '../transport/errors.js';
import { parseTransportUrl } from '../transport/url.js';
import type { MessageTransport, TransportUrl } from '../transport/types.js';
import { SessionChannel } from './channel.js';
import { FailoverLimitError, FailoverRequestedError, FailoverTimeoutError, NoPoolElementError, SessionClosedError, SessionLimitError } from './errors.js';
import { MAX_CHUNK_SIZE } from './frames.js';
import { describePe, peUrl, toHandle } from './util.js';
import type { Session, SessionComponents, SessionEvents, SessionInit, SessionState, SessionWireInit } from './types.js';

const DEFAULTS = {
  ppid: 0,
  maxMessageSize: 16 * 1024 * 1024,
  connectTimeoutMs: 5_000,
  failoverTimeoutMs: 30_000,
  maxFailovers: 8,
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 5_000,
  maxPendingBytes: 16 * 1024 * 1024,
  maxQueuedBytes: 32 * 1024 * 1024,
  maxQueuedMessages: 65_536,
} as const;

interface Settings {
  ppid: number;
  maxMessageSize: number;
  chunkSize: number;
  maxQueuedBytes: number;
  maxQueuedMessages: number;
  connectTimeoutMs: number;
  failoverTimeoutMs: number;
  maxFailovers: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxPendingBytes: number;
  urlOf: (pe: PoolElementParameter) => string | undefined;
  transportFor: (url: TransportUrl) => MessageTransport;
}

function nonNegative(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!(x >= 0)) throw new InvalidOptionError(`${name} must be >= 0, not ${String(v)}`);
  return x;
}

export function sessionWireSettings(init: SessionWireInit): {
  ppid: number;
  maxMessageSize: number;
  chunkSize: number;
  maxQueuedBytes: number;
  maxQueuedMessages: number;
} {
  const chunkSize = init.chunkSize ?? MAX_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new InvalidOptionError(`chunkSize must be an integer in 1..${MAX_CHUNK_SIZE}, not ${chunkSize}`);
  }
  return {
    ppid: init.ppid ?? DEFAULTS.ppid,
    maxMessageSize: nonNegative('maxMessageSize', init.maxMessageSize, DEFAULTS.maxMessageSize),
    chunkSize,
    maxQueuedBytes: nonNegative('maxQueuedBytes', init.maxQueuedBytes, DEFAULTS.maxQueuedBytes),
    maxQueuedMessages: nonNegative('maxQueuedMessages', init.maxQueuedMessages, DEFAULTS.maxQueuedMessages),
  };
}

function settingsOf(init: SessionInit): Settings {
  const scheme = init.scheme ?? init.transport?.scheme ?? 'tcp';
  const fixed = init.transport ?? (init.transportFor ? undefined : createTcpTransport());
  return {
    ...sessionWireSettings(init),
    connectTimeoutMs: nonNegative('connectTimeoutMs', init.connectTimeoutMs, DEFAULTS.connectTimeoutMs),
    failoverTimeoutMs: nonNegative('failoverTimeoutMs', init.failoverTimeoutMs, DEFAULTS.failoverTimeoutMs),
    maxFailovers: nonNegative('maxFailovers', init.maxFailovers, DEFAULTS.maxFailovers),
    heartbeatIntervalMs: nonNegative('heartbeatIntervalMs', init.heartbeatIntervalMs, DEFAULTS.heartbeatIntervalMs),
    heartbeatTimeoutMs: nonNegative('heartbeatTimeoutMs', init.heartbeatTimeoutMs, DEFAULTS.heartbeatTimeoutMs),
    maxPendingBytes: nonNegative('maxPendingBytes', init.maxPendingBytes, DEFAULTS.maxPendingBytes),
    urlOf: init.urlOf ?? ((pe) => peUrl(pe, scheme)),
    transportFor: init.transportFor ?? (() => fixed!),
  };
}

/** The abort reason as a typed error. */
function abortError(signal: AbortSignal): RSerPoolError {
  const r: unknown = signal.reason;
  return r instanceof RSerPoolError ? r : new AbortedError('the operation was aborted', { cause: r });
}

function asError(err: unknown): RSerPoolError {
  return err instanceof RSerPoolError ? err : new RSerPoolError('RSP_ERR_INTERNAL', String(err), { cause: err });
}

class SessionImpl extends EventEmitter<SessionEvents> implements Session {
  readonly handle: Uint8Array;
  readonly #handleArg: Uint8Array | string;
  readonly #resolver: SessionInit['resolver'];
  readonly #s: Settings;
  readonly #clock: Clock;
  readonly #logger: Logger;
  /** Aborted when the session closes: cuts off resolves, connects and reports in flight. */
  readonly #life = new AbortController();
  #state: SessionState = 'failing-over';
  #pe: PoolElementParameter | undefined;
  #channel: SessionChannel | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #lastCookie: Uint8Array | undefined;
  #lastWill: PoolElementParameter[] = [];
  #card: AsapBusinessCard | undefined;
  /** Failovers since the last data or cookie from a PE. */
  #inARow = 0;
  #failover: Promise<void> | undefined;
  #closeError: RSerPoolError | undefined;

  constructor(init: SessionInit, components: SessionComponents) {
    super();
    this.#handleArg = init.handle;
    this.handle = toHandle(init.handle);
    this.#resolver = init.resolver;
    this.#s = settingsOf(init);
    this.#clock = components.clock ?? systemClock;
    this.#logger = (components.logger ?? silentLogger).child({ component: 'session' });
  }

  get pe(): PoolElementParameter {
    return this.#pe!;
  }

  get state(): SessionState {
    return this.#state;
  }

  get lastCookie(): Uint8Array | undefined {
    return this.#lastCookie;
  }

  get lastWill(): readonly PoolElementParameter[] {
    return this.#lastWill;
  }

  async open(signal: AbortSignal | undefined): Promise<void> {
    const s = signal ? AbortSignal.any([signal, this.#life.signal]) : this.#life.signal;
    const { pe, channel } = await this.#hunt(new Set(), s, undefined);
    this.#install(pe, channel);
    this.#state = 'open';
    this.#logger.debug({ pe: pe.identifier }, 'session open');
  }

  send(bytes: Uint8Array): void {
    if (this.#state === 'closed') throw new SessionClosedError('cannot send: the session is closed', { cause: this.#closeError });
    if (bytes.length > this.#s.maxMessageSize) throw new SessionLimitError('message', bytes.length, this.#s.maxMessageSize);
    if (this.#state === 'open' && this.#channel) {
      this.#channel.sendData(bytes);
      return;
    }
    if (this.#pendingBytes + bytes.length > this.#s.maxPendingBytes) {
      throw new SessionLimitError('queue during failover', this.#pendingBytes + bytes.length, this.#s.maxPendingBytes);
    }
    this.#pending.push(bytes.slice());
    this.#pendingBytes += bytes.length;
  }

  sendBusinessCard(handle: Uint8Array | string, elements: PoolElementParameter[]): void {
    if (this.#state === 'closed') throw new SessionClosedError('cannot send: the session is closed', { cause: this.#closeError });
    this.#card = { type: AsapMessageType.BusinessCard, handle: toHandle(handle), elements: [...elements] };
    // While failing over it goes out after the cookie echo, as to every later PE.
    if (this.#state === 'open') this.#channel?.sendAsap(this.#card);
  }

  async failover(reason: string | Error = 'failover requested by the application', opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'closed') throw new SessionClosedError('cannot fail over: the session is closed', { cause: this.#closeError });
    const why = reason instanceof RSerPoolError ? reason : new FailoverRequestedError(typeof reason === 'string' ? reason : reason.message, { cause: reason });
    const running = this.#failover ?? this.#startFailover(why);
    const signal = opts.signal;
    if (signal) {
      if (signal.aborted) throw abortError(signal);
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(abortError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        void running.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    } else await running;
    if ((this.#state as SessionState) === 'closed') throw this.#closeError ?? new SessionClosedError();
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#life.abort(new SessionClosedError('the session was closed'));
    this.#dropPending();
    const ch = this.#channel;
    this.#channel = undefined;
    if (ch) await ch.close();
    this.emit('close', undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #install(pe: PoolElementParameter, ch: SessionChannel): void {
    this.#pe = pe;
    this.#channel = ch;
    ch.on('data', (bytes) => {
      if (this.#channel !== ch) return;
      this.#inARow = 0;
      this.emit('message', bytes);
    });
    // A business card as the last thing before a graceful close: the PE leaves the pool (it deregistered).
    let cardLast = false;
    ch.on('data', () => (cardLast = false));
    ch.on('asap', (m) => {
      if (this.#channel !== ch) return;
      cardLast = m.type === AsapMessageType.BusinessCard;
      this.#onAsap(m);
    });
    ch.on('close', (err) => {
      if (this.#channel !== ch || this.#state !== 'open') return;
      const left = err === undefined && cardLast;
      void this.#startFailover(err ?? new ConnectionClosedError(`${describePe(pe)} ${left ? 'left the pool' : 'closed the session'}`), !left);
    });
  }

  #onAsap(m: AsapMessage): void {
    switch (m.type) {
      case AsapMessageType.Cookie:
        this.#lastCookie = m.cookie.slice();
        this.#inARow = 0;
        this.emit('cookie', this.#lastCookie);
        return;
      case AsapMessageType.BusinessCard:
        this.#lastWill = m.elements;
        this.emit('businessCard', m.handle.slice(), m.elements);
        return;
      default:
        this.#logger.debug({ type: m.type }, 'ignoring an ASAP message a PE has no reason to send');
    }
  }

  #startFailover(reason: RSerPoolError, report = true): Promise<void> {
    const old = this.#channel;
    const from = this.#pe!;
    this.#state = 'failing-over';
    this.#channel = undefined;
    if (old) {
      // What the dead PE's transport never took in full goes to the next PE, ahead of what was sent since.
      const carried = old.unsentData();
      this.#pending.unshift(...carried);
      for (const c of carried) this.#pendingBytes += c.length;
      old.detach(reason);
    }
    this.#logger.info({ pe: from.identifier, reason: reason.code }, 'PE lost, failing over');
    if (report) this.#report(from);
    this.#inARow++;
    const run = this.#runFailover(from, reason).finally(() => {
      this.#failover = undefined;
    });
    this.#failover = run;
    return run;
  }

  /** Never rejects: a failure closes the session with the reason. */
  async #runFailover(from: PoolElementParameter, reason: RSerPoolError): Promise<void> {
    if (this.#inARow > this.#s.maxFailovers) {
      this.#giveUp(new FailoverLimitError(`${this.#inARow - 1} failovers in a row without hearing from a PE`, { cause: reason }));
      return;
    }
    const ac = new AbortController();
    const onLife = (): void => ac.abort(this.#life.signal.reason);
    this.#life.signal.addEventListener('abort', onLife, { once: true });
    const timer = this.#clock.setTimeout(
      () => ac.abort(new FailoverTimeoutError(`no PE reached within ${this.#s.failoverTimeoutMs} ms`, { cause: reason })),
      this.#s.failoverTimeoutMs,
    );
    try {
      const echo = this.#lastCookie;
      const { pe, channel } = await this.#hunt(new Set([from.identifier]), ac.signal, echo);
      // close() may have run while we waited.
      if ((this.#state as SessionState) === 'closed') {
        channel.detach();
        return;
      }
      this.#install(pe, channel);
      this.#state = 'open';
      const queued = this.#pending;
      this.#dropPending();
      for (const m of queued) channel.sendData(m);
      this.#logger.info({ from: from.identifier, to: pe.identifier, cookieEchoed: echo !== undefined }, 'failed over');
      this.emit('failover', { from, to: pe, cookieEchoed: echo !== undefined, reason });
    } catch (err) {
      if (this.#state !== 'closed') this.#giveUp(asError(err));
    } finally {
      this.#clock.clearTimeout(timer);
      this.#life.signal.removeEventListener('abort', onLife);
    }
  }

  /**
   * Connects to the first PE that answers: the last will's first, then a
   * fresh resolution's; each one that fails is reported unreachable.
   */
  async #hunt(exclude: ReadonlySet<number>, signal: AbortSignal, echo: Uint8Array | undefined): Promise<{ pe: PoolElementParameter; channel: SessionChannel }> {
    const tried = new Set(exclude);
    let lastError: unknown;
    let resolved = false;
    while (!resolved) {
      let candidates = this.#lastWill.filter((pe) => !tried.has(pe.identifier));
      if (candidates.length === 0) {
        resolved = true;
        try {
          candidates = (await this.#resolver.resolve(this.#handleArg, { signal })).filter((pe) => !tried.has(pe.identifier));
        } catch (err) {
          if (signal.aborted) throw abortError(signal);
          lastError = err;
          break;
        }
      }
      for (const pe of candidates) {
        if (signal.aborted) throw abortError(signal);
        tried.add(pe.identifier);
        try {
          return { pe, channel: await this.#connect(pe, signal, echo) };
        } catch (err) {
          if (signal.aborted) throw abortError(signal);
          lastError = err;
          this.#logger.info({ pe: pe.identifier, err: (err as Error).message }, 'PE unreachable');
          this.#report(pe);
        }
      }
    }
    throw new NoPoolElementError(`no PE of the pool could be reached (${tried.size - exclude.size} tried)`, { cause: lastError });
  }

  async #connect(pe: PoolElementParameter, signal: AbortSignal, echo: Uint8Array | undefined): Promise<SessionChannel> {
    const href = this.#s.urlOf(pe);
    if (href === undefined) throw new NoPoolElementError(`${describePe(pe)} has no user transport this session can use`);
    const url = parseTransportUrl(href);
    const conn = await this.#s.transportFor(url).connect(url, { signal, timeoutMs: this.#s.connectTimeoutMs, ppid: this.#s.ppid });
    if (signal.aborted || conn.status !== 'open') {
      conn.abort();
      throw signal.aborted ? abortError(signal) : new ConnectionClosedError(`${describePe(pe)} closed the connection at once`);
    }
    const ch = new SessionChannel(conn, {
      maxMessageSize: this.#s.maxMessageSize,
      chunkSize: this.#s.chunkSize,
      maxQueuedBytes: this.#s.maxQueuedBytes,
      maxQueuedMessages: this.#s.maxQueuedMessages,
      heartbeatIntervalMs: this.#s.heartbeatIntervalMs,
      deadAfterMs: this.#s.heartbeatIntervalMs > 0 ? this.#s.heartbeatIntervalMs + this.#s.heartbeatTimeoutMs : 0,
      clock: this.#clock,
      logger: this.#logger,
    });
    // RFC 5352 section 3.3 / RFC 5351 section 3: the cookie echo goes before any data.
    if (echo) ch.sendAsap({ type: AsapMessageType.CookieEcho, cookie: echo });
    if (this.#card) ch.sendAsap(this.#card);
    return ch;
  }

  #report(pe: PoolElementParameter): void {
    this.#resolver.reportUnreachable(this.#handleArg, pe.identifier, { signal: this.#life.signal }).catch((err: unknown) => {
      this.#logger.debug({ pe: pe.identifier, err: (err as Error).message }, 'could not report the PE unreachable');
    });
  }

  #dropPending(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  #giveUp(err: RSerPoolError): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closeError = err;
    this.#logger.warn({ err: err.code, msg: err.message }, 'session given up');
    this.#life.abort(err);
    this.#dropPending();
    this.#channel?.detach(err);
    this.#channel = undefined;
    this.emit('close', err);
  }
}

/**
 * Opens a session to a PE of the pool `init.handle`. Rejects with
 * NoPoolElementError when no PE can be reached, AbortedError on the signal.
 */
export async function openSession(init: SessionInit, components: SessionComponents = {}): Promise<Session> {
  const s = new SessionImpl(init, components);
  await s.open(init.signal);
  return s;
}
