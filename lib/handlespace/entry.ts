/**
 * Internal records. Plain fields (not #private) because the policy modules of
 * this folder read and write them on the hot path; nothing outside
 * lib/handlespace sees these classes, only the PoolElementEntry interface.
 */
import type { MemberSelectionPolicy, TransportAddress, TransportProtocol } from '../../protocols/parameters/types.js';
import type { PoolElementEntry, PoolInfo } from './types.js';

export class PeEntry implements PoolElementEntry {
  pool: Pool;
  /** The identifier as a signed 32-bit integer: a small integer to V8, so no boxed number per PE. */
  id: number;
  homeRegistrarId: number;
  registrationLife: number;
  /** Expiry in whole clock ms, -1 for never: a small integer, so V8 stores it unboxed. */
  exp: number;
  userTransport: TransportAddress;
  asapTransport: TransportAddress | undefined;
  policy: MemberSelectionPolicy;
  degradation = 0;
  updatedAt: number;
  ownerIdentity: string | undefined = undefined;
  /** Distance used by DPF policies (ms or whatever unit the registrar measures). */
  distance = 0;
  /** Index in pool.members. */
  memberIdx = -1;
  /** Index in the owner's list. */
  ownerIdx = -1;
  /** Index in the expiry heap, -1 if it never expires. */
  heapIdx = -1;
  /** Index in the policy's own structure (heap slot, Fenwick slot). */
  selIdx = -1;
  /**
   * Ordered policies: sort keys (k1, k2) as the rules compute them, within
   * signed 32 bits (loads are stored minus 2^31). The selector copies them
   * into its own key array, next to the selection sequence number.
   */
  k1 = 0;
  k2 = 0;

  constructor(
    pool: Pool,
    identifier: number,
    homeRegistrarId: number,
    registrationLife: number,
    expiresAt: number /* already an exp value */,
    userTransport: TransportAddress,
    asapTransport: TransportAddress | undefined,
    policy: MemberSelectionPolicy,
    now: number,
  ) {
    this.pool = pool;
    this.id = identifier | 0;
    this.homeRegistrarId = homeRegistrarId;
    this.registrationLife = registrationLife;
    this.exp = expiresAt;
    this.userTransport = userTransport;
    this.asapTransport = asapTransport;
    this.policy = policy;
    this.updatedAt = Math.floor(now);
  }

  get expiresAt(): number {
    return this.exp < 0 ? Infinity : this.exp;
  }

  get identifier(): number {
    return this.id >>> 0;
  }

  get handle(): Uint8Array {
    return this.pool.handle;
  }

  get poolKey(): string {
    return this.pool.key;
  }
}

/** What every selection policy implements for one pool. */
export interface Selector {
  add(e: PeEntry): void;
  remove(e: PeEntry): void;
  /** The PE's policy values (or distance) changed by a re-registration. */
  update(e: PeEntry): void;
  /** Appends up to `items` distinct PEs to out. */
  select(items: number, ctx: SelectContext, out: PeEntry[]): void;
}

export interface SelectContext {
  random: () => number;
  maxIncrement: number | undefined;
  clientKey: string | Uint8Array | undefined;
  distanceOf: ((pe: PoolElementEntry) => number) | undefined;
}

export class Pool implements PoolInfo {
  readonly key: string;
  readonly handle: Uint8Array;
  readonly handleSum: number;
  readonly policyType: number;
  readonly protocol: TransportProtocol;
  readonly members: PeEntry[] = [];
  /** Keyed by the signed identifier (PeEntry.id). */
  readonly byId = new Map<number, PeEntry>();
  selector!: Selector;
  /** Selection sequence: ties among equal keys go to the least recently chosen (RFC 5356 round robin among equals). */
  seq = 0;

  constructor(key: string, handle: Uint8Array, handleSum: number, policyType: number, protocol: TransportProtocol) {
    this.key = key;
    this.handle = handle;
    this.handleSum = handleSum;
    this.policyType = policyType;
    this.protocol = protocol;
  }

  get poolKey(): string {
    return this.key;
  }

  get size(): number {
    return this.members.length;
  }
}
