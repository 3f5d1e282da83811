/**
 * Handle table request/response (RFC 5353 sections 3.3-3.4): serving our
 * handlespace in pages bounded by message size (M bit = more to send), and
 * pulling a peer's table page by page, for a mentor sync or an audit.
 */
import { bytesParameterSize, poolElementSize } from '../../protocols/parameters/codec.js';
import { OWNER_IDENTITY_BYTES } from '../../protocols/parameters/types.js';
import { EnrpFlags, EnrpMessageType, type EnrpHandleTableRequest, type EnrpHandleTableResponse, type EnrpPoolEntry } from '../../protocols/enrp/types.js';
import { toParameter, type PoolElementEntry } from '../handlespace/index.js';
import type { TimerHandle } from '../clock.js';
import type { EnrpContext } from './context.js';
import type { Peer } from './peer-table.js';
import { ownerIdentityBytes } from './pe.js';

const HEADER_BYTES = 12;
/** A PE Owner Identity parameter (rserpool's extension, after its PE). */
const OWNER_BYTES = 4 + OWNER_IDENTITY_BYTES;

interface ServeSession {
  ownOnly: boolean;
  entries: PoolElementEntry[];
  pos: number;
  lastUsed: number;
}

/** Serves handle table requests; remembers where each requester's paging stands. */
export class HandleTableServer {
  readonly #ctx: EnrpContext;
  readonly #sessions = new Map<number, ServeSession>();

  constructor(ctx: EnrpContext) {
    this.#ctx = ctx;
  }

  handleRequest(peer: Peer, m: EnrpHandleTableRequest): void {
    const ctx = this.#ctx;
    const ownOnly = ((m.flags ?? 0) & EnrpFlags.OwnChildrenOnly) !== 0;
    const now = ctx.clock.now();
    let s = this.#sessions.get(peer.id);
    // A follow-up request continues a session; a different kind or a long pause starts over.
    if (s === undefined || s.ownOnly !== ownOnly || now - s.lastUsed > ctx.timers.maxTimeNoResponseMs) {
      s = { ownOnly, entries: this.#collect(ownOnly), pos: 0, lastUsed: now };
      this.#sessions.set(peer.id, s);
    }
    s.lastUsed = now;
    const pools = this.#page(s);
    const more = s.pos < s.entries.length;
    if (!more) this.#sessions.delete(peer.id);
    const res: EnrpHandleTableResponse = {
      type: EnrpMessageType.HandleTableResponse,
      senderServerId: ctx.id,
      receiverServerId: peer.id,
      pools,
      ...(more ? { flags: EnrpFlags.MoreToSend } : {}),
    };
    ctx.send(peer, res);
  }

  forget(peerId: number): void {
    this.#sessions.delete(peerId);
  }

  #collect(ownOnly: boolean): PoolElementEntry[] {
    const hs = this.#ctx.hs;
    let all: PoolElementEntry[];
    if (ownOnly) all = hs.owned(this.#ctx.id);
    else {
      all = [];
      for (const o of hs.owners()) for (const e of hs.owned(o)) all.push(e);
    }
    // Grouped by pool, so each page names a handle once per run of its PEs.
    return all.sort((a, b) => (a.poolKey < b.poolKey ? -1 : a.poolKey > b.poolKey ? 1 : 0));
  }

  #page(s: ServeSession): EnrpPoolEntry[] {
    const ctx = this.#ctx;
    const pools: EnrpPoolEntry[] = [];
    let size = HEADER_BYTES;
    let count = 0;
    let current: EnrpPoolEntry | undefined;
    let currentKey: string | undefined;
    while (s.pos < s.entries.length) {
      const e = s.entries[s.pos]!;
      // Skip what changed hands or left since the session began (its delete already went out).
      if (ctx.hs.get(e.poolKey, e.identifier) !== e || (s.ownOnly && e.homeRegistrarId !== ctx.id)) {
        s.pos++;
        continue;
      }
      const pe = toParameter(e);
      const owner = ownerIdentityBytes(e);
      const peBytes = poolElementSize(pe) + (owner ? OWNER_BYTES : 0);
      const add = peBytes + (e.poolKey === currentKey ? 0 : bytesParameterSize(e.handle));
      if (HEADER_BYTES + bytesParameterSize(e.handle) + peBytes > ctx.maxMessageBytes) {
        // No page can carry it (admission keeps such PEs out): skipped, so it cannot stall the sync.
        ctx.log.error({ identifier: e.identifier }, 'PE too large for a handle table page: skipped');
        s.pos++;
        continue;
      }
      if (count > 0 && (size + add > ctx.maxMessageBytes || count >= ctx.maxPageElements)) break;
      if (e.poolKey !== currentKey || current === undefined) {
        current = { handle: e.handle, elements: [] };
        currentKey = e.poolKey;
        pools.push(current);
      }
      current.elements.push(pe);
      if (owner) {
        const owners = (current.owners ??= []);
        while (owners.length < current.elements.length - 1) owners.push(undefined);
        owners.push(owner);
      }
      size += add;
      count++;
      s.pos++;
    }
    return pools;
  }
}

