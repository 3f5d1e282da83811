/**
 * The registrar: a handlespace served over ASAP. Composes the ASAP server
 * (connections), registration checks, keep-alive supervision, unreachable
 * report counting and server announce; keeps which connection registered
 * which PE. Everything ENRP needs is an event or a method (see Registrar).
 */
import { isIP } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { systemClock, type Clock } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import { createHandlespace, poolHandleKey, toParameter, type Handlespace, type PoolElementEntry, type PoolHandleLike } from '../handlespace/index.js';
import { createTransports, makeTransportUrl, ownerIdentityOf, peerLabel, type PeerIdentity, type TransportSet, type TransportUrl } from '../transport/index.js';
import {
  AsapFlags,
  AsapMessageType,
  type AsapDeregistration,
  type AsapEndpointKeepAliveAck,
  type AsapEndpointUnreachable,
  type AsapHandleResolution,
  type AsapRegistration,
} from '../../protocols/asap/types.js';
import { ErrorCause, ParameterType, TransportUse, type PoolElementParameter, type TransportAddress } from '../../protocols/parameters/types.js';
import { AsapServer, type AsapHandlers, type AsapSession } from './asap-server.js';
import { createAnnouncer, DEFAULT_ANNOUNCE_GROUP, DEFAULT_ANNOUNCE_INTERFACE, DEFAULT_ANNOUNCE_PORT, type Announcer } from '../announce/announce.js';
import { RegistrarStateError } from './errors.js';
import { KeepAliveSupervisor } from './keepalive.js';
import { checkRegistration, handlespaceCaps, registrarLimits, type RegistrationRules } from './registration.js';
import { checkPoolElementLimits, fitPoolElements } from '../handlespace/limits.js';
import { bytesParameterSize } from '../../protocols/parameters/codec.js';
import { UnreachableReports } from './unreachable.js';
import type { PoolStatus, Registrar, RegistrarComponents, RegistrarEvents, RegistrarInit, RegistrarCounters, RegistrarStatus, RemovalReason } from './types.js';

/** A PE we are home for, and the ASAP connection it registered through. */
interface Binding {
  handle: Uint8Array;
  identifier: number;
  session: AsapSession | undefined;
}

const MAX_FORWARDED = 16_384;

const peKey = (poolKey: string, identifier: number): string => `${identifier >>> 0}/${poolKey}`;

/** The pool handle as a Pool Handle parameter TLV: the info of an Unknown Pool Handle cause. */
function handleParameter(handle: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + handle.length);
  out[0] = ParameterType.PoolHandle >> 8;
  out[1] = ParameterType.PoolHandle & 0xff;
  out[2] = (out.length >> 8) & 0xff;
  out[3] = out.length & 0xff;
  out.set(handle, 4);
  return out;
}

function sameTransport(a: TransportAddress, b: TransportAddress): boolean {
  if (a.protocol !== b.protocol || a.port !== b.port || a.addresses.length !== b.addresses.length) return false;
  const set = new Set(a.addresses);
  return b.addresses.every((x) => set.has(x));
}

/** Both unauthenticated, or both proved the same identity. */
function sameIdentity(a: PeerIdentity | undefined, b: PeerIdentity | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind !== b.kind || a.name !== b.name) return false;
  return a.kind !== 'certificate' || (b.kind === 'certificate' && a.fingerprint256 === b.fingerprint256);
}

function printable(handle: Uint8Array): string {
  for (const b of handle) if (b < 0x20 || b > 0x7e) return Buffer.from(handle).toString('hex');
  return Buffer.from(handle).toString('latin1');
}

function randomId(random: () => number): number {
  for (;;) {
    const id = Math.floor(random() * 0x1_0000_0000) >>> 0;
    if (id !== 0) return id;
  }
}

