/**
 * Handle updates: every change to a PE we own goes to all peers; a peer's
 * update is applied only for PEs the sender owns. Our own writes of a peer's
 * PEs carry the peer as owner, so they never echo back out.
 */
import { encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpMessageType, HandleUpdateAction, type EnrpHandleUpdate } from '../../protocols/enrp/types.js';
import { ErrorCause } from '../../protocols/parameters/types.js';
import { toParameter, type PoolElementEntry, type RemoveReason } from '../handlespace/index.js';
import type { EnrpContext } from './context.js';
import { EnrpNotOwnerError, EnrpRejectedEntryError } from './errors.js';
import type { Link } from './peer-table.js';
import { ownerIdentityBytes, ownerOption, peKey } from './pe.js';

/** Byte offset of the Receiving Server's ID in an ENRP message (after the 4-byte header and the sender's id). */
const RECEIVER_ID_OFFSET = 8;
/** Bounds the re-announcement bookkeeping a hostile peer could grow. */
const MAX_REASSERTED = 4_096;

export class UpdateFanout {
  readonly #ctx: EnrpContext;
  /** PEs we hold only because we took over their dead home; a re-registration with us makes them ours for real. */
  readonly takenOver = new Set<string>();
  /** When we last re-announced each PE a peer claimed while we hold it. */
  readonly #reasserted = new Map<string, number>();
  /** Called with each update applied from a peer (audit bookkeeping). */
  onApplied: ((peerId: number, key: string) => void) | undefined;
  readonly #onAdded = (e: PoolElementEntry): void => this.#changed(e, HandleUpdateAction.AddOrUpdate);
  readonly #onUpdated = (e: PoolElementEntry): void => this.#changed(e, HandleUpdateAction.AddOrUpdate);
  readonly #onRemoved = (e: PoolElementEntry, _r: RemoveReason): void => {
    this.takenOver.delete(peKey(e.poolKey, e.identifier));
    if (e.homeRegistrarId === this.#ctx.id) this.#fanout(e, HandleUpdateAction.Delete);
  };

  constructor(ctx: EnrpContext) {
    this.#ctx = ctx;
  }

  attach(): void {
    const ev = this.#ctx.hs.events;
    ev.on('added', this.#onAdded);
    ev.on('updated', this.#onUpdated);
    ev.on('removed', this.#onRemoved);
  }

  detach(): void {
    const ev = this.#ctx.hs.events;
    ev.off('added', this.#onAdded);
    ev.off('updated', this.#onUpdated);
    ev.off('removed', this.#onRemoved);
  }

  #changed(e: PoolElementEntry, action: HandleUpdateAction): void {
    if (e.homeRegistrarId !== this.#ctx.id) return;
    this.takenOver.delete(peKey(e.poolKey, e.identifier));
    this.#fanout(e, action);
  }

  #fanout(e: PoolElementEntry, action: HandleUpdateAction): void {
    const ctx = this.#ctx;
    const peers = ctx.peers.active();
    if (peers.length === 0) return;
    const msg: EnrpHandleUpdate = {
      type: EnrpMessageType.HandleUpdate,
      senderServerId: ctx.id,
      receiverServerId: 0,
      action,
      handle: e.handle,
      element: toParameter(e),
    };
    const owner = action === HandleUpdateAction.AddOrUpdate ? ownerIdentityBytes(e) : undefined;
    if (owner) msg.ownerIdentity = owner;
    // One encoding for all peers; each copy then names its receiver (RFC 5353 2.1 keeps 0 for no particular server).
    let bytes: Uint8Array;
    try {
      bytes = encodeEnrpMessage(msg);
    } catch (err) {
      // We are inside a handlespace event: a throw here would escape into whoever registered the PE.
      ctx.log.error({ identifier: e.identifier, err }, 'HANDLE_UPDATE not encodable: not sent');
      return;
    }
    for (const p of peers) {
      // A copy per peer: a queued send keeps a reference to its buffer.
      const copy = bytes.slice();
      new DataView(copy.buffer, copy.byteOffset, copy.byteLength).setUint32(RECEIVER_ID_OFFSET, p.id);
      if (ctx.sendBytes(p, copy)) {
        ctx.counters.updatesSent++;
        ctx.counters.updateBytesSent += copy.length;
      }
    }
  }

  /**
   * The sender's claim may have reached other peers (a registrar resumed after a pause answers a
   * registration the PE gave up on; its later keep-alive timeout would delete the PE there): our
   * update puts the PE back with its live home everywhere. Once per heartbeat cycle per PE, so two
   * registrars that both think they hold it cannot loop.
   */
  #reassert(e: PoolElementEntry): void {
    const ctx = this.#ctx;
    const key = peKey(e.poolKey, e.identifier);
    const now = ctx.clock.now();
    const last = this.#reasserted.get(key);
    if (last !== undefined && now - last < ctx.timers.peerHeartbeatCycleMs) return;
    if (this.#reasserted.size >= MAX_REASSERTED) {
      for (const [k, at] of this.#reasserted) if (now - at >= ctx.timers.peerHeartbeatCycleMs) this.#reasserted.delete(k);
      if (this.#reasserted.size >= MAX_REASSERTED) return;
    }
    this.#reasserted.set(key, now);
    this.#fanout(e, HandleUpdateAction.AddOrUpdate);
  }

  /** A peer's handle update. */
  apply(link: Link, sender: number, m: EnrpHandleUpdate, raw: Uint8Array): void {
    const ctx = this.#ctx;
    const pe = m.element;
    const refuse = (why: string): void =>
      ctx.refuse(sender, new EnrpNotOwnerError(`handle update from $${sender.toString(16)} for PE $${pe.identifier.toString(16)}: ${why}`), {
        link,
        cause: ErrorCause.RejectionDueToSecurityConsiderations,
        offending: raw,
      });
    const existing = ctx.hs.get(m.handle, pe.identifier);
    if (m.action === HandleUpdateAction.Delete) {
      if (existing === undefined) return;
      if (existing.homeRegistrarId !== sender) {
        refuse(`it is owned by $${existing.homeRegistrarId.toString(16)}`);
        return;
      }
      ctx.hs.deregister(m.handle, pe.identifier);
      this.onApplied?.(sender, peKey(existing.poolKey, existing.identifier));
      return;
    }
    if (pe.homeRegistrarId !== sender) {
      refuse(`its home is $${pe.homeRegistrarId.toString(16)}, not the sender`);
      return;
    }
    // RFC 5355: a peer cannot take a PE away while it is registered here over a live association.
    if (existing !== undefined && existing.homeRegistrarId === ctx.id && ctx.holds(m.handle, pe.identifier)) {
      refuse('it is registered here over a live ASAP association');
      this.#reassert(existing);
      return;
    }
    const admitted = ctx.admit(m.handle, pe);
    // A PE that re-registered with the sender moves there (RSPLIB does the same).
    const r = admitted.ok ? ctx.hs.register(m.handle, admitted.pe, { ownerId: sender, ...ownerOption(m.ownerIdentity) }) : admitted;
    if (!r.ok) {
      ctx.refuse(sender, new EnrpRejectedEntryError(`handle update for PE $${pe.identifier.toString(16)}: ${r.reason}`), {
        link,
        cause: r.cause,
        offending: raw,
      });
      return;
    }
    this.onApplied?.(sender, peKey(r.entry.poolKey, r.entry.identifier));
  }
}
