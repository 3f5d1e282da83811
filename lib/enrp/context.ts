/** What the ENRP pieces share; the server implements it. */
import type { EventEmitter } from 'eventemitter3';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { RSerPoolError } from '../errors.js';
import type { Handlespace } from '../handlespace/index.js';
import type { PoolElementCheck } from '../handlespace/limits.js';
import type { EnrpMessage } from '../../protocols/enrp/types.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';
import type { Link, Peer, PeerTable } from './peer-table.js';
import type { EnrpCounters, EnrpServerEvents, EnrpTimers } from './types.js';

export interface EnrpContext {
  readonly id: number;
  readonly hs: Handlespace;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timers: EnrpTimers;
  readonly peers: PeerTable;
  readonly counters: EnrpCounters;
  readonly emitter: EventEmitter<EnrpServerEvents>;
  readonly maxMessageBytes: number;
  readonly maxPageElements: number;
  readonly synchronised: boolean;
  /**
   * Whether a PE a peer sent (handle update, mentor or audit page) may enter
   * our handlespace: the PE limits (its life clamped as for ASAP) and the cap
   * on PEs learned from peers. Pools and ring points are capped by the handlespace.
   */
  admit(handle: Uint8Array, pe: PoolElementParameter): PoolElementCheck;
  /** Encodes and sends on the peer's connection; false if it has none or it cannot be encoded or sent. */
  send(peer: Peer, msg: EnrpMessage): boolean;
  sendBytes(peer: Peer, bytes: Uint8Array): boolean;
  sendOn(link: Link, msg: EnrpMessage): boolean;
  /** A presence from us, with our owner checksum and server information. */
  presence(receiverId: number, replyRequired: boolean): EnrpMessage;
  /** Whether the registrar still has a live ASAP association with a PE we own (see EnrpServerInit.holdsPoolElement). */
  holds(handle: Uint8Array, identifier: number): boolean;
  /** Heard from within MAX-TIME-LAST-HEARD. */
  isLive(peerId: number): boolean;
  /** Logs, counts and emits a refusal; replies ENRP_ERROR on the link when given one. */
  refuse(peerId: number | undefined, error: RSerPoolError, reply?: { link: Link; cause: number; offending: Uint8Array }): void;
  /** The peer is gone (taken over or silent): closes its connection, forgets it. */
  dropPeer(peer: Peer, reason: 'takeover' | 'taken-over-by-peer' | 'silent'): void;
}
