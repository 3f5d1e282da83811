/**
 * Audit (RFC 5353 section 3.9): a peer's presence carries the checksum of the
 * PEs it owns; when ours for it differs, we pull its own PEs (W bit) and
 * repair our copy: missing ones are added, ones it no longer owns removed.
 */
import type { EnrpHandleTableResponse } from '../../protocols/enrp/types.js';
import type { EnrpContext } from './context.js';
import { EnrpNotOwnerError } from './errors.js';
import type { Peer } from './peer-table.js';
import { ownerIdentityBytes, ownerOption, peKey } from './pe.js';
import { toParameter, type PoolElementEntry } from '../handlespace/index.js';
import type { HandleTableClient, Pull } from './sync.js';

export class Auditor {
  readonly #ctx: EnrpContext;
  readonly #client: HandleTableClient;
  readonly #takenOver: Set<string>;
  /** The checksum each running audit set out to match. */
  readonly #auditing = new Map<number, number>();
  /**
   * Per peer, a checksum an audit could not reach because we refused some of
   * its PEs: auditing again at the same checksum would pull the same table
   * at every presence and end the same way.
   */
  readonly #unreachable = new Map<number, number>();

  readonly #takenOverBy: (target: number) => number | undefined;
  readonly #movedFrom: (key: string, by: number) => number | undefined;

  constructor(
    ctx: EnrpContext,
    client: HandleTableClient,
    takenOver: Set<string>,
    takenOverBy: (target: number) => number | undefined,
    movedFrom: (key: string, by: number) => number | undefined,
  ) {
    this.#ctx = ctx;
    this.#client = client;
    this.#takenOver = takenOver;
    this.#takenOverBy = takenOverBy;
    this.#movedFrom = movedFrom;
  }

