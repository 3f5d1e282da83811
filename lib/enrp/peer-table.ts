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

  constructor(id: number) {
    this.id = id;
  }
}

export class PeerTable {
  readonly #byId = new Map<number, Peer>();

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

  remove(id: number): void {
    this.#byId.delete(id);
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
    for (const p of this.#byId.values()) if (p.url === url) return p;
    return undefined;
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