class RegistrarImpl extends EventEmitter<RegistrarEvents> implements Registrar {
  readonly id: number;
  readonly counters: RegistrarCounters = {
    resolutions: 0,
    resolutionsUnknown: 0,
    unreachableReports: 0,
    unreachableReportsIgnored: 0,
    unreachableProbes: 0,
    refusedByAcl: 0,
  };
  readonly handlespace: Handlespace;
  readonly #init: RegistrarInit;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #transports: TransportSet;
  readonly #ownsHandlespace: boolean;
  readonly #server: AsapServer;
  readonly #keepAlive: KeepAliveSupervisor;
  readonly #reports: UnreachableReports;
  readonly #rules: RegistrationRules;
  readonly #bindings = new Map<string, Binding>();
  /** PEs sent a keep-alive because PUs reported them: a timeout then removes them as unreachable. */
  readonly #probing = new Set<string>();
  /** PEs homed elsewhere whose reports went to their home, and when (one forward per PE per keep-alive cycle). */
  readonly #forwarded = new Map<string, number>();
  #announcer: Announcer | undefined;
  #synchronised: boolean;
  #isolated: () => boolean = () => false;
  #startedAt = 0;
  #state: 'new' | 'running' | 'stopped' = 'new';
  readonly #onRemoved = (entry: PoolElementEntry, reason: 'deregistered' | 'expired'): void => this.#removedFromHandlespace(entry, reason);

