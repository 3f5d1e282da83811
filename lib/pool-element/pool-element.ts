/**
 * A pool element: registers its user transport under a pool handle with a
 * registrar, re-registers before the life runs out, answers keep-alives,
 * hunts another registrar when its home goes quiet or away, deregisters on
 * stop (RFC 5352 sections 3.1-3.4, 3.7).
 */
import { EventEmitter } from 'eventemitter3';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { AbortedError, InvalidOptionError, TimeoutError, type RSerPoolError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { listenAnnounces, type AnnounceListener } from '../announce/announce.js';
import { createTransports, listenGuarded, parseTransportUrl, type Listener, type TransportSet } from '../transport/index.js';
import { BlockList, isIP } from 'node:net';
import { AsapFlags, AsapMessageType, type AsapDeregistrationResponse, type AsapMessage, type AsapRegistrationResponse } from '../../protocols/asap/types.js';
import { ErrorCause, TransportUse, type MemberSelectionPolicy, type PoolElementParameter, type TransportAddress } from '../../protocols/parameters/types.js';
import { AsapChannel, handleBytes, sameBytes, sleep } from '../asap-client/channel.js';
import { NoRegistrarError, StoppedError } from '../asap-client/errors.js';
import { RegistrationRefusedError } from './errors.js';
import type { PoolElement, PoolElementComponents, PoolElementEvents, PoolElementInit } from './types.js';

function randomIdentifier(random: () => number): number {
  for (;;) {
    const id = Math.floor(random() * 0x1_0000_0000) >>> 0;
    if (id !== 0) return id;
  }
}

function isAnnounceListener(d: unknown): d is AnnounceListener {
  return typeof d === 'object' && d !== null && typeof (d as AnnounceListener).registrars === 'function';
}

class PoolElementImpl extends EventEmitter<PoolElementEvents> implements PoolElement {
  readonly identifier: number;
  readonly handle: Uint8Array;
  readonly #init: PoolElementInit;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #transports: TransportSet;
  readonly #life: number;
  readonly #stop = new AbortController();
  #policy: MemberSelectionPolicy;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #channel: AsapChannel | undefined;
  #registrar: string | undefined;
  #registrarId: number | undefined;
  #registered = false;
  #everRegistered = false;
  #lastLost: string | undefined;
  /** The home we gave up on (silent, or refusing): tried last. One that closed on us is there: tried first. */
  #gaveUpOn: AsapChannel | undefined;
  #lastLostAnswers = false;
  #reregTimer: TimerHandle | undefined;
  #hunting: Promise<void> | undefined;
  #huntAbort: AbortController | undefined;
  #discovery: AnnounceListener | undefined;
  #ownDiscovery = false;
  /** Where a registrar that took us over reaches us (asapListen). */
  #asapListener: Listener | undefined;
  #asapTransport: TransportAddress | undefined;
  readonly #inbound = new Set<AsapChannel>();
  readonly #leaveFrom: { addresses: BlockList; identities: ReadonlySet<string> };
  readonly #takeoverFrom: { addresses: BlockList; identities: ReadonlySet<string> };
  /** Channels whose leave request stop() answers once deregistered. */
  readonly #leaveAskers = new Set<AsapChannel>();

  constructor(init: PoolElementInit, components: PoolElementComponents) {
    super();
    if (init.reregisterFraction !== undefined && !(init.reregisterFraction > 0 && init.reregisterFraction < 1)) {
      throw new InvalidOptionError(`reregisterFraction ${init.reregisterFraction} is not in (0, 1)`);
    }
    this.#init = init;
    this.#clock = components.clock ?? systemClock;
    this.#random = components.random ?? Math.random;
    this.identifier = init.identifier !== undefined && init.identifier !== 0 ? init.identifier >>> 0 : randomIdentifier(this.#random);
    this.#logger = (components.logger ?? silentLogger).child({ component: 'pool-element', pe: this.identifier.toString(16) });
    this.#transports = components.transports ?? createTransports({}, { clock: this.#clock, logger: components.logger ?? silentLogger });
    this.handle = handleBytes(init.handle);
    this.#policy = init.policy;
    this.#life = init.registrationLifeMs ?? 30_000;
    this.#leaveFrom = allowList(init.leaveRequestsFrom ?? ['127.0.0.0/8', '::1/128']);
    this.#takeoverFrom = allowList(init.takeoverFrom ?? ['127.0.0.0/8', '::1/128'], 'takeoverFrom');
  }

  get registrar(): string | undefined {
    return this.#registered ? this.#registrar : undefined;
  }
  get registrarId(): number | undefined {
    return this.#registrarId;
  }
  get registered(): boolean {
    return this.#registered;
  }
  get policy(): MemberSelectionPolicy {
    return this.#policy;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'new') throw new StoppedError(`pool element is ${this.#state}`);
    this.#state = 'starting';
    const d = this.#init.discovery ?? ((this.#init.registrars ?? []).length === 0 ? {} : false);
    if (d !== false) {
      if (isAnnounceListener(d)) this.#discovery = d;
      else {
        this.#discovery = await listenAnnounces(d, { clock: this.#clock, logger: this.#logger });
        this.#ownDiscovery = true;
      }
    }
    if (this.#init.asapListen !== undefined) {
      try {
        await this.#listenAsap(this.#init.asapListen);
      } catch (err) {
        await this.#shutdown(false);
        throw err;
      }
    }
    const timeoutMs = this.#init.startTimeoutMs ?? 30_000;
    const deadline = new AbortController();
    const timer = this.#clock.setTimeout(() => deadline.abort(), timeoutMs);
    const signals = [this.#stop.signal, deadline.signal];
    if (opts.signal) signals.push(opts.signal);
    try {
      await this.#hunt(AbortSignal.any(signals), true);
      this.#state = 'running';
    } catch (err) {
      const e = deadline.signal.aborted ? new NoRegistrarError(`no registrar accepted the registration within ${timeoutMs} ms`, { cause: err }) : err;
      await this.#shutdown(false);
      throw e;
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  async updatePolicy(values: Partial<MemberSelectionPolicy>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#policy = { ...this.#policy, ...values, type: this.#policy.type } as MemberSelectionPolicy;
    const ch = this.#channel;
    // While hunting, the next registration carries the new values.
    if (ch?.open && this.#state === 'running') await this.#registerOn(ch, opts.signal);
  }

  async stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    const ch = this.#channel;
    let confirmed = false;
    if (ch?.open && this.#registered) {
      try {
        const r = await ch.request(
          { type: AsapMessageType.Deregistration, handle: this.handle, identifier: this.identifier },
          (m): m is AsapDeregistrationResponse =>
            m.type === AsapMessageType.DeregistrationResponse && m.identifier === this.identifier && sameBytes(m.handle, this.handle),
          { timeoutMs: this.#init.deregistrationTimeoutMs ?? 2_000, signal: opts.signal },
        );
        confirmed = !r.error || r.error.length === 0;
      } catch (err) {
        this.#logger.info({ err: (err as Error).message }, 'deregistration not confirmed');
      }
    }
    for (const c of this.#leaveAskers) this.#answerLeave(c);
    this.#leaveAskers.clear();
    await this.#shutdown(true, confirmed);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // --- internals -------------------------------------------------------------

  async #shutdown(emit: boolean, confirmed = false): Promise<void> {
    this.#state = 'stopping';
    this.#stop.abort();
    if (this.#reregTimer !== undefined) this.#clock.clearTimeout(this.#reregTimer);
    this.#reregTimer = undefined;
    const ch = this.#channel;
    this.#channel = undefined;
    this.#registered = false;
    if (ch) {
      ch.onClose = () => {};
      await ch.close();
    }
    await this.#hunting;
    await this.#asapListener?.close();
    this.#asapListener = undefined;
    for (const c of this.#inbound) {
      if (c === ch) continue;
      c.onClose = () => {};
      await c.close();
    }
    this.#inbound.clear();
    if (this.#ownDiscovery) await this.#discovery?.close();
    this.#state = 'stopped';
    if (emit) this.emit('deregistered', confirmed);
  }

  #element(): PoolElementParameter {
    return {
      identifier: this.identifier,
      homeRegistrarId: this.#registrarId ?? 0,
      registrationLife: this.#life,
      userTransport: this.#init.userTransport,
      policy: this.#policy,
      ...(this.#asapTransport ? { asapTransport: this.#asapTransport } : {}),
    };
  }

  /** Listens for a registrar that took us over (RFC 5352 3.7: its keep-alive with the H bit makes it our home). */
  async #listenAsap(url: string): Promise<void> {
    if (isIP(parseTransportUrl(url).host) === 0) {
      throw new InvalidOptionError(`asapListen ${url}: the host must be an IP address (registrars connect to it)`);
    }
    const l = await listenGuarded(this.#transports, url, {}, this.#init.asapListenLimits, { clock: this.#clock, logger: this.#logger });
    this.#asapListener = l;
    const a = l.address;
    const protocol = a.scheme === 'sctp' || a.scheme === 'sctp+udp' ? 'sctp' : 'tcp';
    this.#asapTransport = { protocol, port: a.port, addresses: [a.host], transportUse: TransportUse.DataPlusControl };
    l.on('connection', (conn) => {
      const ch = new AsapChannel(conn, `${a.scheme}://${conn.remote.host}:${conn.remote.port} (inbound)`, this.#clock, this.#logger);
      this.#inbound.add(ch);
      ch.onMessage = (m, c) => this.#onMessage(m, c);
      ch.onClose = (c) => this.#inbound.delete(c);
      this.#logger.debug({ from: `${conn.remote.host}:${conn.remote.port}` }, 'inbound ASAP connection');
    });
  }

  /**
   * Registrar URLs to try: the configured ones, then announced ones; the one just lost first if it
   * closed the connection itself (it dropped us after we were paused, or it restarted: it answers, or
   * refuses the connection at once), last if it went silent or refused us.
   */
  #candidates(): string[] {
    const configured = this.#init.registrars ?? [];
    const lost = this.#lastLost;
    const out = lost === undefined ? [...configured] : [...configured.filter((u) => u !== lost)];
    for (const a of this.#discovery?.registrars() ?? []) for (const u of a.urls) if (!out.includes(u) && u !== lost) out.push(u);
    if (lost !== undefined && !lost.endsWith('(inbound)')) {
      if (this.#lastLostAnswers) out.unshift(lost);
      else out.push(lost);
    }
    return out;
  }

  /** Tries every candidate, then pauses (exponential backoff with jitter) and tries again, until registered or aborted. */
  async #hunt(signal: AbortSignal, refusalIsFinal: boolean): Promise<void> {
    const initial = this.#init.huntBackoffMs?.initial ?? 250;
    const max = this.#init.huntBackoffMs?.max ?? 10_000;
    for (let attempt = 0; ; attempt++) {
      for (const url of this.#candidates()) {
        if (signal.aborted) throw new AbortedError('registrar hunt aborted', { cause: signal.reason });
        try {
          await this.#connectAndRegister(url, signal);
          return;
        } catch (err) {
          if (signal.aborted) throw new AbortedError('registrar hunt aborted', { cause: err });
          // An identifier still held by our previous life (its association not yet gone) frees up: keep trying.
          if (err instanceof RegistrationRefusedError && refusalIsFinal && err.errorCause !== ErrorCause.NonUniquePeIdentifier) throw err;
          this.#logger.info({ url, err: (err as Error).message }, 'registrar not usable');
          if (!refusalIsFinal) this.emit('error', err as Error);
        }
      }
      const pause = Math.min(initial * 2 ** Math.min(attempt, 20), max) * (0.5 + this.#random() / 2);
      await sleep(this.#clock, pause, signal);
    }
  }

  async #connectAndRegister(url: string, signal: AbortSignal): Promise<void> {
    const conn = await this.#transports.connect(url, { signal, timeoutMs: this.#init.connectTimeoutMs ?? 5_000 });
    const ch = new AsapChannel(conn, url, this.#clock, this.#logger);
    ch.onMessage = (m, c) => this.#onMessage(m, c);
    // A frozen registrar's kernel still takes TCP connections; it never answers. Over SCTP (a user-space
    // stack here) a frozen registrar takes none, and the connect timeout passes it over.
    const registrationTimeoutMs = this.#init.registrationTimeoutMs ?? 5_000;
    const kernelAccepts = conn.scheme !== 'sctp' && conn.scheme !== 'sctp+udp';
    const budget = Math.min(registrationTimeoutMs, this.#init.huntAttemptTimeoutMs ?? (kernelAccepts ? 1_000 : registrationTimeoutMs));
    try {
      await this.#registerOn(ch, signal, budget);
    } catch (err) {
      conn.abort();
      throw err;
    }
    this.#adopt(ch);
  }

  /** Makes `ch` the home connection (after a successful registration on it). */
  #adopt(ch: AsapChannel): void {
    const old = this.#channel;
    const previous = this.#registrar;
    this.#channel = ch;
    this.#registrar = ch.url;
    this.#lastLost = undefined;
    this.#inbound.delete(ch);
    ch.onClose = (c) => this.#lost(c);
    if (old && old !== ch) {
      old.onClose = () => {};
      void old.close();
    }
    if (previous !== undefined && previous !== ch.url) this.emit('registrar-changed', ch.url, previous);
  }

  async #registerOn(ch: AsapChannel, signal?: AbortSignal, timeoutMs = this.#init.registrationTimeoutMs ?? 5_000): Promise<void> {
    const res = await ch.request(
      { type: AsapMessageType.Registration, handle: this.handle, element: this.#element() },
      (m): m is AsapRegistrationResponse =>
        m.type === AsapMessageType.RegistrationResponse && m.identifier === this.identifier && sameBytes(m.handle, this.handle),
      { timeoutMs, signal },
    );
    const cause = res.error?.[0];
    if ((res.flags ?? 0) & AsapFlags.Reject || cause) {
      const code = cause?.code ?? 0;
      const why = cause ? new TextDecoder().decode(cause.info) : '';
      throw new RegistrationRefusedError(code, `registration refused by ${ch.url} (cause 0x${code.toString(16)}${why ? `: ${why}` : ''})`);
    }
    this.#registered = true;
    const first = !this.#everRegistered;
    this.#everRegistered = true;
    this.#scheduleReregistration();
    this.emit('registered', ch.url, first);
  }

  #scheduleReregistration(): void {
    if (this.#reregTimer !== undefined) this.#clock.clearTimeout(this.#reregTimer);
    const ms = Math.max(1, Math.floor(this.#life * (this.#init.reregisterFraction ?? 0.5)));
    this.#reregTimer = this.#clock.setTimeout(() => void this.#reregister(), ms);
  }

  async #reregister(): Promise<void> {
    this.#reregTimer = undefined;
    const ch = this.#channel;
    if (!ch || this.#state !== 'running') return;
    // A home that stopped answering (frozen, partitioned) must leave half of what is left of the
    // life for the hunt: waiting out the full registration timeout let the entry expire first.
    const left = this.#life - Math.floor(this.#life * (this.#init.reregisterFraction ?? 0.5));
    const timeoutMs = Math.max(1, Math.min(this.#init.registrationTimeoutMs ?? 5_000, Math.floor(left / 2)));
    try {
      await this.#registerOn(ch, this.#stop.signal, timeoutMs);
    } catch (err) {
      if (this.#stop.signal.aborted) return;
      this.emit('error', err as Error);
      // No answer or a refusal: this registrar is no use as home; find another.
      this.#logger.info({ url: ch.url, err: (err as Error).message }, 're-registration failed, hunting');
      if (err instanceof TimeoutError || err instanceof RegistrationRefusedError) this.#gaveUpOn = ch;
      ch.conn.abort();
    }
  }

  #lost(ch: AsapChannel): void {
    if (ch !== this.#channel || this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#channel = undefined;
    this.#registered = false;
    this.#lastLost = ch.url;
    this.#lastLostAnswers = this.#gaveUpOn !== ch;
    this.#gaveUpOn = undefined;
    if (this.#reregTimer !== undefined) this.#clock.clearTimeout(this.#reregTimer);
    this.#reregTimer = undefined;
    this.#startHunt();
  }

  #startHunt(): void {
    if (this.#hunting) return;
    const hunt = new AbortController();
    this.#huntAbort = hunt;
    this.#hunting = this.#hunt(AbortSignal.any([this.#stop.signal, hunt.signal]), false)
      .catch((err: unknown) => {
        if (!this.#stop.signal.aborted && !hunt.signal.aborted) this.emit('error', err as RSerPoolError);
      })
      .finally(() => {
        this.#hunting = undefined;
      });
  }

  /**
   * The registrar that took this PE over went away before the PE registered there (it timed the PE
   * out during a pause, or died): the cluster holds the old home for dead and the PE may be listed
   * nowhere. Hunt now, the old home last, rather than wait for the next re-registration there.
   */
  #takerGone(): void {
    if (this.#state !== 'running') return;
    const home = this.#channel;
    this.#logger.info({ home: home?.url }, 'the registrar that took this PE over is gone: hunting');
    if (home) {
      this.#gaveUpOn = home;
      // Its close hunts (#lost).
      home.conn.abort();
    } else this.#startHunt();
  }

  /** A peer on the ASAP listener asks this PE to leave (registrars never send a deregistration to a PE). */
  #leaveRequest(handle: Uint8Array, identifier: number, ch: AsapChannel): void {
    const from = `${ch.conn.remote.host}:${ch.conn.remote.port}`;
    const refuse = (code: number, why: string): void => {
      this.#logger.warn({ from, why }, 'leave request refused');
      try {
        ch.send({ type: AsapMessageType.DeregistrationResponse, handle, identifier, error: [{ code, info: new TextEncoder().encode(why) }] });
      } catch {
        // The asker is gone: nothing to tell.
      }
    };
    if (!this.#inbound.has(ch) && ch !== this.#channel) return;
    if (ch === this.#channel) return refuse(ErrorCause.UnrecognizedMessage, 'a registrar does not deregister its PEs this way');
    if (!this.#allowed(ch, this.#leaveFrom))
      return refuse(ErrorCause.RejectionDueToSecurityConsiderations, `${ch.conn.remote.host} may not ask this PE to leave`);
    if (identifier !== this.identifier || !sameBytes(handle, this.handle)) return refuse(ErrorCause.UnknownPoolHandle, 'no such PE here');
    this.#logger.info({ from }, 'asked to leave the pool');
    this.#leaveAskers.add(ch);
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    if (this.listenerCount('leave-requested') > 0) this.emit('leave-requested', from);
    else void this.stop();
  }

  /** Whether the asker on `ch` is in `from` (by proved identity, or by address). */
  #allowed(ch: AsapChannel, from: { addresses: BlockList; identities: ReadonlySet<string> }): boolean {
    const { addresses, identities } = from;
    const id = ch.conn.peerIdentity;
    if (id && identities.has(id.name)) return true;
    const host = ch.conn.remote.host.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    const family = isIP(host);
    return family !== 0 && addresses.check(host, family === 6 ? 'ipv6' : 'ipv4');
  }

  #answerLeave(ch: AsapChannel): void {
    try {
      ch.send({ type: AsapMessageType.DeregistrationResponse, handle: this.handle, identifier: this.identifier });
    } catch {
      // The asker is gone.
    }
  }

  #onMessage(m: AsapMessage, ch: AsapChannel): void {
    switch (m.type) {
      case AsapMessageType.EndpointKeepAlive: {
        try {
          ch.send({ type: AsapMessageType.EndpointKeepAliveAck, handle: this.handle, identifier: this.identifier });
        } catch (err) {
          this.#logger.info({ err: (err as Error).message }, 'keep-alive ack not sent');
          return;
        }
        const home = ((m.flags ?? 0) & AsapFlags.Home) !== 0;
        if (ch === this.#channel) {
          const before = this.#registrarId;
          this.#registrarId = m.serverId;
          if (home && before !== undefined && before !== m.serverId) this.emit('registrar-changed', ch.url, ch.url);
        } else if (home && this.#state === 'running' && !this.#allowed(ch, this.#takeoverFrom)) {
          // Anyone who reaches the listener could otherwise re-home this PE to itself.
          this.#logger.warn(
            { from: `${ch.conn.remote.host}:${ch.conn.remote.port}`, identity: ch.conn.peerIdentity?.name },
            'H-bit keep-alive from a stranger ignored',
          );
        } else if (home && this.#state === 'running') {
          // RFC 5352 3.7: the H bit makes the sender our home: register there. A hunt still under way
          // is stopped first and let finish: registering with two registrars at once leaves them racing
          // for the PE, and the one it then leaves times it out and deletes it everywhere.
          void (async () => {
            this.#huntAbort?.abort();
            await this.#hunting;
            if (this.#state !== 'running') return;
            if (!ch.open) return this.#takerGone();
            this.#registrarId = m.serverId;
            await this.#registerOn(ch, this.#stop.signal);
            this.#adopt(ch);
          })().catch((err: unknown) => {
            this.emit('error', err as Error);
            this.#takerGone();
          });
        }
        return;
      }
      case AsapMessageType.Error:
        this.#logger.warn({ url: ch.url, causes: m.error.map((c) => c.code) }, 'ASAP_ERROR from registrar');
        return;
      case AsapMessageType.Deregistration:
        this.#leaveRequest(m.handle, m.identifier, ch);
        return;
      default:
        this.#logger.debug({ url: ch.url, type: m.type }, 'unexpected ASAP message ignored');
    }
  }
}

/** Who may ask something of this PE on its ASAP listener (leave, or take it over): addresses, CIDR blocks, id:NAME. */
function allowList(entries: string[], option = 'leaveRequestsFrom'): { addresses: BlockList; identities: ReadonlySet<string> } {
  const addresses = new BlockList();
  const identities = new Set<string>();
  for (const e of entries) {
    if (e.startsWith('id:')) {
      identities.add(e.slice(3));
      continue;
    }
    const [addr, bits] = e.split('/');
    const family = isIP(addr ?? '');
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new InvalidOptionError(`${option}: '${e}' is neither an address, a CIDR block nor id:NAME`);
    }
    addresses.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { addresses, identities };
}

export function createPoolElement(init: PoolElementInit, components: PoolElementComponents = {}): PoolElement {
  return new PoolElementImpl(init, components);
}