type PullPurpose = 'mentor' | 'audit';

export interface Pull {
  readonly peerId: number;
  readonly purpose: PullPurpose;
  /** PEs the peer confirmed (audit: everything it owns that we must keep). */
  readonly seen: Set<string>;
  added: number;
  removed: number;
  /** Entries we refused (limits, caps): our copy cannot match the peer's. */
  rejected: number;
  pages: number;
  timer: TimerHandle | undefined;
}

interface PullHandlers {
  /** Applies one page; the pull's bookkeeping is updated by the handler. */
  page(pull: Pull, res: EnrpHandleTableResponse): void;
  /** The last page arrived (ok), or the peer rejected / went silent (not ok). */
  done(pull: Pull, ok: boolean): void;
}

/** Pulls peers' handle tables, one pull per peer at a time. */
export class HandleTableClient {
  readonly #ctx: EnrpContext;
  readonly #handlers: PullHandlers;
  readonly #pulls = new Map<number, Pull>();

  constructor(ctx: EnrpContext, handlers: PullHandlers) {
    this.#ctx = ctx;
    this.#handlers = handlers;
  }

  has(peerId: number): boolean {
    return this.#pulls.has(peerId);
  }

  /** Some pull runs: our copy of that peer's PEs is being repaired. */
  get busy(): boolean {
    return this.#pulls.size > 0;
  }

  get(peerId: number): Pull | undefined {
    return this.#pulls.get(peerId);
  }

  start(peer: Peer, purpose: PullPurpose): boolean {
    if (this.#pulls.has(peer.id)) return false;
    const pull: Pull = { peerId: peer.id, purpose, seen: new Set(), added: 0, removed: 0, rejected: 0, pages: 0, timer: undefined };
    this.#pulls.set(peer.id, pull);
    if (!this.#request(peer, pull)) {
      this.#finish(pull, false);
      return false;
    }
    return true;
  }

  handleResponse(peer: Peer, res: EnrpHandleTableResponse): void {
    const pull = this.#pulls.get(peer.id);
    if (pull === undefined) {
      this.#ctx.log.debug({ peerId: peer.id }, 'unsolicited handle table response ignored');
      return;
    }
    const flags = res.flags ?? 0;
    if (flags & EnrpFlags.Reject) {
      this.#finish(pull, false);
      return;
    }
    pull.pages++;
    this.#handlers.page(pull, res);
    if (flags & EnrpFlags.MoreToSend) {
      if (!this.#request(peer, pull)) this.#finish(pull, false);
    } else this.#finish(pull, true);
  }

  cancel(peerId: number): void {
    const pull = this.#pulls.get(peerId);
    if (pull !== undefined) this.#finish(pull, false);
  }

  cancelAll(): void {
    for (const p of [...this.#pulls.values()]) {
      if (p.timer !== undefined) this.#ctx.clock.clearTimeout(p.timer);
      this.#pulls.delete(p.peerId);
    }
  }

  #request(peer: Peer, pull: Pull): boolean {
    const ctx = this.#ctx;
    if (pull.timer !== undefined) ctx.clock.clearTimeout(pull.timer);
    pull.timer = ctx.clock.setTimeout(() => {
      pull.timer = undefined;
      ctx.log.warn({ peerId: pull.peerId, purpose: pull.purpose }, 'handle table request unanswered');
      this.#finish(pull, false);
    }, ctx.timers.maxTimeNoResponseMs);
    const req: EnrpHandleTableRequest = {
      type: EnrpMessageType.HandleTableRequest,
      senderServerId: ctx.id,
      receiverServerId: peer.id,
      ...(pull.purpose === 'audit' ? { flags: EnrpFlags.OwnChildrenOnly } : {}),
    };
    return ctx.send(peer, req);
  }

  #finish(pull: Pull, ok: boolean): void {
    if (this.#pulls.get(pull.peerId) !== pull) return;
    this.#pulls.delete(pull.peerId);
    if (pull.timer !== undefined) this.#ctx.clock.clearTimeout(pull.timer);
    pull.timer = undefined;
    this.#handlers.done(pull, ok);
  }
}
