/**
 * Liveness and takeover (RFC 5353 section 3.11). A peer silent for
 * MAX-TIME-LAST-HEARD is probed (presence, R bit); silent MAX-TIME-NO-RESPONSE
 * more, we ask every other peer (ENRP_INIT_TAKEOVER). A peer acks unless it
 * still hears the target (it refuses with an ENRP_ERROR) or it takes over the
 * same target itself with a lower id (lower id wins; the higher abandons).
 * With all acks in, or at TAKEOVER-EXPIRY with those that came, the PEs
 * become ours and ENRP_TAKEOVER_SERVER tells everyone.
 */
import { EnrpMessageType, type EnrpInitTakeover, type EnrpInitTakeoverAck, type EnrpTakeoverServer } from '../../protocols/enrp/types.js';
import { ErrorCause } from '../../protocols/parameters/types.js';
import type { TimerHandle } from '../clock.js';
import type { EnrpContext } from './context.js';
import { EnrpTakeoverRefusedError } from './errors.js';
import type { Link, Peer } from './peer-table.js';
import { peKey } from './pe.js';

interface Process {
  readonly target: number;
  readonly waiting: Set<number>;
  readonly acked: Set<number>;
  timer: TimerHandle | undefined;
}

const hex = (n: number): string => `$${n.toString(16)}`;
const MAX_DROPPED_SILENT = 1_024;

export class Takeover {
  readonly #ctx: EnrpContext;
  readonly #takenOver: Set<string>;
  readonly #timers = new Map<number, TimerHandle>();
  readonly #processes = new Map<number, Process>();
  /** Targets whose takeover we acked: target -> (initiator, when). */
  readonly #acked = new Map<number, { by: number; at: number }>();
  /** Peers we dropped as silent or saw taken over, and when: silent together with a target, they say we may be the one cut off. */
  readonly #droppedSilent = new Map<number, number>();
  /** Registrars a peer took over, and by whom and when: their claims from before are stale for a while. */
  readonly #takenBy = new Map<number, { by: number; at: number }>();
  /** PEs a peer's takeover moved to it here, from which registrar and when: the taker may not know them all. */
  readonly #moved = new Map<string, { by: number; from: number; at: number }>();

  constructor(ctx: EnrpContext, takenOver: Set<string>) {
    this.#ctx = ctx;
    this.#takenOver = takenOver;
  }

