/**
 * The ENRP server: composes the peer table, connections, presence, sync,
 * update fan-out, audit and takeover around one handlespace, and dispatches
 * what peers send to the piece that handles it.
 */
import { EventEmitter } from 'eventemitter3';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import type { RSerPoolError } from '../errors.js';
import type { Handlespace } from '../handlespace/index.js';
import { checkPoolElementLimits, poolElementLimits, type PoolElementCheck, type PoolElementLimits } from '../handlespace/limits.js';
import { createTransports, parseTransportUrl, PPID, type TransportScheme } from '../transport/index.js';
import { DecodeError, DecodeErrorCode } from '../../protocols/errors.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpFlags, EnrpMessageType, type EnrpError, type EnrpListResponse, type EnrpMessage, type EnrpPresence } from '../../protocols/enrp/types.js';
import { ErrorCause, type PoolElementParameter, type ServerInformation } from '../../protocols/parameters/types.js';
import { Auditor } from './audit.js';
import type { EnrpContext } from './context.js';
import { EnrpMalformedError, EnrpMisaddressedError, EnrpPeerError, EnrpStateError, EnrpUnknownSenderError } from './errors.js';
import { LinkManager } from './links.js';
import { Mentor } from './mentor.js';
import { MulticastChannel } from './multicast.js';
import { KnownUrls, LEARNED_EXPIRY_CYCLES, MAX_LEARNED_PEERS, Peer, PeerTable, type Link } from './peer-table.js';
import { serverInformation, urlOf } from './pe.js';
import { HandleTableClient, HandleTableServer } from './sync.js';
import { Takeover } from './takeover.js';
import type { EnrpCounters, EnrpServer, EnrpServerComponents, EnrpServerEvents, EnrpServerInit, EnrpStatus, EnrpTimers, PeerInfo } from './types.js';
import { UpdateFanout } from './updates.js';

export const DEFAULT_ENRP_TIMERS: Readonly<Omit<EnrpTimers, 'connectTimeoutMs'>> = {
  peerHeartbeatCycleMs: 2_444,
  maxTimeLastHeardMs: 5_000,
  maxTimeNoResponseMs: 5_000,
  takeoverExpiryMs: 5_000,
  mentorDiscoveryMs: 5_000,
};
/** Below the 16-bit length field's 65,535, with room for padding. */
export const DEFAULT_MAX_ENRP_MESSAGE_BYTES = 65_000;
export const DEFAULT_MAX_PEER_POOL_ELEMENTS = 1_000_000;
const MAX_ERROR_INFO_BYTES = 1_024;
const MAX_DROPPED_REMEMBERED = 1_024;

const hex = (n: number): string => `$${n.toString(16)}`;

class EnrpNode implements EnrpContext {
  readonly id: number;
  readonly hs: Handlespace;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timers: EnrpTimers;
  readonly peers = new PeerTable();
  readonly emitter = new EventEmitter<EnrpServerEvents>();
  readonly maxMessageBytes: number;
  readonly maxPageElements: number;
  readonly counters: EnrpCounters = {
    messagesSent: 0,
    sentByType: {},
    receivedByType: {},
    bytesSent: 0,
    messagesReceived: 0,
    bytesReceived: 0,
    updatesSent: 0,
    updateBytesSent: 0,
    refused: 0,
    audits: 0,
    takeovers: 0,
    unreachableForwarded: 0,
    unreachableReceived: 0,
  };
  readonly #init: EnrpServerInit;
  readonly #limits: PoolElementLimits;
  readonly #maxPeerPes: number;
  readonly #random: () => number;
  readonly #links: LinkManager;
  readonly #multicast: MulticastChannel | undefined;
  readonly #fanout: UpdateFanout;
  readonly #tableServer: HandleTableServer;
  readonly #client: HandleTableClient;
  readonly #auditor: Auditor;
  readonly #mentor: Mentor;
  readonly #takeover: Takeover;
  /** Peer URLs we dial when not connected: static ones and those peers announced. */
  readonly #knownUrls = new KnownUrls();
  #scheme: TransportScheme;
  #listenUrls: string[] = [];
  #server: ServerInformation | undefined;
  #heartbeat: TimerHandle | undefined;
  #running = false;
  /** Peers we dropped (taken over, silent): audited when they are back. */
  readonly #dropped = new Set<number>();
  /** When we last heard a peer after hearing none (see #heard). */
  #rejoinedAt = -Infinity;

