/** The registrars we know: state, last heard, announced checksum, and the connection we use. */
import type { Connection } from '../transport/index.js';
import type { Handlespace } from '../handlespace/index.js';
import type { PeerInfo, PeerState } from './types.js';

/** One ENRP connection; bound to a peer id once its first message names the sender. */
export interface Link {
  readonly conn: Connection;
  /** We dialled it. */
  readonly outbound: boolean;
  /** The URL we dialled (outbound only). */
  readonly url: string | undefined;
  readonly openedAt: number;
  peerId: number | undefined;
  lastRx: number;
}

export class Peer {
  readonly id: number;
  url: string | undefined;
  state: PeerState = 'connecting';
  lastHeard = -Infinity;
  /** When we sent the R-bit probe (state 'probing'). */
  probedAt = -Infinity;
  checksum: number | undefined;
  link: Link | undefined;
  /** Multicast presences heard while we had no connection to it. */
  multicastHeard = 0;
  /**
   * Its connection dropped or changed, or we dropped it before: updates it
   * sent may be lost. Audited at its next presence even when the checksums
   * agree (they cover membership only, not transport, policy or load).
   */
  auditDue = false;

  constructor(id: number) {
    this.id = id;
  }
}

/** Registrars heard of only by multicast (or list responses) held at most, and how long they last unheard, in heartbeat cycles. */
export const MAX_LEARNED_PEERS = 256;
export const LEARNED_EXPIRY_CYCLES = 4;

/** A peer we heard of but never reached: anyone on the link can invent those. */
const unreached = (p: Peer): boolean => p.link === undefined && p.state === 'connecting';

export class PeerTable {
  readonly #byId = new Map<number, Peer>();
  readonly #byUrl = new Map<string, Peer>();

  get(id: number): Peer | undefined {
    return this.#byId.get(id);
  }

  add(id: number): Peer {
    let p = this.#byId.get(id);
    if (p === undefined) {
      p = new Peer(id);
      this.#byId.set(id, p);
    }
    return p;
  }

  /**
   * Like add() for a sender heard by multicast: at the cap, the unreached
   * peer heard from longest ago makes room (one that ever connected never does).
   */
  addLearned(id: number, cap = MAX_LEARNED_PEERS): Peer {
    if (!this.#byId.has(id)) {
      let count = 0;
      let oldest: Peer | undefined;
      for (const p of this.#byId.values()) {
        if (!unreached(p)) continue;
        count++;
        if (oldest === undefined || p.lastHeard < oldest.lastHeard) oldest = p;
      }
      if (count >= cap && oldest !== undefined) this.remove(oldest.id);
    }
    return this.add(id);
  }

  setUrl(p: Peer, url: string): void {
    if (p.url === url) return;
    if (p.url !== undefined && this.#byUrl.get(p.url) === p) this.#byUrl.delete(p.url);
    p.url = url;
    this.#byUrl.set(url, p);
  }

  remove(id: number): void {
    const p = this.#byId.get(id);
    if (p?.url !== undefined && this.#byUrl.get(p.url) === p) this.#byUrl.delete(p.url);
    this.#byId.delete(id);
  }

  /** Forgets peers never reached and not heard from since `before`; returns how many. */
  pruneUnreached(before: number): number {
    let n = 0;
    for (const p of [...this.#byId.values()]) {
      if (unreached(p) && p.lastHeard < before) {
        this.remove(p.id);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.#byId.size;
  }

  values(): Peer[] {
    return [...this.#byId.values()];
  }

  /** Peers heard from and reachable: the ones that get updates and takeover votes. */
  active(): Peer[] {
    return this.values().filter((p) => p.link !== undefined && (p.state === 'up' || p.state === 'probing'));
  }

  byUrl(url: string): Peer | undefined {
    return this.#byUrl.get(url);
  }

  info(p: Peer, hs: Handlespace): PeerInfo {
    return {
      id: p.id,
      url: p.url,
      state: p.state,
      lastHeard: p.lastHeard,
      ownedCount: hs.ownedCount(p.id),
      checksum: p.checksum,
      localChecksum: hs.checksum(p.id),
      connected: p.link !== undefined && p.link.conn.status === 'open',
    };
  }
}

/**
 * Peer URLs to dial: the configured ones for good, the learned ones while
 * they keep being announced (or their peer stays connected), at most `cap`
 * of them, the one heard longest ago making room.
 */
export class KnownUrls {
  readonly #static = new Set<string>();
  /** Learned URL -> when last heard; insertion order is last-heard order. */
  readonly #learned = new Map<string, number>();
  readonly #cap: number;

  constructor(cap = MAX_LEARNED_PEERS) {
    this.#cap = cap;
  }

  addStatic(url: string): void {
    this.#static.add(url);
    this.#learned.delete(url);
  }

  /** Configured (static), not learned from a presence, list response or multicast. */
  isStatic(url: string): boolean {
    return this.#static.has(url);
  }

  learn(url: string, now: number): void {
    if (this.#static.has(url)) return;
    this.#learned.delete(url);
    if (this.#learned.size >= this.#cap) {
      const oldest = this.#learned.keys().next();
      if (!oldest.done) this.#learned.delete(oldest.value);
    }
    this.#learned.set(url, now);
  }

  /** Forgets learned URLs not heard since `before` unless `keep` says their peer is still connected. */
  prune(before: number, keep: (url: string) => boolean): void {
    for (const [url, at] of [...this.#learned]) if (at < before && !keep(url)) this.#learned.delete(url);
  }

  get size(): number {
    return this.#static.size + this.#learned.size;
  }

  *[Symbol.iterator](): IterableIterator<string> {
    yield* this.#static;
    yield* this.#learned.keys();
  }
}