  get inProgress(): number[] {
    return [...this.#processes.keys()];
  }

  /** Starts supervising a peer that just came up. */
  watch(peer: Peer): void {
    this.#droppedSilent.delete(peer.id);
    this.#schedule(peer, peer.lastHeard + this.#ctx.timers.maxTimeLastHeardMs);
  }

  /** Any message from the peer: a probe is answered, a takeover of it is off. */
  heard(peer: Peer): void {
    if (peer.state === 'probing') peer.state = 'up';
    const proc = this.#processes.get(peer.id);
    if (proc !== undefined) {
      this.#ctx.log.warn({ target: peer.id }, 'takeover target is alive: abandoning takeover');
      this.#end(proc);
      peer.state = 'up';
    }
    this.#acked.delete(peer.id);
  }

  forget(peerId: number): void {
    const t = this.#timers.get(peerId);
    if (t !== undefined) this.#ctx.clock.clearTimeout(t);
    this.#timers.delete(peerId);
    const proc = this.#processes.get(peerId);
    if (proc !== undefined) this.#end(proc);
    this.#acked.delete(peerId);
  }

  stop(): void {
    for (const id of [...this.#timers.keys(), ...this.#processes.keys()]) this.forget(id);
  }

  #schedule(peer: Peer, at: number): void {
    const ctx = this.#ctx;
    const old = this.#timers.get(peer.id);
    if (old !== undefined) ctx.clock.clearTimeout(old);
    this.#timers.set(
      peer.id,
      ctx.clock.setTimeout(
        () => {
          this.#timers.delete(peer.id);
          this.#check(peer);
        },
        Math.max(0, at - ctx.clock.now()),
      ),
    );
  }

  #check(peer: Peer): void {
    const ctx = this.#ctx;
    if (ctx.peers.get(peer.id) !== peer) return;
    const now = ctx.clock.now();
    const t = ctx.timers;
    if (peer.state === 'up' || peer.state === 'connecting') {
      if (now - peer.lastHeard < t.maxTimeLastHeardMs) return this.#schedule(peer, peer.lastHeard + t.maxTimeLastHeardMs);
      ctx.log.info({ peerId: peer.id, silentMs: now - peer.lastHeard }, 'peer silent: probing');
      peer.state = 'probing';
      peer.probedAt = now;
      ctx.send(peer, ctx.presence(peer.id, true));
      return this.#schedule(peer, now + t.maxTimeNoResponseMs);
    }
    if (peer.state === 'probing') {
      if (peer.lastHeard >= peer.probedAt) {
        peer.state = 'up';
        return this.#schedule(peer, peer.lastHeard + t.maxTimeLastHeardMs);
      }
      if (now - peer.probedAt < t.maxTimeNoResponseMs) return this.#schedule(peer, peer.probedAt + t.maxTimeNoResponseMs);
      return this.#begin(peer);
    }
    // 'taking-over': someone else's takeover we acked did not finish in time; try ourselves.
    if (peer.state === 'taking-over' && !this.#processes.has(peer.id)) this.#begin(peer);
  }

  #begin(peer: Peer): void {
    const ctx = this.#ctx;
    if (ctx.hs.ownedCount(peer.id) === 0) {
      ctx.log.info({ peerId: peer.id }, 'silent peer owns no PEs: dropping it');
      ctx.dropPeer(peer, 'silent');
      this.#lostSilent(peer.id);
      return;
    }
    const acked = this.#acked.get(peer.id);
    if (acked !== undefined && ctx.clock.now() - acked.at < ctx.timers.takeoverExpiryMs) {
      // Another registrar is on it; give it until TAKEOVER-EXPIRY.
      peer.state = 'taking-over';
      this.#schedule(peer, acked.at + ctx.timers.takeoverExpiryMs);
      return;
    }
    peer.state = 'taking-over';
    const proc: Process = { target: peer.id, waiting: new Set(), acked: new Set(), timer: undefined };
    this.#processes.set(peer.id, proc);
    const msg: EnrpInitTakeover = { type: EnrpMessageType.InitTakeover, senderServerId: ctx.id, receiverServerId: 0, targetServerId: peer.id };
    for (const p of ctx.peers.active()) {
      if (p.id === peer.id) continue;
      if (ctx.send(p, { ...msg, receiverServerId: p.id })) proc.waiting.add(p.id);
    }
    ctx.log.warn({ target: peer.id, asked: [...proc.waiting] }, 'initiating takeover');
    if (proc.waiting.size === 0) return this.#complete(proc);
    proc.timer = ctx.clock.setTimeout(() => {
      proc.timer = undefined;
      ctx.log.warn({ target: proc.target, missing: [...proc.waiting] }, 'takeover expiry: completing with the acks received');
      this.#complete(proc);
    }, ctx.timers.takeoverExpiryMs);
  }

