import type { Events } from '../events.js';
import type { Clock } from '../clock.js';
import type { ErrorCause, MemberSelectionPolicy, PoolElementParameter, TransportAddress, TransportProtocol } from '../../protocols/parameters/types.js';

/**
 * A pool handle: its wire bytes, or the same bytes as a latin1 string
 * (`poolHandleKey()`); for an ASCII handle such as "tftp" both are the same.
 */
export type PoolHandleLike = Uint8Array | string;

/** One PE as the handlespace holds it. Read-only: change it by registering again. */
export interface PoolElementEntry {
  readonly handle: Uint8Array;
  /** latin1 string of the handle bytes. */
  readonly poolKey: string;
  readonly identifier: number;
  /** The registrar that is home for this PE (owns it for ENRP audit). */
  readonly homeRegistrarId: number;
  /** Milliseconds; 0xffffffff = never expires. */
  readonly registrationLife: number;
  /** Clock time at which it expires (Infinity for an infinite life). */
  readonly expiresAt: number;
  readonly userTransport: TransportAddress;
  readonly asapTransport: TransportAddress | undefined;
  readonly policy: MemberSelectionPolicy;
  /** Load added by selections since the last (re-)registration (degradation policies). */
  readonly degradation: number;
  /** Clock time of the last registration or re-registration. */
  readonly updatedAt: number;
  /** Hex SHA-256 of the identity that registered it (see ownerIdentityOf), or undefined for none known. */
  readonly ownerIdentity: string | undefined;
}

export interface RegisterOptions {
  /** The home registrar; defaults to pe.homeRegistrarId. */
  ownerId?: number;
  /** Hex SHA-256 of the identity that registered the PE; absent: none known (replaces what the entry had). */
  ownerIdentity?: string;
}

/**
 * register() never throws on a refused registration: RFC 5352 answers it with
 * an error cause, so the result carries the cause to put in the reply.
 */
export type RegisterResult = { ok: true; entry: PoolElementEntry; created: boolean } | { ok: false; cause: ErrorCause; reason: string };

export interface ResolveOptions {
  /** How many distinct PEs to return at most (default 3, capped at 128). */
  items?: number;
  /** Consistent hashing: the PU's sticky key; without it a random point on the ring is used. */
  clientKey?: string | Uint8Array;
  /**
   * DPF policies: the distance of each PE from the asking PU. Given here, it
   * costs a scan of the pool (O(n)); without it the distance stored per PE
   * (init.distanceOf at registration, else policy.distance) is used in O(log n).
   */
  distanceOf?: (pe: PoolElementEntry) => number;
  /**
   * How many of the returned PEs count as used (advance round robin, add
   * degradation): RSPLIB's handle resolution option; default 1 for the
   * ordered policies, all returned PEs for the random ones.
   */
  maxIncrement?: number;
}

export type RemoveReason = 'deregistered' | 'expired';

export interface HandlespaceEvents {
  added: [entry: PoolElementEntry];
  updated: [entry: PoolElementEntry];
  removed: [entry: PoolElementEntry, reason: RemoveReason];
  /** Every PE owned by `from` now belongs to `to` (ENRP takeover). */
  takeover: [from: number, to: number, entries: readonly PoolElementEntry[]];
}

export interface PoolInfo {
  readonly handle: Uint8Array;
  readonly poolKey: string;
  readonly policyType: number;
  readonly protocol: TransportProtocol;
  readonly size: number;
}

export interface HandlespaceInit {
  clock?: Clock;
  /** Uniform in [0, 1); pass a seeded one (createSeededRandom) for reproducible tests. */
  random?: () => number;
  /** Remove expired PEs from a clock timer on their own (default true); expire() works either way. */
  autoExpire?: boolean;
  /** DPF policies: a PE's distance, taken at each (re-)registration; default policy.distance. */
  distanceOf?: (pe: PoolElementEntry) => number;
  /** Consistent hashing: ring points per PE per unit of weight (default 32; weight counts up to 16). */
  virtualNodes?: number;
  /** At most this many pools; a PE that would open another is refused with Lack of Resources. Default 100,000. */
  maxPools?: number;
  /** At most this many consistent-hash ring points in all pools (refused likewise). Default 4,194,304. */
  maxRingPoints?: number;
}

export interface Handlespace {
  readonly events: Events<HandlespaceEvents>;
  readonly clock: Clock;
  /** PEs in all pools. */
  readonly size: number;
  readonly poolCount: number;

  /** Adds a PE or updates it (re-registration: transports, policy values, life, owner may change). */
  register(handle: PoolHandleLike, pe: PoolElementParameter, options?: RegisterOptions): RegisterResult;
  /** Removes a PE; returns it, or undefined if it was not there. */
  deregister(handle: PoolHandleLike, identifier: number): PoolElementEntry | undefined;
  get(handle: PoolHandleLike, identifier: number): PoolElementEntry | undefined;
  has(handle: PoolHandleLike, identifier: number): boolean;

  pool(handle: PoolHandleLike): PoolInfo | undefined;
  pools(): IterableIterator<PoolInfo>;
  /** A copy of the pool's PEs, in no particular order. */
  poolElements(handle: PoolHandleLike): PoolElementEntry[];

  /** Up to `items` distinct PEs chosen by the pool's policy; empty for an unknown handle. */
  resolve(handle: PoolHandleLike, options?: ResolveOptions): PoolElementEntry[];

  /** ENRP audit: RFC 5353 PE checksum over every PE `ownerId` is home for. */
  checksum(ownerId: number): number;
  /** PEs owned by a registrar (a copy). */
  owned(ownerId: number): PoolElementEntry[];
  ownedCount(ownerId: number): number;
  owners(): number[];
  /** Moves every PE of `fromOwnerId` to `toOwnerId` at once; returns how many moved. */
  takeover(fromOwnerId: number, toOwnerId: number): number;

  /** Removes and returns every PE whose life ran out by `now` (default clock.now()), earliest first. */
  expire(now?: number): PoolElementEntry[];
  /** When the next PE expires (Infinity if none). */
  nextExpiry(): number;

  snapshot(): Uint8Array;
  /** Stops the expiry timer. */
  close(): void;
  [Symbol.dispose](): void;
}
