/**
 * ENRP connections: listening, dialling known URLs, binding a connection to
 * the peer its first message names, and keeping one connection per pair.
 */
import { RSerPoolError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import {
  PPID,
  parseTransportUrl,
  peerLabel,
  type Connection,
  type Listener,
  type MessageTransport,
  type PeerIdentity,
  type TransportUrl,
} from '../transport/index.js';
import { listenGuarded, type ConnectionLimits } from '../transport/guard.js';
import type { Link } from './peer-table.js';

interface LinkHandlers {
  message(link: Link, bytes: Uint8Array): void;
  /** An outbound connection is up: introduce ourselves on it. */
  connected(link: Link): void;
  /** A connection closed; `link.peerId` may be set. */
  closed(link: Link): void;
}

interface LinkManagerInit {
  id: number;
  clock: Clock;
  log: Logger;
  transportFor: (url: TransportUrl | string) => MessageTransport;
  connectTimeoutMs: number;
  /** A link silent this long while another is live counts as stale. */
  staleMs: number;
  /** Caps and timeouts of inbound connections. */
  connectionLimits?: ConnectionLimits | undefined;
  authorizePeer?: ((identity: PeerIdentity | undefined, serverId?: number) => boolean) | undefined;
}

/**
 * A PSK connection we dialled: the server proved it holds the key we
 * presented, which says nothing about which registrar it is. We dialled a
 * configured URL; its server id is bound on the links it dials to us.
 */
function dialledPsk(conn: Connection): boolean {
  return conn.peerIdentity?.kind === 'psk';
}

export class LinkManager {
  readonly #init: LinkManagerInit;
  readonly #handlers: LinkHandlers;
  readonly #links = new Set<Link>();
  readonly #listeners: Listener[] = [];
  readonly #dialling = new Set<string>();
  /** Open outbound links per URL: redialling asks this for every known URL each cycle. */
  readonly #outbound = new Map<string, number>();
  readonly #abort = new AbortController();
  #stopped = false;

  constructor(init: LinkManagerInit, handlers: LinkHandlers) {
    this.#init = init;
    this.#handlers = handlers;
  }

  /** Listens on every URL; returns the bound URLs. */
  async listen(urls: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const url of urls) {
      const { transportFor, connectionLimits, clock, log } = this.#init;
      const l = await listenGuarded(transportFor(url), url, { ppid: PPID.ENRP, signal: this.#abort.signal }, connectionLimits, { clock, logger: log });
      l.on('connection', (conn) => {
        if (this.#authorized(conn, false)) this.#adopt(conn, false, undefined);
      });
      this.#listeners.push(l);
      out.push(l.address.href);
    }
    return out;
  }

  /** Dials `url` unless a dial is under way or an open outbound link to it exists. */
  dial(url: string): void {
    if (this.#stopped || this.hasOutboundTo(url)) return;
    this.#dialling.add(url);
    const { transportFor, connectTimeoutMs, log } = this.#init;
    let href: string;
    try {
      href = parseTransportUrl(url).href;
    } catch (err) {
      this.#dialling.delete(url);
      log.warn({ url, err }, 'bad peer URL');
      return;
    }
    transportFor(href)
      .connect(href, { ppid: PPID.ENRP, timeoutMs: connectTimeoutMs, signal: this.#abort.signal })
      .then(
        (conn) => {
          this.#dialling.delete(url);
          if (this.#stopped || !this.#authorized(conn, true)) {
            conn.abort();
            return;
          }
          const link = this.#adopt(conn, true, url);
          this.#handlers.connected(link);
        },
        (err: unknown) => {
          this.#dialling.delete(url);
          log.debug({ url, code: err instanceof RSerPoolError ? err.code : undefined }, 'peer connect failed');
        },
      );
  }

  /** RFC 5355: only identities the policy names as registrars become peers, either way round. */
  #authorized(conn: Connection, outbound: boolean): boolean {
    const check = this.#init.authorizePeer;
    if (!check || (outbound && dialledPsk(conn)) || check(conn.peerIdentity)) return true;
    this.#init.log.warn({ conn: conn.id, identity: peerLabel(conn) }, 'ENRP connection refused: not an authorized registrar');
    conn.abort();
    return false;
  }

  #adopt(conn: Connection, outbound: boolean, url: string | undefined): Link {
    const now = this.#init.clock.now();
    const link: Link = { conn, outbound, url, openedAt: now, peerId: undefined, lastRx: -Infinity };
    this.#links.add(link);
    if (url !== undefined) this.#outbound.set(url, (this.#outbound.get(url) ?? 0) + 1);
    conn.on('message', (bytes) => {
      link.lastRx = this.#init.clock.now();
      this.#handlers.message(link, bytes);
    });
    conn.on('close', () => {
      this.#links.delete(link);
      if (url !== undefined) {
        const n = (this.#outbound.get(url) ?? 1) - 1;
        if (n > 0) this.#outbound.set(url, n);
        else this.#outbound.delete(url);
      }
      this.#handlers.closed(link);
    });
    return link;
  }

  /**
   * Given a newly bound link and the peer's current one, returns the link to
   * keep and closes the other. Deterministic on both sides: the connection
   * initiated by the lower id wins; between two from the same initiator the
   * newer wins (it only dials again after losing the old one); a link that
   * carried nothing for `staleMs` loses to a fresh one (the peer restarted).
   */
  choose(current: Link | undefined, fresh: Link, peerId: number): Link {
    if (current === undefined || current === fresh || current.conn.status !== 'open') return fresh;
    const initiator = (l: Link): number => (l.outbound ? this.#init.id : peerId);
    const now = this.#init.clock.now();
    const stale = (l: Link): boolean => now - Math.max(l.openedAt, l.lastRx) > this.#init.staleMs;
    let keep: Link;
    if (initiator(current) === initiator(fresh)) keep = fresh.openedAt >= current.openedAt ? fresh : current;
    else if (stale(current) && !stale(fresh)) keep = fresh;
    else keep = initiator(current) === Math.min(this.#init.id, peerId) ? current : fresh;
    const drop = keep === current ? fresh : current;
    this.#init.log.debug({ peerId, kept: keep.conn.id, closed: drop.conn.id }, 'duplicate ENRP connection');
    void drop.conn.close();
    return keep;
  }

  /**
   * RFC 5355: may this link speak as server `peerId`? Its identity must be
   * allowed that id, and an authenticated id belongs to one identity at a
   * time: a link of another identity claiming a peer whose link is open is
   * refused, never preferred.
   */
  mayBind(link: Link, peerId: number): boolean {
    if (link.outbound && dialledPsk(link.conn)) return true;
    const identity = link.conn.peerIdentity;
    const check = this.#init.authorizePeer;
    if (check && !check(identity, peerId)) return false;
    if (identity === undefined) return true;
    const name = peerLabel(link.conn);
    for (const l of this.#links) {
      if (l === link || l.conn.status !== 'open' || l.peerId === undefined || (l.outbound && dialledPsk(l.conn))) continue;
      const otherName = peerLabel(l.conn);
      // Another identity on this id, or this identity on another id.
      if (l.peerId === peerId && otherName !== name) return false;
      if (l.peerId !== peerId && otherName === name) return false;
    }
    return true;
  }

  /** Open links bound to `peerId`. */
  linksOf(peerId: number): Link[] {
    return [...this.#links].filter((l) => l.peerId === peerId && l.conn.status === 'open');
  }

  /** Outbound links not yet bound (a static peer that has not answered). */
  unbound(): Link[] {
    return [...this.#links].filter((l) => l.peerId === undefined && l.conn.status === 'open');
  }

  /** Drops every connection to a peer at once (it is dead or taken over). */
  abortPeer(peerId: number): void {
    for (const l of [...this.#links]) if (l.peerId === peerId) l.conn.abort();
  }

  hasOutboundTo(url: string): boolean {
    return this.#dialling.has(url) || this.#outbound.has(url);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await Promise.all(this.#listeners.map((l) => l.close()));
    for (const l of [...this.#links]) l.conn.abort();
    this.#links.clear();
    this.#outbound.clear();
  }
}
