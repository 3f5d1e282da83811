/**
 * Joining: the first configured peer that answers on its configured URL
 * becomes our mentor; we ask it for its peer list and download its whole
 * handlespace, page by page. We are synchronised after the last page, or
 * when no configured peer answers in time (audits then fill in the rest).
 */
import { EnrpMessageType, type EnrpHandleTableResponse } from '../../protocols/enrp/types.js';
import type { TimerHandle } from '../clock.js';
import type { EnrpContext } from './context.js';
import type { Peer } from './peer-table.js';
import type { HandleTableClient, Pull } from './sync.js';
import { ownerOption } from './pe.js';

export class Mentor {
  readonly #ctx: EnrpContext;
  readonly #client: HandleTableClient;
  readonly #onSynchronised: () => void;
  #mentorId: number | undefined;
  /** Configured peers that proved their id: the only ones that may mentor us. */
  readonly #candidates = new Set<number>();
  #synchronised = false;
  #timer: TimerHandle | undefined;

  constructor(ctx: EnrpContext, client: HandleTableClient, onSynchronised: () => void) {
    this.#ctx = ctx;
    this.#client = client;
    this.#onSynchronised = onSynchronised;
  }

  get synchronised(): boolean {
    return this.#synchronised;
  }

  get mentorId(): number | undefined {
    return this.#mentorId;
  }

  start(): void {
    this.#arm();
  }

  stop(): void {
    if (this.#timer !== undefined) this.#ctx.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    const ctx = this.#ctx;
    if (this.#timer !== undefined) ctx.clock.clearTimeout(this.#timer);
    this.#timer = ctx.clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#synchronised || this.#mentorId !== undefined) return;
      ctx.log.info({}, 'no mentor answered: starting with our own handlespace');
      this.#finish();
    }, ctx.timers.mentorDiscoveryMs);
  }

  /** A configured peer answered on its configured URL: the first one mentors us. */
  peerUp(peer: Peer): void {
    if (this.#synchronised) return;
    this.#candidates.add(peer.id);
    if (this.#mentorId !== undefined) return;
    const ctx = this.#ctx;
    this.#mentorId = peer.id;
    ctx.log.info({ mentorId: peer.id }, 'synchronising from mentor');
    ctx.send(peer, { type: EnrpMessageType.ListRequest, senderServerId: ctx.id, receiverServerId: peer.id });
    if (!this.#client.start(peer, 'mentor')) this.#mentorId = undefined;
  }

  page(pull: Pull, res: EnrpHandleTableResponse): void {
    const ctx = this.#ctx;
    let rejected = 0;
    let reason: string | undefined;
    for (const pool of res.pools) {
      for (const [i, pe] of pool.elements.entries()) {
        const home = pe.homeRegistrarId;
        // Our own PEs from a previous life are gone; their owners' audits will drop them.
        if (home === ctx.id || home === 0) continue;
        const admitted = ctx.admit(pool.handle, pe);
        const r = admitted.ok ? ctx.hs.register(pool.handle, admitted.pe, { ownerId: home, ...ownerOption(pool.owners?.[i]) }) : admitted;
        if (r.ok) pull.added++;
        else {
          rejected++;
          reason ??= r.reason;
        }
      }
    }
    // One line per page: a hostile or oversized table must not flood the log.
    if (rejected > 0) ctx.log.warn({ mentorId: pull.peerId, rejected, reason }, 'mentor entries rejected');
  }

  done(pull: Pull, ok: boolean): void {
    if (this.#mentorId !== pull.peerId) return;
    if (ok) {
      this.#ctx.log.info({ mentorId: pull.peerId, pes: pull.added, pages: pull.pages }, 'handlespace synchronised');
      this.#finish();
      return;
    }
    // Mentor failed: try another peer, or fall back on the discovery timer.
    this.#mentorId = undefined;
    const next = this.#ctx.peers.active().find((p) => p.id !== pull.peerId && this.#candidates.has(p.id));
    if (next) this.peerUp(next);
    else this.#arm();
  }

  peerGone(peerId: number): void {
    if (this.#mentorId === peerId && !this.#synchronised) this.#client.cancel(peerId);
  }

  #finish(): void {
    this.stop();
    this.#candidates.clear();
    if (this.#synchronised) return;
    this.#synchronised = true;
    this.#onSynchronised();
  }
}