  #end(proc: Process): void {
    if (proc.timer !== undefined) this.#ctx.clock.clearTimeout(proc.timer);
    proc.timer = undefined;
    this.#processes.delete(proc.target);
  }

  /**
   * No peer but the target has been heard lately, though others were: we are more likely the one cut
   * off (a partition, our own pause) than everyone else. Taking over would pull the PEs away from
   * registrars that still reach each other, which then delete them; PEs whose home is really gone
   * re-register on their own. A target that is our only peer is taken over as before.
   */
  /** No peer heard lately, though some were (see #isolated). */
  get isolated(): boolean {
    return this.#isolated(0);
  }

  #isolated(target: number): boolean {
    const ctx = this.#ctx;
    const now = ctx.clock.now();
    const t = ctx.timers;
    // Long enough to cover peers going silent one after another (a partition seen link by link).
    const window = 10 * (t.maxTimeLastHeardMs + t.maxTimeNoResponseMs);
    for (const [id, at] of this.#droppedSilent) if (now - at > window || id === target) this.#droppedSilent.delete(id);
    const others = ctx.peers.values().filter((p) => p.id !== target && p.lastHeard > -Infinity);
    if (others.some((p) => ctx.isLive(p.id))) return false;
    return others.length > 0 || this.#droppedSilent.size > 0;
  }

  #complete(proc: Process): void {
    const ctx = this.#ctx;
    if (this.#processes.get(proc.target) !== proc) return;
    this.#end(proc);
    if (proc.acked.size === 0 && this.#isolated(proc.target)) {
      ctx.log.warn({ target: proc.target }, 'no other peer heard either: not taking over (we may be the one cut off)');
      const peer = ctx.peers.get(proc.target);
      if (peer !== undefined) {
        peer.state = 'probing';
        peer.probedAt = ctx.clock.now();
        ctx.send(peer, ctx.presence(peer.id, true));
        this.#schedule(peer, peer.probedAt + ctx.timers.maxTimeNoResponseMs);
      }
      return;
    }
    const target = ctx.peers.get(proc.target);
    const entries = ctx.hs.owned(proc.target);
    ctx.hs.takeover(proc.target, ctx.id);
    for (const e of entries) this.#takenOver.add(peKey(e.poolKey, e.identifier));
    const msg: EnrpTakeoverServer = { type: EnrpMessageType.TakeoverServer, senderServerId: ctx.id, receiverServerId: 0, targetServerId: proc.target };
    for (const p of ctx.peers.active()) if (p.id !== proc.target) ctx.send(p, { ...msg, receiverServerId: p.id });
    ctx.counters.takeovers++;
    ctx.log.warn({ target: proc.target, pes: entries.length, acks: [...proc.acked] }, 'took over registrar');
    if (target !== undefined) ctx.dropPeer(target, 'takeover');
    this.#lostSilent(proc.target);
    ctx.emitter.emit('takeover', proc.target, entries);
  }

  handleInit(link: Link, sender: Peer, m: EnrpInitTakeover, raw: Uint8Array): void {
    const ctx = this.#ctx;
    const target = m.targetServerId;
    const refuse = (why: string): void =>
      ctx.refuse(sender.id, new EnrpTakeoverRefusedError(`INIT_TAKEOVER of ${hex(target)} from ${hex(sender.id)}: ${why}`), {
        link,
        cause: ErrorCause.RejectionDueToSecurityConsiderations,
        offending: raw,
      });
    if (target === ctx.id) {
      refuse('we are alive');
      ctx.send(sender, ctx.presence(sender.id, false));
      return;
    }
    if (target === sender.id) return refuse('a registrar cannot take over itself');
    if (ctx.isLive(target)) return refuse('we still hear from the target');
    const own = this.#processes.get(target);
    if (own !== undefined) {
      if (ctx.id < sender.id) {
        ctx.log.info({ target, rival: sender.id }, 'rival takeover with a higher id: not acking');
        return;
      }
      ctx.log.info({ target, rival: sender.id }, 'rival takeover with a lower id: abandoning ours');
      this.#end(own);
    }
    const peer = ctx.peers.get(target);
    if (peer !== undefined) {
      peer.state = 'taking-over';
      this.#schedule(peer, ctx.clock.now() + ctx.timers.takeoverExpiryMs);
    }
    this.#acked.set(target, { by: sender.id, at: ctx.clock.now() });
    const ack: EnrpInitTakeoverAck = { type: EnrpMessageType.InitTakeoverAck, senderServerId: ctx.id, receiverServerId: sender.id, targetServerId: target };
    ctx.send(sender, ack);
  }

  handleAck(sender: Peer, m: EnrpInitTakeoverAck): void {
    const proc = this.#processes.get(m.targetServerId);
    if (proc === undefined) return;
    proc.waiting.delete(sender.id);
    proc.acked.add(sender.id);
    if (proc.waiting.size === 0) this.#complete(proc);
  }

  /** A peer refused our INIT_TAKEOVER: it still hears the target. */
  refused(sender: Peer, target: number): void {
    const ctx = this.#ctx;
    const proc = this.#processes.get(target);
    if (proc === undefined) return;
    ctx.log.warn({ target, by: sender.id }, 'takeover refused by a peer that hears the target: abandoning');
    this.#end(proc);
    const peer = ctx.peers.get(target);
    if (peer !== undefined) {
      // Probe again; if it stays silent, a later attempt may succeed.
      peer.state = 'probing';
      peer.probedAt = ctx.clock.now();
      this.#schedule(peer, peer.probedAt + ctx.timers.maxTimeNoResponseMs);
    }
  }

  handleTakeoverServer(link: Link, sender: Peer, m: EnrpTakeoverServer, raw: Uint8Array): void {
    const ctx = this.#ctx;
    const target = m.targetServerId;
    const refuse = (why: string): void =>
      ctx.refuse(sender.id, new EnrpTakeoverRefusedError(`TAKEOVER_SERVER of ${hex(target)} by ${hex(sender.id)}: ${why}`), {
        link,
        cause: ErrorCause.RejectionDueToSecurityConsiderations,
        offending: raw,
      });
    if (target === ctx.id) {
      // We are alive: keep our PEs; our presence lets the others audit theirs back.
      refuse('we are alive');
      for (const p of ctx.peers.active()) ctx.send(p, ctx.presence(p.id, false));
      return;
    }
    if (target === sender.id) return refuse('a registrar cannot take over itself');
    if (ctx.isLive(target)) return refuse('we still hear from the target');
    const own = this.#processes.get(target);
    if (own !== undefined) this.#end(own);
    const now = ctx.clock.now();
    for (const [key, m] of this.#moved) if (!this.#recent(m.at, now)) this.#moved.delete(key);
    for (const e of ctx.hs.owned(target)) this.#moved.set(peKey(e.poolKey, e.identifier), { by: sender.id, from: target, at: now });
    const count = ctx.hs.takeover(target, sender.id);
    if (this.#takenBy.size < MAX_DROPPED_SILENT) this.#takenBy.set(target, { by: sender.id, at: now });
    ctx.log.info({ target, by: sender.id, pes: count }, 'peer took over registrar');
    ctx.emitter.emit('peer-takeover', target, sender.id, count);
    const peer = ctx.peers.get(target);
    if (peer !== undefined) ctx.dropPeer(peer, 'taken-over-by-peer');
    // Silent to us as well (else refused above).
    this.#lostSilent(target);
  }

  /**
   * The peer that took `target` over, within the last 10 x (last-heard + no-response): a taken-over
   * registrar that resumes still claims the PEs it lost, from before its pause, until it times them out.
   */
  takenOverBy(target: number): number | undefined {
    const t = this.#takenBy.get(target);
    if (t === undefined) return undefined;
    if (this.#recent(t.at, this.#ctx.clock.now())) return t.by;
    this.#takenBy.delete(target);
    return undefined;
  }

  /**
   * The registrar a PE came from, when a takeover by `by` moved it to `by` here lately (see takenOverBy).
   * The taker may never have known it: it was cut off when the PE moved to the registrar it took over.
   */
  movedFrom(key: string, by: number): number | undefined {
    const m = this.#moved.get(key);
    if (m === undefined || m.by !== by) return undefined;
    if (this.#recent(m.at, this.#ctx.clock.now())) return m.from;
    this.#moved.delete(key);
    return undefined;
  }

  #recent(at: number, now: number): boolean {
    const timers = this.#ctx.timers;
    return now - at <= 10 * (timers.maxTimeLastHeardMs + timers.maxTimeNoResponseMs);
  }

  /** A peer taken over went silent just as one dropped: if the last one left goes silent too, we may be the one cut off. */
  #lostSilent(peerId: number): void {
    if (this.#droppedSilent.size < MAX_DROPPED_SILENT) this.#droppedSilent.set(peerId, this.#ctx.clock.now());
  }
}