  /** A presence arrived with the peer's own checksum. */
  check(peer: Peer, checksum: number): void {
    const ctx = this.#ctx;
    if (!ctx.synchronised || this.#client.has(peer.id)) return;
    const ours = ctx.hs.checksum(peer.id);
    if (ours === checksum && !peer.auditDue) {
      this.#unreachable.delete(peer.id);
      return;
    }
    if (!peer.auditDue && this.#unreachable.get(peer.id) === checksum) return;
    peer.auditDue = false;
    ctx.log.info(
      { peerId: peer.id, theirs: checksum, ours },
      ours === checksum ? 'updates may have been missed: auditing peer' : 'checksum mismatch: auditing peer',
    );
    ctx.counters.audits++;
    this.#auditing.set(peer.id, checksum);
    this.#client.start(peer, 'audit');
  }

  /** An update from the peer while its audit runs: the purge must keep what it announced. */
  noteApplied(peerId: number, key: string): void {
    const pull = this.#client.get(peerId);
    if (pull?.purpose === 'audit') pull.seen.add(key);
  }

  page(pull: Pull, res: EnrpHandleTableResponse): void {
    const ctx = this.#ctx;
    const sender = pull.peerId;
    for (const pool of res.pools) {
      for (const [i, pe] of pool.elements.entries()) {
        if (pe.homeRegistrarId !== sender) {
          ctx.refuse(
            sender,
            new EnrpNotOwnerError(`audit of $${sender.toString(16)} returned PE $${pe.identifier.toString(16)} homed at $${pe.homeRegistrarId.toString(16)}`),
          );
          continue;
        }
        const existing = ctx.hs.get(pool.handle, pe.identifier);
        const key = existing ? peKey(existing.poolKey, existing.identifier) : undefined;
        const other = existing?.homeRegistrarId;
        if (other !== undefined && other !== sender && other !== ctx.id && ctx.isLive(other)) {
          // An audit repairs the sender's own PEs, it does not arbitrate against another live home: the
          // sender may be resumed after a takeover and claim PEs that re-registered with its taker. A PE
          // that really moved to the sender comes as its handle update, or once the other home lets go.
          continue;
        }
        if (other !== undefined && other !== sender && other !== ctx.id && this.#takenOverBy(sender) === other) {
          // Nor against the registrar that took the sender over, live or not: the sender's claim dates
          // from before its pause, and its keep-alive would fail and delete the PE cluster-wide.
          continue;
        }
        if (existing !== undefined && existing.homeRegistrarId === ctx.id) {
          // The live home wins: we keep our own PE while its association with us is live. One we only
          // hold by a takeover goes back; so does one we no longer hold (we were paused, taken over,
          // and it re-registered with the peer): the peer is its home now.
          // Not to a sender a peer took over: it claims what it owned before its pause, and we hold the
          // PE from that taker (whose own claim the sender's is not).
          if (this.#takenOverBy(sender) !== undefined) continue;
          if (this.#takenOver.has(key!)) this.#takenOver.delete(key!);
          else if (ctx.holds(pool.handle, pe.identifier)) continue;
          else ctx.log.info({ peerId: sender, identifier: pe.identifier }, 'a PE we owned but no longer hold is homed at a peer: it moves there');
        }
        const admitted = ctx.admit(pool.handle, pe);
        const r = admitted.ok ? ctx.hs.register(pool.handle, admitted.pe, { ownerId: sender, ...ownerOption(pool.owners?.[i]) }) : admitted;
        if (!r.ok) {
          if (pull.rejected++ === 0) ctx.log.warn({ peerId: sender, identifier: pe.identifier, reason: r.reason }, 'audit entry rejected');
          continue;
        }
        if (existing === undefined || existing.homeRegistrarId !== sender) pull.added++;
        pull.seen.add(peKey(r.entry.poolKey, r.entry.identifier));
      }
    }
  }

  done(pull: Pull, ok: boolean): void {
    const ctx = this.#ctx;
    const theirs = this.#auditing.get(pull.peerId);
    this.#auditing.delete(pull.peerId);
    if (!ok) {
      const peer = ctx.peers.get(pull.peerId);
      if (peer !== undefined) peer.auditDue = true;
      return;
    }
    if (pull.rejected > 0 && theirs !== undefined) this.#unreachable.set(pull.peerId, theirs);
    else this.#unreachable.delete(pull.peerId);
    const adopted = new Map<number, PoolElementEntry[]>();
    for (const e of ctx.hs.owned(pull.peerId)) {
      const key = peKey(e.poolKey, e.identifier);
      if (pull.seen.has(key)) continue;
      // Moved to the peer by its takeover of a registrar still silent, yet unknown to it: no one
      // supervises the PE, and deleting it lists it nowhere. It becomes ours; our H-bit keep-alive
      // brings it here, or its timeout removes it.
      const from = this.#movedFrom(key, pull.peerId);
      if (from !== undefined && from !== ctx.id && !ctx.isLive(from)) {
        const r = ctx.hs.register(e.handle, { ...toParameter(e), homeRegistrarId: ctx.id }, { ownerId: ctx.id, ...ownerOption(ownerIdentityBytes(e)) });
        if (r.ok) {
          this.#takenOver.add(key);
          const list = adopted.get(from);
          if (list) list.push(r.entry);
          else adopted.set(from, [r.entry]);
          continue;
        }
      }
      ctx.hs.deregister(e.handle, e.identifier);
      pull.removed++;
    }
    const repair = { peerId: pull.peerId, added: pull.added, removed: pull.removed };
    ctx.log.info({ ...repair, rejected: pull.rejected }, 'audit finished');
    if (repair.added > 0 || repair.removed > 0) ctx.emitter.emit('audit-repair', repair);
    for (const [from, entries] of adopted) {
      ctx.log.warn({ peerId: pull.peerId, from, pes: entries.length }, 'PEs of a silent registrar its taker does not know: taking them over');
      ctx.emitter.emit('takeover', from, entries);
    }
  }
}