  constructor(init: RegistrarInit, components: RegistrarComponents) {
    super();
    this.#init = init;
    this.#clock = components.clock ?? systemClock;
    const random = components.random ?? Math.random;
    this.id = init.id !== undefined && init.id !== 0 ? init.id >>> 0 : randomId(random);
    this.#logger = (components.logger ?? silentLogger).child({ component: 'registrar', registrar: this.id.toString(16) });
    this.#transports = components.transports ?? createTransports({}, { clock: this.#clock, logger: components.logger ?? silentLogger });
    this.#ownsHandlespace = components.handlespace === undefined;
    this.handlespace = components.handlespace ?? createHandlespace({ clock: this.#clock, random, ...handlespaceCaps(init) });
    this.#synchronised = init.synchronised ?? true;
    this.#rules = { registrarId: this.id, limits: registrarLimits(init) };
    this.#reports = new UnreachableReports({
      windowMs: init.unreachableWindowMs ?? 60_000,
      burst: init.unreachableBurst ?? 20,
      perSecond: init.unreachableReportsPerSecond ?? 2,
      maxReporters: 16_384,
    });
    this.#keepAlive = new KeepAliveSupervisor({
      intervalMs: init.keepAliveIntervalMs ?? 5_000,
      timeoutMs: init.keepAliveTimeoutMs ?? 5_000,
      clock: this.#clock,
      send: (key) => this.#sendKeepAlive(key, 0),
      timedOut: (key) => this.#keepAliveTimedOut(key),
    });
    this.#server = new AsapServer(this.#transports, this.#handlers(), this.#logger, { clock: this.#clock, limits: init.connectionLimits });
  }

  get addresses(): readonly TransportUrl[] {
    return this.#server.addresses;
  }

  get synchronised(): boolean {
    return this.#synchronised;
  }

  get connectionCount(): number {
    return this.#server.connections;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'new') throw new RegistrarStateError(`registrar is ${this.#state}`);
    this.#state = 'running';
    this.#startedAt = this.#clock.now();
    this.handlespace.events.on('removed', this.#onRemoved);
    try {
      await this.#server.listen(this.#init.asap, opts.signal);
      if (this.#init.announce !== false) {
        const a = this.#init.announce ?? {};
        this.#announcer = createAnnouncer(
          {
            group: a.group ?? DEFAULT_ANNOUNCE_GROUP,
            port: a.port ?? DEFAULT_ANNOUNCE_PORT,
            interface: a.interface ?? DEFAULT_ANNOUNCE_INTERFACE,
            ttl: a.ttl ?? 1,
            intervalMs: a.intervalMs ?? 1_000,
            serverId: this.id,
            transports: () => this.#announcedTransports(),
          },
          { clock: this.#clock, logger: this.#logger },
        );
        await this.#announcer.start();
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.#logger.info({ asap: this.addresses.map((u) => u.href) }, 'registrar started');
  }

  async stop(_opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#keepAlive.stop();
    await this.#announcer?.stop();
    await this.#server.close();
    this.handlespace.events.off('removed', this.#onRemoved);
    this.#bindings.clear();
    this.#reports.clear();
    this.#probing.clear();
    this.#forwarded.clear();
    if (this.#ownsHandlespace) this.handlespace.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  setSynchronised(value: boolean): void {
    this.#synchronised = value;
  }

  setIsolationCheck(isolated: () => boolean): void {
    this.#isolated = isolated;
  }

  connectionOf(handle: PoolHandleLike, identifier: number): string | null {
    const b = this.#bindings.get(peKey(poolHandleKey(handle), identifier));
    return b?.session?.open ? b.session.id : null;
  }

  status(): RegistrarStatus {
    const now = this.#clock.now();
    const pools: PoolStatus[] = [];
    for (const info of this.handlespace.pools()) {
      pools.push({
        handle: printable(info.handle),
        policyType: info.policyType,
        elements: this.handlespace.poolElements(info.handle).map((e) => ({
          identifier: e.identifier >>> 0,
          homeRegistrarId: e.homeRegistrarId,
          registrationLife: e.registrationLife,
          expiresInMs: e.expiresAt === Infinity ? null : Math.max(0, e.expiresAt - now),
          userTransport: e.userTransport,
          policy: e.policy,
          connection: this.connectionOf(e.handle, e.identifier),
        })),
      });
    }
    return {
      id: this.id,
      synchronised: this.#synchronised,
      asap: this.addresses.map((u) => u.href),
      connections: this.#server.connections,
      poolElements: this.handlespace.size,
      owned: this.handlespace.ownedCount(this.id),
      pools,
    };
  }

  // --- ENRP hooks ----------------------------------------------------------

  applyForeign(handle: PoolHandleLike, pe: PoolElementParameter, ownerId: number): boolean {
    const key = peKey(poolHandleKey(handle), pe.identifier);
    const checked = checkPoolElementLimits(typeof handle === 'string' ? Buffer.from(handle, 'latin1') : handle, pe, this.#rules.limits);
    const r = checked.ok ? this.handlespace.register(handle, checked.pe, { ownerId }) : checked;
    if (!r.ok) {
      this.#logger.warn({ reason: r.reason }, 'foreign PE not applied');
      return false;
    }
    // It has another home now: no more supervision from here.
    if (ownerId !== this.id) this.#unbind(key);
    return true;
  }

  removeForeign(handle: PoolHandleLike, identifier: number): boolean {
    return this.handlespace.deregister(handle, identifier) !== undefined;
  }

  async takeover(fromOwnerId: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    const moved = this.handlespace.owned(fromOwnerId);
    const n = this.handlespace.takeover(fromOwnerId, this.id);
    await this.adopt(moved, opts);
    return n;
  }

  async adopt(entries: readonly PoolElementEntry[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'running') return;
    await Promise.all(
      entries.map(async (e) => {
        const key = peKey(e.poolKey, e.identifier);
        const b = this.#bindings.get(key);
        // Neither reachable nor connected here: nothing to supervise it with; its life bounds it.
        if (!b?.session?.open && this.#asapUrlOf(e.asapTransport) === undefined) return;
        const entry = this.handlespace.get(e.handle, e.identifier);
        if (entry?.homeRegistrarId !== this.id) return;
        if (!b) this.#bindings.set(key, { handle: e.handle, identifier: e.identifier >>> 0, session: undefined });
        // Supervised from now on: a PE that neither answers nor re-registers goes.
        this.#keepAlive.alive(key);
        // Our copy's life runs from the last update that reached us, maybe long ago (cut off from its old
        // home): the keep-alive decides now. Expiring meanwhile would delete a live PE cluster-wide.
        this.handlespace.register(entry.handle, toParameter(entry), {
          ownerId: this.id,
          ...(entry.ownerIdentity !== undefined ? { ownerIdentity: entry.ownerIdentity } : {}),
        });
        await this.sendHomeKeepAlive(e.handle, e.identifier, opts);
      }),
    );
  }

  async sendHomeKeepAlive(handle: PoolHandleLike, identifier: number, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const key = peKey(poolHandleKey(handle), identifier);
    const entry = this.handlespace.get(handle, identifier);
    if (!entry) return false;
    let b = this.#bindings.get(key);
    if (!b) {
      b = { handle: entry.handle, identifier: identifier >>> 0, session: undefined };
      this.#bindings.set(key, b);
    }
    if (!b.session?.open) {
      const url = this.#asapUrlOf(entry.asapTransport);
      if (url === undefined) return false;
      try {
        const conn = await this.#transports.connect(url, { signal: opts.signal });
        if (this.#bindings.get(key) !== b || this.#state !== 'running') {
          // Removed while we connected: nothing to supervise.
          conn.abort();
          return false;
        }
        const s = this.#server.attach(conn);
        b.session?.owned.delete(key);
        b.session = s;
        s.owned.add(key);
      } catch (err) {
        this.#logger.info({ url, err: (err as Error).message }, 'cannot reach PE for takeover');
        return false;
      }
    }
    return this.#sendKeepAlive(key, AsapFlags.Home);
  }

  // --- ASAP handlers ---------------------------------------------------------

  #handlers(): AsapHandlers {
    return {
      registration: (s, m) => this.#register(s, m),
      deregistration: (s, m) => this.#deregister(s, m),
      handleResolution: (s, m) => this.#resolve(s, m),
      keepAliveAck: (s, m) => this.#keepAliveAck(s, m),
      unreachable: (s, m) => this.#unreachable(s, m),
      opened: (s) => this.emit('connection', s.id, `${s.conn.remote.host}:${s.conn.remote.port}`),
      closed: (s) => this.#closed(s),
      badMessage: (s, err) => this.emit('bad-message', s.id, err),
    };
  }

  #refuse(s: AsapSession, m: AsapRegistration, cause: ErrorCause, reason: string): void {
    const identity = s.conn.peerIdentity?.name;
    this.#logger.info({ conn: s.id, identity, identifier: m.element.identifier, cause, reason }, 'registration refused');
    s.send({
      type: AsapMessageType.RegistrationResponse,
      flags: AsapFlags.Reject,
      handle: m.handle,
      identifier: m.element.identifier,
      // Echoing a handle past the limit leaves no room for the reason: the cause alone then.
      error: [{ code: cause, info: new TextEncoder().encode(reason).slice(0, m.handle.length > this.#rules.limits.maxHandleLength ? 0 : 256) }],
    });
    this.emit('refused', m.handle, m.element.identifier, cause, reason, peerLabel(s.conn));
  }

  /** RFC 5355: an ACL refusal, logged with who asked and counted. */
  #aclRefuses(s: AsapSession, role: 'pe' | 'pu', handle: Uint8Array): boolean {
    const acl = this.#init.acl;
    if (!acl || acl.allows(s.conn.peerIdentity, role, handle)) return false;
    this.#securityRefusal(s, role, handle, 'refused by the ACL');
    return true;
  }

  #securityRefusal(s: AsapSession, role: 'pe' | 'pu', handle: Uint8Array, why: string): void {
    this.counters.refusedByAcl++;
    const who = peerLabel(s.conn);
    this.#logger.warn({ conn: s.id, identity: who, role, handle: JSON.stringify(printable(handle.subarray(0, 64))) }, why);
    this.emit('acl-refused', who, role, handle);
  }

  #register(s: AsapSession, m: AsapRegistration): void {
    if (this.#aclRefuses(s, 'pe', m.handle)) {
      return this.#refuse(s, m, ErrorCause.RejectionDueToSecurityConsiderations, 'not authorized to register under this pool handle');
    }
    const checked = checkRegistration(m.handle, m.element, s.conn.remote, this.#rules);
    if (!checked.ok) return this.#refuse(s, m, checked.cause, checked.reason);
    const pe = checked.pe;
    // RFC 5355: a listed PE's identifier is its owner's, whichever registrar is its home (ENRP carries
    // the owner identity). A PE that knew none (registered anonymously, or at an RFC peer) binds nothing.
    const owner = ownerIdentityOf(s.conn.peerIdentity);
    const listed = this.handlespace.get(m.handle, pe.identifier);
    if (listed?.ownerIdentity !== undefined && listed.ownerIdentity !== owner) {
      this.#securityRefusal(s, 'pe', m.handle, 'PE identifier owned by another identity: registration refused');
      return this.#refuse(s, m, ErrorCause.RejectionDueToSecurityConsiderations, 'PE identifier registered by another identity');
    }
    const key = peKey(poolHandleKey(m.handle), pe.identifier);
    const bound = this.#bindings.get(key);
    const stale = bound?.session && bound.session !== s && bound.session.open ? bound.session : undefined;
    if (stale) {
      // A PE restarted with the same identifier, transport and identity is the same PE: its old
      // association is what is stale (its host may not have reset it yet).
      const entry = this.handlespace.get(m.handle, pe.identifier);
      if (!entry || !sameTransport(entry.userTransport, pe.userTransport) || !sameIdentity(stale.conn.peerIdentity, s.conn.peerIdentity)) {
        // RFC 5354 3.5: the identifier is in use by another PE (another live association).
        return this.#refuse(s, m, ErrorCause.NonUniquePeIdentifier, 'PE identifier registered through another ASAP connection');
      }
      this.#logger.info(
        { conn: s.id, old: stale.id, identifier: pe.identifier },
        'PE registered again from a new connection with the same transport: the old one is stale',
      );
    }
    if (!s.owned.has(key)) {
      const perConn = this.#init.maxPoolElementsPerConnection ?? 1024;
      if (s.owned.size >= perConn) return this.#refuse(s, m, ErrorCause.LackOfResources, `at most ${perConn} PEs per connection`);
      const max = this.#init.maxPoolElements ?? 1_000_000;
      if (!bound && this.#bindings.size >= max) return this.#refuse(s, m, ErrorCause.LackOfResources, `at most ${max} PEs`);
    }
    const r = this.handlespace.register(m.handle, pe, { ownerId: this.id, ...(owner !== undefined ? { ownerIdentity: owner } : {}) });
    if (!r.ok) return this.#refuse(s, m, r.cause, r.reason);
    if (bound) bound.session?.owned.delete(key);
    if (stale && stale.owned.size === 0) stale.conn.abort();
    this.#bindings.set(key, { handle: r.entry.handle, identifier: pe.identifier, session: s });
    s.owned.add(key);
    this.#keepAlive.alive(key);
    this.#reports.reset(key);
    s.send({ type: AsapMessageType.RegistrationResponse, handle: m.handle, identifier: pe.identifier });
    this.emit('registered', r.entry, r.created);
  }

  #deregister(s: AsapSession, m: AsapDeregistration): void {
    const key = peKey(poolHandleKey(m.handle), m.identifier);
    const entry = this.handlespace.get(m.handle, m.identifier);
    const reply = (error?: { code: number; info: Uint8Array }): void => {
      s.send({ type: AsapMessageType.DeregistrationResponse, handle: m.handle, identifier: m.identifier, ...(error ? { error: [error] } : {}) });
    };
    // Deregistering a PE that is not there already holds: answered as success (idempotent).
    if (!entry) return reply();
    if (this.#bindings.get(key)?.session !== s) {
      this.#logger.info({ conn: s.id, identifier: m.identifier }, 'deregistration of a PE registered elsewhere refused');
      return reply({ code: ErrorCause.RejectionDueToSecurityConsiderations, info: new Uint8Array(0) });
    }
    this.#unbind(key);
    this.handlespace.deregister(m.handle, m.identifier);
    reply();
    this.emit('deregistered', entry);
  }

  #resolve(s: AsapSession, m: AsapHandleResolution): void {
    if (this.#aclRefuses(s, 'pu', m.handle)) {
      s.send({
        type: AsapMessageType.HandleResolutionResponse,
        handle: m.handle,
        elements: [],
        error: [{ code: ErrorCause.RejectionDueToSecurityConsiderations, info: new Uint8Array(0) }],
      });
      return;
    }
    if (!this.#synchronised) {
      s.send({
        type: AsapMessageType.HandleResolutionResponse,
        handle: m.handle,
        elements: [],
        error: [{ code: ErrorCause.LackOfResources, info: new Uint8Array(0) }],
      });
      return;
    }
    const max = this.#init.maxResolveItems ?? 128;
    const items = Math.max(1, Math.min(m.items ?? this.#init.defaultResolveItems ?? 3, max));
    const found = this.handlespace.resolve(m.handle, { items });
    this.counters.resolutions++;
    if (found.length === 0 && (this.#clock.now() - this.#startedAt < (this.#init.startupGraceMs ?? 0) || this.#isolated())) {
      // Just (re)started: its PEs may not have registered again yet; or our copy may be incomplete (cut
      // off from the peers, lately back, auditing one): they may be there. Not final, unlike Unknown Pool Handle.
      s.send({
        type: AsapMessageType.HandleResolutionResponse,
        handle: m.handle,
        elements: [],
        error: [{ code: ErrorCause.LackOfResources, info: new Uint8Array(0) }],
      });
      return;
    }
    if (found.length === 0) {
      this.counters.resolutionsUnknown++;
      s.send({
        type: AsapMessageType.HandleResolutionResponse,
        handle: m.handle,
        elements: [],
        // A handle past the limit cannot be registered; echoing it twice would not fit the answer.
        error: [
          { code: ErrorCause.UnknownPoolHandle, info: m.handle.length <= this.#rules.limits.maxHandleLength ? handleParameter(m.handle) : new Uint8Array(0) },
        ],
      });
      return;
    }
    // Each PE fits a message, not necessarily `items` of them: fewer rather than none.
    const elements = found.map(toParameter);
    elements.length = fitPoolElements(4 + bytesParameterSize(m.handle), elements);
    s.send({ type: AsapMessageType.HandleResolutionResponse, handle: m.handle, elements });
  }

  #keepAliveAck(s: AsapSession, m: AsapEndpointKeepAliveAck): void {
    const key = peKey(poolHandleKey(m.handle), m.identifier);
    const b = this.#bindings.get(key);
    // Only the PE's own connection speaks for it: an ack from anywhere else could keep a dead PE listed.
    if (!b || b.session !== s) {
      if (b) this.#logger.info({ conn: s.id, identifier: m.identifier }, 'keep-alive ack from another connection ignored');
      return;
    }
    if (this.#keepAlive.ack(key)) this.#probing.delete(key);
  }

  #unreachable(s: AsapSession, m: AsapEndpointUnreachable): void {
    this.counters.unreachableReports++;
    const now = this.#clock.now();
    const reporter = peerLabel(s.conn);
    if (!this.#reports.allow(reporter, now)) {
      this.counters.unreachableReportsIgnored++;
      return;
    }
    const entry = this.handlespace.get(m.handle, m.identifier);
    if (!entry) {
      this.counters.unreachableReportsIgnored++;
      return;
    }
    const key = peKey(entry.poolKey, m.identifier);
    const count = this.#reports.report(key, reporter, now);
    const threshold = this.#init.unreachableThreshold ?? 3;
    this.#logger.debug({ identifier: m.identifier, count, threshold }, 'endpoint unreachable report');
    if (count < threshold) return;
    this.#reports.reset(key);
    if (entry.homeRegistrarId !== this.id) return this.#forwardToHome(key, entry, now);
    this.#probe(key, entry);
  }

  reportedUnreachableByPeer(handle: Uint8Array, identifier: number, peerId: number): void {
    if (this.#state !== 'running') return;
    const entry = handle.length <= this.#rules.limits.maxHandleLength ? this.handlespace.get(handle, identifier) : undefined;
    if (!this.#reports.allow(`registrar:${peerId >>> 0}`, this.#clock.now()) || entry === undefined || entry.homeRegistrarId !== this.id) {
      this.counters.unreachableReportsIgnored++;
      return;
    }
    this.#logger.debug({ identifier, peerId }, 'unreachable reports forwarded by a peer');
    this.#probe(peKey(entry.poolKey, entry.identifier), entry);
  }

  /** Reports are evidence, not proof: the PE goes only if it does not answer a keep-alive now. */
  #probe(key: string, entry: PoolElementEntry): void {
    if (this.#probing.has(key)) return;
    if (!this.#keepAlive.probe(key)) return this.#removeOwned(key, entry, 'unreachable');
    this.counters.unreachableProbes++;
    this.#probing.add(key);
  }

  /** Only the home can probe: reports about a PE homed elsewhere go there, bounded per PE and per home. */
  #forwardToHome(key: string, entry: PoolElementEntry, now: number): void {
    const last = this.#forwarded.get(key);
    const quietMs = (this.#init.keepAliveIntervalMs ?? 5_000) + (this.#init.keepAliveTimeoutMs ?? 5_000);
    if (last !== undefined && now - last < quietMs) return;
    if (!this.#reports.allow(`home:${entry.homeRegistrarId >>> 0}`, now)) return;
    this.#forwarded.delete(key);
    this.#forwarded.set(key, now);
    if (this.#forwarded.size > MAX_FORWARDED) this.#forwarded.delete(this.#forwarded.keys().next().value!);
    this.emit('foreign-unreachable', entry);
  }

  #closed(s: AsapSession): void {
    // PEs stay until their next keep-alive fails or they re-register on a new connection (as RSPLIB).
    this.emit('disconnect', s.id);
  }

  // --- internals ---------------------------------------------------------------

  #sendKeepAlive(key: string, flags: number): boolean {
    const b = this.#bindings.get(key);
    if (!b?.session) return false;
    return b.session.send({ type: AsapMessageType.EndpointKeepAlive, flags, serverId: this.id, handle: b.handle, identifier: b.identifier });
  }

  #keepAliveTimedOut(key: string): void {
    const b = this.#bindings.get(key);
    if (!b) return;
    const entry = this.handlespace.get(b.handle, b.identifier);
    if (!entry || entry.homeRegistrarId !== this.id) return this.#unbind(key);
    this.#logger.info({ identifier: b.identifier }, 'PE did not answer its keep-alive');
    const session = b.session;
    this.#removeOwned(key, entry, this.#probing.has(key) ? 'unreachable' : 'keep-alive-timeout');
    // A PE that was only paused learns of its removal when it resumes (its channel closes) and
    // registers again at once, instead of waiting for its next scheduled re-registration.
    if (session && session.owned.size === 0) session.conn.abort();
  }

  #removeOwned(key: string, entry: PoolElementEntry, reason: RemovalReason): void {
    this.#unbind(key);
    this.handlespace.deregister(entry.handle, entry.identifier);
    this.emit('removed', entry, reason);
  }

  #unbind(key: string): void {
    const b = this.#bindings.get(key);
    if (b) {
      b.session?.owned.delete(key);
      this.#bindings.delete(key);
    }
    this.#keepAlive.unwatch(key);
    this.#reports.reset(key);
    this.#probing.delete(key);
  }

  #removedFromHandlespace(entry: PoolElementEntry, reason: 'deregistered' | 'expired'): void {
    const key = peKey(entry.poolKey, entry.identifier);
    if (!this.#bindings.has(key)) return;
    this.#unbind(key);
    if (reason === 'expired' && entry.homeRegistrarId === this.id) this.emit('removed', entry, 'expired');
  }

  #asapUrlOf(t: TransportAddress | undefined): string | undefined {
    if (!t || (t.protocol !== 'tcp' && t.protocol !== 'sctp')) return undefined;
    const a = t.addresses[0];
    if (a === undefined) return undefined;
    if (t.protocol === 'tcp') return makeTransportUrl('tcp', a, t.port).href;
    // RFC 5354 has no way to say "SCTP over UDP": use it when this registrar speaks it
    const schemes = this.#transports.schemes;
    const scheme = schemes.includes('sctp+udp') ? 'sctp+udp' : schemes.includes('sctp') ? 'sctp' : undefined;
    return scheme === undefined ? undefined : makeTransportUrl(scheme, a, t.port).href;
  }

  #announcedTransports(): TransportAddress[] {
    const out: TransportAddress[] = [];
    for (const u of this.addresses) {
      if ((u.scheme !== 'tcp' && u.scheme !== 'tls') || isIP(u.host) === 0) continue;
      out.push({ protocol: 'tcp', port: u.port, addresses: [u.host], transportUse: TransportUse.DataPlusControl });
    }
    return out;
  }
}

export function createRegistrar(init: RegistrarInit, components: RegistrarComponents = {}): Registrar {
  return new RegistrarImpl(init, components);
}