  constructor(init: EnrpServerInit, components: EnrpServerComponents) {
    if (!Number.isInteger(init.id) || init.id <= 0 || init.id > 0xffffffff)
      throw new EnrpStateError(`registrar id ${init.id} is not a non-zero 32-bit integer`);
    if (init.listen.length === 0) throw new EnrpStateError('an ENRP server needs at least one listen URL');
    this.id = init.id;
    this.#init = init;
    this.hs = init.handlespace;
    this.clock = components.clock ?? systemClock;
    this.log = (components.logger ?? silentLogger).child({ component: 'enrp', registrarId: hex(init.id) });
    this.#random = components.random ?? Math.random;
    const t = { ...DEFAULT_ENRP_TIMERS, ...init.timers };
    this.timers = { ...t, connectTimeoutMs: init.timers?.connectTimeoutMs ?? t.maxTimeNoResponseMs };
    this.maxMessageBytes = Math.min(init.maxMessageBytes ?? DEFAULT_MAX_ENRP_MESSAGE_BYTES, DEFAULT_MAX_ENRP_MESSAGE_BYTES);
    this.maxPageElements = init.maxPageElements ?? Infinity;
    this.#limits = poolElementLimits(init.limits);
    this.#maxPeerPes = init.maxPeerPoolElements ?? DEFAULT_MAX_PEER_POOL_ELEMENTS;
    this.#scheme = parseTransportUrl(init.listen[0]!).scheme;
    const transportFor = components.transportFor ?? createTransports({}, { clock: this.clock, logger: this.log }).transportFor;
    this.#links = new LinkManager(
      {
        id: this.id,
        clock: this.clock,
        log: this.log,
        transportFor,
        connectTimeoutMs: this.timers.connectTimeoutMs,
        staleMs: this.timers.peerHeartbeatCycleMs * 1.5,
        connectionLimits: init.connectionLimits,
        authorizePeer: init.authorizePeer,
      },
      {
        message: (link, bytes) => this.#onMessage(link, bytes),
        connected: (link) => this.sendOn(link, this.presence(0, true)),
        closed: (link) => this.#onClosed(link),
      },
    );
    // Off unless asked: presences on a multicast group are unauthenticated (RFC 5355).
    this.#multicast = init.multicast === undefined || init.multicast === false ? undefined : new MulticastChannel(init.multicast, this.log);
    this.#fanout = new UpdateFanout(this);
    this.#tableServer = new HandleTableServer(this);
    this.#client = new HandleTableClient(this, {
      page: (pull, res) => (pull.purpose === 'mentor' ? this.#mentor.page(pull, res) : this.#auditor.page(pull, res)),
      done: (pull, ok) => (pull.purpose === 'mentor' ? this.#mentor.done(pull, ok) : this.#auditor.done(pull, ok)),
    });
    this.#auditor = new Auditor(
      this,
      this.#client,
      this.#fanout.takenOver,
      (target) => this.#takeover.takenOverBy(target),
      (key, by) => this.#takeover.movedFrom(key, by),
    );
    this.#fanout.onApplied = (peerId, key) => this.#auditor.noteApplied(peerId, key);
    this.#mentor = new Mentor(this, this.#client, () => this.emitter.emit('synchronised'));
    this.#takeover = new Takeover(this, this.#fanout.takenOver);
  }

  get synchronised(): boolean {
    return this.#mentor.synchronised;
  }

  get listenUrls(): readonly string[] {
    return this.#listenUrls;
  }

  get running(): boolean {
    return this.#running;
  }

  get isolated(): boolean {
    return this.#takeover.isolated;
  }

  /**
   * Our copy may lack PEs that registrars we reach hold: we hear no peer; or we heard one again lately
   * after hearing none (peers we dropped meanwhile, or whose updates we missed, are heard and audited,
   * or taken over by a peer we then audit, within the window); or an audit is due or running.
   */
  get uncertain(): boolean {
    if (this.isolated) return true;
    const t = this.timers;
    const window = t.maxTimeLastHeardMs + t.maxTimeNoResponseMs + t.takeoverExpiryMs + 2 * t.peerHeartbeatCycleMs;
    if (this.clock.now() - this.#rejoinedAt < window) return true;
    return this.#client.busy || this.peers.values().some((p) => p.auditDue && p.link !== undefined);
  }

  async start(): Promise<void> {
    if (this.#running) throw new EnrpStateError('the ENRP server is already running');
    this.#running = true;
    try {
      this.#listenUrls = await this.#links.listen(this.#init.listen);
      for (const u of this.#listenUrls) {
        this.#server = serverInformation(this.id, u);
        if (this.#server) break;
      }
      await this.#multicast?.start((bytes) => this.#onMulticast(bytes));
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.#fanout.attach();
    for (const u of this.#init.peers ?? []) this.#knownUrls.addStatic(parseTransportUrl(u).href);
    this.#mentor.start();
    this.#tick();
    this.log.info({ listen: this.#listenUrls, peers: [...this.#knownUrls] }, 'ENRP server started');
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#heartbeat !== undefined) this.clock.clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#fanout.detach();
    this.#mentor.stop();
    this.#takeover.stop();
    this.#client.cancelAll();
    await this.#multicast?.stop();
    await this.#links.stop();
    for (const p of this.peers.values()) {
      const info = this.peers.info(p, this.hs);
      this.peers.remove(p.id);
      this.emitter.emit('peer-down', { ...info, state: 'down' }, 'stopped');
    }
  }

  // --- EnrpContext ---------------------------------------------------------

  presence(receiverId: number, replyRequired: boolean): EnrpPresence {
    const m: EnrpPresence = { type: EnrpMessageType.Presence, senderServerId: this.id, receiverServerId: receiverId, checksum: this.hs.checksum(this.id) };
    if (this.#server) m.server = this.#server;
    if (replyRequired) m.flags = EnrpFlags.ReplyRequired;
    return m;
  }

  admit(handle: Uint8Array, pe: PoolElementParameter): PoolElementCheck {
    const checked = checkPoolElementLimits(handle, pe, this.#limits);
    if (!checked.ok || this.hs.has(handle, pe.identifier)) return checked;
    if (this.hs.size - this.hs.ownedCount(this.id) >= this.#maxPeerPes) {
      return { ok: false, cause: ErrorCause.LackOfResources, reason: `at most ${this.#maxPeerPes} PEs learned from peers` };
    }
    return checked;
  }

  send(peer: Peer, msg: EnrpMessage): boolean {
    return peer.link !== undefined && this.sendOn(peer.link, msg);
  }

  sendBytes(peer: Peer, bytes: Uint8Array): boolean {
    return peer.link !== undefined && this.#sendRaw(peer.link, bytes);
  }

  sendOn(link: Link, msg: EnrpMessage): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encodeEnrpMessage(msg);
    } catch (err) {
      // Admission keeps what we hold encodable; this is the last line, not the plan.
      this.log.error({ peerId: link.peerId, type: msg.type, err }, 'ENRP message not encodable: dropped');
      return false;
    }
    return this.#sendRaw(link, bytes);
  }

  #sendRaw(link: Link, bytes: Uint8Array): boolean {
    if (link.conn.status !== 'open') return false;
    try {
      link.conn.send(bytes, PPID.ENRP);
    } catch (err) {
      this.log.debug({ peerId: link.peerId, err }, 'ENRP send failed');
      return false;
    }
    this.counters.messagesSent++;
    this.counters.sentByType[bytes[0]!] = (this.counters.sentByType[bytes[0]!] ?? 0) + 1;
    this.counters.bytesSent += bytes.length;
    return true;
  }

  holds(handle: Uint8Array, identifier: number): boolean {
    return this.#init.holdsPoolElement?.(handle, identifier) ?? true;
  }

  isLive(peerId: number): boolean {
    const p = this.peers.get(peerId);
    return p !== undefined && this.clock.now() - p.lastHeard < this.timers.maxTimeLastHeardMs;
  }

  refuse(peerId: number | undefined, error: RSerPoolError, reply?: { link: Link; cause: number; offending: Uint8Array }): void {
    this.counters.refused++;
    this.log.warn({ peerId, code: error.code, err: error }, 'refused ENRP input');
    if (reply) {
      const m: EnrpError = {
        type: EnrpMessageType.Error,
        senderServerId: this.id,
        receiverServerId: peerId ?? 0,
        error: [{ code: reply.cause, info: reply.offending.slice(0, MAX_ERROR_INFO_BYTES) }],
      };
      this.sendOn(reply.link, m);
    }
    this.emitter.emit('refused', { peerId, error });
  }

  dropPeer(peer: Peer, reason: 'takeover' | 'taken-over-by-peer' | 'silent'): void {
    if (this.peers.get(peer.id) !== peer) return;
    const info = this.peers.info(peer, this.hs);
    this.peers.remove(peer.id);
    peer.state = 'down';
    peer.link = undefined;
    // If it comes back, we have ignored what it sent meanwhile: audit it then.
    this.#dropped.add(peer.id);
    if (this.#dropped.size > MAX_DROPPED_REMEMBERED) this.#dropped.delete(this.#dropped.values().next().value!);
    this.#links.abortPeer(peer.id);
    this.#tableServer.forget(peer.id);
    this.#client.cancel(peer.id);
    this.#takeover.forget(peer.id);
    this.log.info({ peerId: peer.id, reason }, 'peer down');
    this.emitter.emit('peer-down', { ...info, state: 'down' }, reason);
  }

  // --- heartbeat -----------------------------------------------------------

  #tick(): void {
    if (!this.#running) return;
    for (const p of this.peers.values()) if (p.link) this.send(p, this.presence(p.id, false));
    for (const l of this.#links.unbound()) if (l.outbound) this.sendOn(l, this.presence(0, true));
    this.#multicast?.send(encodeEnrpMessage(this.presence(0, false)));
    this.#forgetUnheard();
    this.#redial();
    // RSPLIB jitters the cycle so registrars do not beat in lockstep.
    const cycle = this.timers.peerHeartbeatCycleMs * (0.9 + 0.1 * this.#random());
    this.#heartbeat = this.clock.setTimeout(() => this.#tick(), cycle);
  }

  /** Registrars only announced, never reached, and no longer announced: forgotten, not redialled forever. */
  #forgetUnheard(): void {
    const before = this.clock.now() - LEARNED_EXPIRY_CYCLES * this.timers.peerHeartbeatCycleMs;
    this.peers.pruneUnreached(before);
    this.#knownUrls.prune(before, (url) => this.peers.byUrl(url)?.link !== undefined);
  }

  #redial(): void {
    for (const url of this.#knownUrls) {
      if (this.#listenUrls.includes(url) || this.#links.hasOutboundTo(url)) continue;
      const p = this.peers.byUrl(url);
      if (p?.link !== undefined) continue;
      this.#links.dial(url);
    }
  }

  // --- dispatch ------------------------------------------------------------

  #onClosed(link: Link): void {
    if (link.peerId === undefined) return;
    const p = this.peers.get(link.peerId);
    if (p === undefined || p.link !== link) return;
    p.link = this.#links.linksOf(p.id)[0];
    p.auditDue = true;
    if (p.link === undefined && p.url !== undefined && this.#running) this.#links.dial(p.url);
  }

  #onMulticast(bytes: Uint8Array): void {
    if (!this.#running) return;
    let m: EnrpMessage;
    try {
      m = decodeEnrpMessage(bytes);
    } catch (err) {
      this.log.debug({ err }, 'undecodable ENRP multicast datagram ignored');
      return;
    }
    if (m.type !== EnrpMessageType.Presence || m.senderServerId === this.id) return;
    this.#presence(undefined, m);
  }

  #onMessage(link: Link, bytes: Uint8Array): void {
    if (!this.#running) return;
    this.counters.messagesReceived++;
    this.counters.bytesReceived += bytes.length;
    let m: EnrpMessage;
    try {
      m = decodeEnrpMessage(bytes);
    } catch (err) {
      const code = err instanceof DecodeError ? err.code : undefined;
      this.refuse(link.peerId, new EnrpMalformedError(`undecodable ENRP message: ${(err as Error).message}`, { cause: err }), {
        link,
        cause: code === DecodeErrorCode.UnknownType ? ErrorCause.UnrecognizedMessage : ErrorCause.InvalidValues,
        offending: bytes,
      });
      return;
    }
    this.counters.receivedByType[m.type] = (this.counters.receivedByType[m.type] ?? 0) + 1;
    const s = m.senderServerId;
    const isError = m.type === EnrpMessageType.Error;
    const reply = isError ? undefined : { link, cause: ErrorCause.RejectionDueToSecurityConsiderations, offending: bytes };
    if (s === this.id) {
      // A static peer list that names us: we dialled ourselves.
      if (link.outbound || link.peerId === undefined) void link.conn.close();
      return;
    }
    if (m.receiverServerId !== 0 && m.receiverServerId !== this.id) {
      this.refuse(s, new EnrpMisaddressedError(`message type ${m.type} from ${hex(s)} is for ${hex(m.receiverServerId)}`), reply);
      return;
    }
    if (link.peerId !== undefined && link.peerId !== s) {
      this.refuse(link.peerId, new EnrpMisaddressedError(`connection of ${hex(link.peerId)} sent a message as ${hex(s)}`), reply);
      return;
    }
    if (link.peerId === undefined && !this.#links.mayBind(link, s)) {
      const id = link.conn.peerIdentity;
      this.refuse(
        s,
        new EnrpMisaddressedError(`${id ? `${id.kind} identity '${id.name}'` : 'an unauthenticated connection'} may not speak as ${hex(s)}`),
        reply,
      );
      link.conn.abort();
      return;
    }
    if (m.type === EnrpMessageType.Presence) {
      link.peerId = s;
      this.#presence(link, m);
      // The link proved it speaks as s (mayBind), even if a duplicate of it was just closed.
      if (m.unreachable !== undefined && this.peers.get(s) !== undefined) {
        this.counters.unreachableReceived++;
        this.emitter.emit('unreachable-report', s, m.unreachable.handle, m.unreachable.identifier);
      }
      return;
    }
    const peer = this.peers.get(s);
    if (peer === undefined) {
      this.refuse(s, new EnrpUnknownSenderError(`message type ${m.type} from ${hex(s)}, which is not a peer`), reply);
      return;
    }
    if (link.peerId === undefined) {
      link.peerId = s;
      this.#bindLink(peer, link);
    }
    this.#heard(peer);
    switch (m.type) {
      case EnrpMessageType.HandleTableRequest:
        this.#tableServer.handleRequest(peer, m);
        return;
      case EnrpMessageType.HandleTableResponse:
        this.#client.handleResponse(peer, m);
        return;
      case EnrpMessageType.HandleUpdate:
        this.#fanout.apply(link, s, m, bytes);
        return;
      case EnrpMessageType.ListRequest:
        this.#listRequest(peer);
        return;
      case EnrpMessageType.ListResponse:
        this.#listResponse(m);
        return;
      case EnrpMessageType.InitTakeover:
        this.#takeover.handleInit(link, peer, m, bytes);
        return;
      case EnrpMessageType.InitTakeoverAck:
        this.#takeover.handleAck(peer, m);
        return;
      case EnrpMessageType.TakeoverServer:
        this.#takeover.handleTakeoverServer(link, peer, m, bytes);
        return;
      case EnrpMessageType.Error:
        this.#peerError(peer, m);
        return;
      default: {
        const never: never = m;
        return never;
      }
    }
  }

  #bindLink(peer: Peer, link: Link): void {
    const before = peer.link;
    peer.link = this.#links.choose(peer.link, link, peer.id);
    // Another connection now: what the old one carried last may not have arrived.
    if (before !== undefined && peer.link !== before) peer.auditDue = true;
  }

  #heard(peer: Peer): void {
    const now = this.clock.now();
    if (now - peer.lastHeard >= this.timers.maxTimeLastHeardMs && this.#takeover.isolated) {
      this.#rejoinedAt = now;
      this.log.info({ peerId: peer.id }, 'a peer heard again after none were: our handlespace may lack what moved meanwhile');
    }
    peer.lastHeard = now;
    this.#takeover.heard(peer);
  }

  #presence(link: Link | undefined, m: EnrpPresence): void {
    const s = m.senderServerId;
    const peer = link === undefined ? this.peers.addLearned(s) : this.peers.add(s);
    if (m.server) {
      const url = urlOf(m.server, this.#scheme);
      if (url !== undefined) {
        this.peers.setUrl(peer, url);
        this.#knownUrls.learn(url, this.clock.now());
      }
    } else if (peer.url === undefined && link?.url !== undefined) this.peers.setUrl(peer, link.url);
    if (link === undefined) {
      // Multicast is unauthenticated: it only hints at a URL, which must then prove itself on a
      // connection. Counting it as heard would let a spoofed datagram keep a dead peer from takeover.
      // A first sighting is stamped only so that an unproven hint expires.
      if (peer.lastHeard === -Infinity) peer.lastHeard = this.clock.now();
      if (peer.link === undefined && peer.url !== undefined && (this.id < s || ++peer.multicastHeard > 2)) this.#links.dial(peer.url);
      return;
    }
    this.#bindLink(peer, link);
    if (this.#dropped.delete(s)) peer.auditDue = true;
    peer.checksum = m.checksum;
    this.#heard(peer);
    // Answer before anything else goes out on this link: a table or list request that reached the
    // peer before our presence would be refused as coming from no peer.
    if ((m.flags ?? 0) & EnrpFlags.ReplyRequired) this.sendOn(link, this.presence(s, false));
    if (peer.link !== undefined && (peer.state === 'connecting' || peer.state === 'down')) {
      peer.state = 'up';
      this.log.info({ peerId: s, url: peer.url }, 'peer up');
      this.emitter.emit('peer-up', this.peers.info(peer, this.hs));
      this.#takeover.watch(peer);
    }
    // RFC 5355: the table we start from comes only from a configured peer, proved by answering on the
    // configured URL we dialled (over TLS, as an authorized identity), never from whoever dialled us.
    if (peer.link !== undefined && !this.#mentor.synchronised) {
      if (link.outbound && link.url !== undefined && this.#knownUrls.isStatic(link.url)) this.#mentor.peerUp(peer);
      else if (peer.url !== undefined && this.#knownUrls.isStatic(peer.url)) this.#links.dial(peer.url);
    }
    if (peer.link !== undefined) this.#auditor.check(peer, m.checksum);
  }

  #listRequest(peer: Peer): void {
    const servers: ServerInformation[] = [];
    for (const p of this.peers.active()) {
      if (p.id === peer.id || p.url === undefined) continue;
      const info = serverInformation(p.id, p.url);
      if (info) servers.push(info);
    }
    const res: EnrpListResponse = { type: EnrpMessageType.ListResponse, senderServerId: this.id, receiverServerId: peer.id, servers };
    this.send(peer, res);
  }

  #listResponse(m: EnrpListResponse): void {
    for (const info of m.servers.slice(0, MAX_LEARNED_PEERS)) {
      if (info.registrarId === this.id) continue;
      const url = urlOf(info, this.#scheme);
      if (url === undefined) continue;
      this.#knownUrls.learn(url, this.clock.now());
      if (this.peers.get(info.registrarId)?.link === undefined) this.#links.dial(url);
    }
  }

  #peerError(peer: Peer, m: EnrpError): void {
    for (const c of m.error) {
      this.log.warn({ peerId: peer.id, cause: c.code, err: new EnrpPeerError(`peer ${hex(peer.id)} reported cause ${c.code}`) }, 'ENRP error from peer');
      let offending: EnrpMessage | undefined;
      try {
        offending = decodeEnrpMessage(c.info);
      } catch {
        offending = undefined;
      }
      if (offending?.type === EnrpMessageType.InitTakeover && offending.senderServerId === this.id) {
        this.#takeover.refused(peer, offending.targetServerId);
      }
    }
  }

  forwardUnreachable(handle: Uint8Array, identifier: number, homeId: number): boolean {
    const peer = this.peers.get(homeId);
    if (!this.#running || peer === undefined || peer.state !== 'up') return false;
    const m = this.presence(homeId, false) as EnrpPresence;
    m.unreachable = { identifier: identifier >>> 0, handle };
    if (!this.send(peer, m)) return false;
    this.counters.unreachableForwarded++;
    return true;
  }

  info(): PeerInfo[] {
    return this.peers.values().map((p) => this.peers.info(p, this.hs));
  }

  status(): EnrpStatus {
    return {
      id: this.id,
      running: this.#running,
      synchronised: this.synchronised,
      mentorId: this.#mentor.mentorId,
      listen: [...this.#listenUrls],
      peers: this.info(),
      knownUrls: this.#knownUrls.size,
      handlespaceSize: this.hs.size,
      ownedCount: this.hs.ownedCount(this.id),
      checksum: this.hs.checksum(this.id),
      takeoversInProgress: this.#takeover.inProgress,
      counters: { ...this.counters },
    };
  }
}

/** An ENRP server (RFC 5353) sharing `init.handlespace` with its peers. */
export function createEnrpServer(init: EnrpServerInit, components: EnrpServerComponents = {}): EnrpServer {
  const node = new EnrpNode(init, components);
  return {
    id: node.id,
    events: node.emitter,
    get synchronised() {
      return node.synchronised;
    },
    get listenUrls() {
      return node.listenUrls;
    },
    get isolated() {
      return node.isolated;
    },
    get uncertain() {
      return node.uncertain;
    },
    start: () => node.start(),
    stop: () => node.stop(),
    peers: () => node.info(),
    status: () => node.status(),
    forwardUnreachable: (handle, identifier, homeId) => node.forwardUnreachable(handle, identifier, homeId),
    [Symbol.asyncDispose]: () => node.stop(),
  };
}
