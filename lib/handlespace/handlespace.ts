import type { Events } from '../events.js';
import { EventEmitter } from 'eventemitter3';
import { decode, encode } from 'cbor-x';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { RSerPoolError } from '../errors.js';
import { ErrorCause, PolicyType, type MemberSelectionPolicy, type PoolElementParameter, type TransportAddress } from '../../protocols/parameters/types.js';
import { finishChecksum, handleWordSum, peChecksumTerm } from './checksum.js';
import { PeEntry, Pool, type SelectContext } from './entry.js';
import { policySpec, type SelectorOptions } from './policies/index.js';
import { ringPointsOf } from './policies/consistent-hash.js';
import type {
  Handlespace,
  HandlespaceEvents,
  HandlespaceInit,
  PoolElementEntry,
  PoolHandleLike,
  PoolInfo,
  RegisterOptions,
  RegisterResult,
  RemoveReason,
  ResolveOptions,
} from './types.js';

export const INFINITE_LIFE = 0xffffffff;
export const MAX_RESOLVE_ITEMS = 128;
export const DEFAULT_MAX_POOLS = 100_000;
export const DEFAULT_MAX_RING_POINTS = 4_194_304;
const MAX_TIMER_MS = 0x7fffffff;
const MAX_INTERNED_IDENTITIES = 65_536;

/** A snapshot that cannot be restored. */
export class HandlespaceSnapshotError extends RSerPoolError {
  override readonly name = 'HandlespaceSnapshotError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_BAD_SNAPSHOT', message, options);
  }
}

/** The internal key of a pool: its handle bytes as a latin1 string. */
export function poolHandleKey(handle: PoolHandleLike): string {
  if (typeof handle === 'string') return handle;
  if (handle.length <= 64) return String.fromCharCode.apply(null, handle as unknown as number[]);
  return Buffer.from(handle.buffer, handle.byteOffset, handle.byteLength).toString('latin1');
}

function handleBytes(handle: PoolHandleLike): Uint8Array {
  return typeof handle === 'string' ? new Uint8Array(Buffer.from(handle, 'latin1')) : new Uint8Array(handle);
}

/** A small fast seeded PRNG (sfc32) returning [0, 1), for reproducible tests and benchmarks. */
export function createSeededRandom(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

class Owner {
  readonly entries: PeEntry[] = [];
  sum = 0;
}

/** Internal expiry: whole ms rounded up (never early), -1 for an infinite life. */
function expOf(now: number, life: number): number {
  return life === INFINITE_LIFE ? -1 : Math.ceil(now + life);
}

function u32(x: unknown): boolean {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

class HandlespaceImpl implements Handlespace {
  readonly #emitter = new EventEmitter<HandlespaceEvents>();
  /** Subscribe only: the handlespace alone emits. */
  readonly events: Events<HandlespaceEvents> = this.#emitter;
  readonly clock: Clock;
  readonly #random: () => number;
  readonly #autoExpire: boolean;
  readonly #distanceOf: ((pe: PoolElementEntry) => number) | undefined;
  readonly #selectorOptions: SelectorOptions;
  readonly #maxPools: number;
  readonly #maxRingPoints: number;
  #ringPoints = 0;
  readonly #pools = new Map<string, Pool>();
  readonly #owners = new Map<number, Owner>();
  readonly #identities = new Map<string, string>();
  /** Expiry min-heap on expiresAt; PEs with an infinite life are not in it. */
  readonly #heap: PeEntry[] = [];
  readonly #ctx: SelectContext;
  #size = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(init: HandlespaceInit) {
    this.clock = init.clock ?? systemClock;
    this.#random = init.random ?? Math.random;
    this.#autoExpire = init.autoExpire ?? true;
    this.#distanceOf = init.distanceOf;
    this.#selectorOptions = { virtualNodes: init.virtualNodes ?? 32 };
    this.#maxPools = init.maxPools ?? DEFAULT_MAX_POOLS;
    this.#maxRingPoints = init.maxRingPoints ?? DEFAULT_MAX_RING_POINTS;
    this.#ctx = { random: this.#random, maxIncrement: undefined, clientKey: undefined, distanceOf: undefined };
  }

  get size(): number {
    return this.#size;
  }

  get poolCount(): number {
    return this.#pools.size;
  }

  register(handle: PoolHandleLike, pe: PoolElementParameter, options?: RegisterOptions): RegisterResult {
    const invalid = this.#validate(pe);
    if (invalid !== undefined) return { ok: false, cause: ErrorCause.InvalidValues, reason: invalid };
    const key = poolHandleKey(handle);
    const now = this.clock.now();
    const ownerId = options?.ownerId ?? pe.homeRegistrarId;
    const expiresAt = expOf(now, pe.registrationLife);
    let pool = this.#pools.get(key);
    let rebuilt = false;
    if (pool !== undefined) {
      const existing = pool.byId.get(pe.identifier | 0);
      const samePolicy = pe.policy.type === pool.policyType;
      const sameTransport = pe.userTransport.protocol === pool.protocol;
      if (existing !== undefined && samePolicy && sameTransport) {
        const full = this.#ringFull(this.#ringPointsFor(pe.policy) - this.#ringPointsFor(existing.policy));
        if (full !== undefined) return full;
        existing.ownerIdentity = this.#intern(options?.ownerIdentity);
        this.#update(existing, pe, ownerId, expiresAt, now);
        return { ok: true, entry: existing, created: false };
      }
      if (existing === undefined || pool.members.length > 1) {
        if (!samePolicy) {
          return {
            ok: false,
            cause: ErrorCause.InconsistentPoolingPolicy,
            reason: `pool uses policy 0x${pool.policyType.toString(16)}, PE asked for 0x${pe.policy.type.toString(16)}`,
          };
        }
        if (!sameTransport) {
          return {
            ok: false,
            cause: ErrorCause.InconsistentTransportType,
            reason: `pool uses ${pool.protocol}, PE asked for ${pe.userTransport.protocol}`,
          };
        }
      } else {
        // the pool's only PE changes policy or transport: the pool is rebuilt around it
        const full = this.#ringFull(this.#ringPointsFor(pe.policy) - this.#ringPointsFor(existing.policy));
        if (full !== undefined) return full;
        this.#unlink(existing);
        pool = undefined;
        rebuilt = true;
      }
    }
    if (!rebuilt) {
      const full = this.#ringFull(this.#ringPointsFor(pe.policy));
      if (full !== undefined) return full;
    }
    if (pool === undefined) {
      if (this.#pools.size >= this.#maxPools) {
        return { ok: false, cause: ErrorCause.LackOfResources, reason: `at most ${this.#maxPools} pools` };
      }
      const bytes = handleBytes(handle);
      pool = new Pool(key, bytes, handleWordSum(bytes), pe.policy.type, pe.userTransport.protocol);
      pool.selector = policySpec(pe.policy.type)!.create(pool, this.#selectorOptions);
      this.#pools.set(key, pool);
    }
    const e = new PeEntry(pool, pe.identifier, ownerId, pe.registrationLife, expiresAt, pe.userTransport, pe.asapTransport, pe.policy, now);
    e.ownerIdentity = this.#intern(options?.ownerIdentity);
    e.distance = this.#distanceFor(e);
    this.#link(e);
    this.#emitter.emit('added', e);
    return { ok: true, entry: e, created: true };
  }

  deregister(handle: PoolHandleLike, identifier: number): PoolElementEntry | undefined {
    const e = this.#pools.get(poolHandleKey(handle))?.byId.get(identifier | 0);
    if (e === undefined) return undefined;
    this.#remove(e, 'deregistered');
    return e;
  }

  get(handle: PoolHandleLike, identifier: number): PoolElementEntry | undefined {
    return this.#pools.get(poolHandleKey(handle))?.byId.get(identifier | 0);
  }

  has(handle: PoolHandleLike, identifier: number): boolean {
    return this.#pools.get(poolHandleKey(handle))?.byId.has(identifier | 0) ?? false;
  }

  pool(handle: PoolHandleLike): PoolInfo | undefined {
    return this.#pools.get(poolHandleKey(handle));
  }

  pools(): IterableIterator<PoolInfo> {
    return this.#pools.values();
  }

  poolElements(handle: PoolHandleLike): PoolElementEntry[] {
    return this.#pools.get(poolHandleKey(handle))?.members.slice() ?? [];
  }

  resolve(handle: PoolHandleLike, options?: ResolveOptions): PoolElementEntry[] {
    const out: PeEntry[] = [];
    const pool = this.#pools.get(poolHandleKey(handle));
    if (pool === undefined) return out;
    let items = options?.items ?? 3;
    if (!(items > 0)) return out;
    if (items > MAX_RESOLVE_ITEMS) items = MAX_RESOLVE_ITEMS;
    const ctx = this.#ctx;
    ctx.maxIncrement = options?.maxIncrement;
    ctx.clientKey = options?.clientKey;
    ctx.distanceOf = options?.distanceOf;
    pool.selector.select(items, ctx, out);
    return out;
  }

  checksum(ownerId: number): number {
    return finishChecksum(this.#owners.get(ownerId)?.sum ?? 0);
  }

  owned(ownerId: number): PoolElementEntry[] {
    return this.#owners.get(ownerId)?.entries.slice() ?? [];
  }

  ownedCount(ownerId: number): number {
    return this.#owners.get(ownerId)?.entries.length ?? 0;
  }

  owners(): number[] {
    return [...this.#owners.keys()];
  }

  takeover(fromOwnerId: number, toOwnerId: number): number {
    const src = this.#owners.get(fromOwnerId);
    if (src === undefined || fromOwnerId === toOwnerId) return 0;
    let dst = this.#owners.get(toOwnerId);
    if (dst === undefined) {
      dst = new Owner();
      this.#owners.set(toOwnerId, dst);
    }
    const moved = src.entries;
    for (const e of moved) {
      e.homeRegistrarId = toOwnerId;
      e.ownerIdx = dst.entries.length;
      dst.entries.push(e);
    }
    dst.sum += src.sum;
    this.#owners.delete(fromOwnerId);
    this.#emitter.emit('takeover', fromOwnerId, toOwnerId, moved);
    return moved.length;
  }

  expire(now: number = this.clock.now()): PoolElementEntry[] {
    const due: PeEntry[] = [];
    const h = this.#heap;
    while (h.length > 0 && h[0]!.exp <= now) {
      const e = h[0]!;
      this.#remove(e, 'expired');
      due.push(e);
    }
    return due;
  }

  nextExpiry(): number {
    return this.#heap[0]?.exp ?? Infinity;
  }

  snapshot(): Uint8Array {
    const now = this.clock.now();
    const pools = [];
    for (const pool of this.#pools.values()) {
      pools.push({
        handle: pool.handle,
        policyType: pool.policyType,
        pes: pool.members.map((e) => ({
          id: e.identifier,
          owner: e.homeRegistrarId,
          life: e.registrationLife,
          remaining: e.expiresAt === Infinity ? null : e.expiresAt - now,
          user: e.userTransport,
          asap: e.asapTransport ?? null,
          policy: e.policy,
          degradation: e.degradation,
          distance: e.distance,
        })),
      });
    }
    return new Uint8Array(encode({ version: 1, pools }));
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Used by restoreHandlespace: puts a PE back with its remaining life and degradation. */
  restoreEntry(handle: Uint8Array, pe: PoolElementParameter, remaining: number | null, degradation: number, distance: number): void {
    const r = this.register(handle, pe);
    if (!r.ok) throw new HandlespaceSnapshotError(`PE ${pe.identifier}: ${r.reason}`);
    const e = r.entry as PeEntry;
    e.degradation = degradation;
    e.distance = distance;
    e.pool.selector.update(e);
    this.#setExpiry(e, remaining === null ? -1 : Math.ceil(this.clock.now() + remaining));
  }

  // --- internals ---------------------------------------------------------

  #validate(pe: PoolElementParameter): string | undefined {
    if (!u32(pe.identifier)) return 'PE identifier is not a 32-bit unsigned integer';
    if (!u32(pe.registrationLife)) return 'registration life is not a 32-bit unsigned integer';
    const spec = policySpec(pe.policy.type);
    if (spec === undefined) return `unknown policy type 0x${pe.policy.type.toString(16)}`;
    const values = pe.policy as unknown as Record<string, unknown>;
    for (const f of spec.fields) if (!u32(values[f])) return `policy value ${f} is missing or out of range`;
    return undefined;
  }

  #ringPointsFor(policy: MemberSelectionPolicy): number {
    return policy.type === PolicyType.ConsistentHash ? ringPointsOf(policy, this.#selectorOptions.virtualNodes) : 0;
  }

  /** The refusal when `more` ring points would pass the cap. */
  #ringFull(more: number): RegisterResult | undefined {
    if (more <= 0 || this.#ringPoints + more <= this.#maxRingPoints) return undefined;
    return { ok: false, cause: ErrorCause.LackOfResources, reason: `at most ${this.#maxRingPoints} consistent-hash ring points` };
  }

  /** One string per owner identity, not one per PE (a million PEs share a few identities); bounded. */
  #intern(id: string | undefined): string | undefined {
    if (id === undefined) return undefined;
    const known = this.#identities.get(id);
    if (known !== undefined) return known;
    if (this.#identities.size < MAX_INTERNED_IDENTITIES) this.#identities.set(id, id);
    return id;
  }

  #distanceFor(e: PeEntry): number {
    if (this.#distanceOf) return this.#distanceOf(e);
    return (e.policy as { distance?: number }).distance ?? 0;
  }

  #update(e: PeEntry, pe: PoolElementParameter, ownerId: number, expiresAt: number, now: number): void {
    this.#ringPoints += this.#ringPointsFor(pe.policy) - this.#ringPointsFor(e.policy);
    e.registrationLife = pe.registrationLife;
    e.userTransport = pe.userTransport;
    e.asapTransport = pe.asapTransport;
    e.policy = pe.policy;
    e.updatedAt = Math.floor(now);
    // a re-registration reports a fresh load: what selections added is void
    e.degradation = 0;
    e.distance = this.#distanceFor(e);
    if (ownerId !== e.homeRegistrarId) {
      this.#ownerRemove(e);
      e.homeRegistrarId = ownerId;
      this.#ownerAdd(e);
    }
    this.#setExpiry(e, expiresAt);
    e.pool.selector.update(e);
    this.#emitter.emit('updated', e);
  }

  #link(e: PeEntry): void {
    const pool = e.pool;
    e.memberIdx = pool.members.length;
    pool.members.push(e);
    pool.byId.set(e.id, e);
    pool.selector.add(e);
    this.#ringPoints += this.#ringPointsFor(e.policy);
    this.#ownerAdd(e);
    if (e.exp >= 0) this.#heapPush(e);
    this.#size++;
  }

  /** Takes a PE out of every index; drops its pool when it was the last. */
  #unlink(e: PeEntry): void {
    const pool = e.pool;
    pool.selector.remove(e);
    this.#ringPoints -= this.#ringPointsFor(e.policy);
    const m = pool.members;
    const last = m.pop()!;
    if (last !== e) {
      m[e.memberIdx] = last;
      last.memberIdx = e.memberIdx;
    }
    e.memberIdx = -1;
    pool.byId.delete(e.id);
    this.#ownerRemove(e);
    if (e.heapIdx >= 0) this.#heapRemove(e);
    this.#size--;
    if (m.length === 0) this.#pools.delete(pool.key);
  }

  #remove(e: PeEntry, reason: RemoveReason): void {
    this.#unlink(e);
    this.#emitter.emit('removed', e, reason);
  }

  #ownerAdd(e: PeEntry): void {
    let o = this.#owners.get(e.homeRegistrarId);
    if (o === undefined) {
      o = new Owner();
      this.#owners.set(e.homeRegistrarId, o);
    }
    e.ownerIdx = o.entries.length;
    o.entries.push(e);
    o.sum += peChecksumTerm(e.pool.handleSum, e.id >>> 0);
  }

  #ownerRemove(e: PeEntry): void {
    const o = this.#owners.get(e.homeRegistrarId)!;
    const last = o.entries.pop()!;
    if (last !== e) {
      o.entries[e.ownerIdx] = last;
      last.ownerIdx = e.ownerIdx;
    }
    e.ownerIdx = -1;
    o.sum -= peChecksumTerm(e.pool.handleSum, e.id >>> 0);
    if (o.entries.length === 0) this.#owners.delete(e.homeRegistrarId);
  }

  /** `at` is an internal exp value (-1 = never). */
  #setExpiry(e: PeEntry, at: number): void {
    const old = e.exp;
    if (e.heapIdx >= 0 && at < 0) this.#heapRemove(e); // while it still has its old key
    e.exp = at;
    if (at < 0) return;
    if (e.heapIdx < 0) {
      this.#heapPush(e);
    } else if (at < old) {
      this.#heapUp(e.heapIdx);
      this.#arm();
    } else if (at > old) {
      this.#heapDown(e.heapIdx);
    }
  }

  #heapPush(e: PeEntry): void {
    e.heapIdx = this.#heap.length;
    this.#heap.push(e);
    this.#heapUp(e.heapIdx);
    this.#arm();
  }

  #heapRemove(e: PeEntry): void {
    const h = this.#heap;
    const i = e.heapIdx;
    const last = h.pop()!;
    if (last !== e) {
      h[i] = last;
      last.heapIdx = i;
      if (last.exp < e.exp) this.#heapUp(i);
      else this.#heapDown(i);
    }
    e.heapIdx = -1;
  }

  #heapUp(i: number): void {
    const h = this.#heap;
    const e = h[i]!;
    while (i > 0) {
      const pi = (i - 1) >> 1;
      const p = h[pi]!;
      if (p.exp <= e.exp) break;
      h[i] = p;
      p.heapIdx = i;
      i = pi;
    }
    h[i] = e;
    e.heapIdx = i;
  }

  #heapDown(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && h[r]!.exp < h[l]!.exp) c = r;
      const ce = h[c]!;
      if (ce.exp >= e.exp) break;
      h[i] = ce;
      ce.heapIdx = i;
      i = c;
    }
    h[i] = e;
    e.heapIdx = i;
  }

  /**
   * Keeps one clock timer at (or before) the earliest expiry. It is re-armed
   * only when something due earlier arrives; a timer that fires with nothing
   * due just re-arms, so re-registrations that push expiry out cost nothing.
   */
  #arm(): void {
    if (!this.#autoExpire || this.#closed) return;
    const at = this.#heap[0]?.exp ?? Infinity;
    if (at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.clock.now()));
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.expire();
      this.#arm();
    }, delay);
  }
}

export function createHandlespace(init: HandlespaceInit = {}): Handlespace {
  return new HandlespaceImpl(init);
}

interface SnapshotPe {
  id: number;
  owner: number;
  life: number;
  remaining: number | null;
  user: TransportAddress;
  asap: TransportAddress | null;
  policy: MemberSelectionPolicy;
  degradation: number;
  distance: number;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** Builds a handlespace from snapshot() bytes; remaining lives count from init.clock's now. */
export function restoreHandlespace(bytes: Uint8Array, init: HandlespaceInit = {}): Handlespace {
  let data: unknown;
  try {
    data = decode(bytes);
  } catch (cause) {
    throw new HandlespaceSnapshotError('snapshot is not valid CBOR', { cause });
  }
  if (!isRecord(data) || data['version'] !== 1 || !Array.isArray(data['pools'])) {
    throw new HandlespaceSnapshotError('not a version 1 handlespace snapshot');
  }
  const hs = new HandlespaceImpl(init);
  for (const p of data['pools'] as unknown[]) {
    if (!isRecord(p) || !(p['handle'] instanceof Uint8Array) || !Array.isArray(p['pes'])) {
      throw new HandlespaceSnapshotError('malformed pool in snapshot');
    }
    const handle = new Uint8Array(p['handle']);
    for (const x of p['pes'] as SnapshotPe[]) {
      if (!isRecord(x) || !isRecord(x.user) || !isRecord(x.policy)) throw new HandlespaceSnapshotError('malformed PE in snapshot');
      const policy = x.policy;
      if ('raw' in policy && policy.raw instanceof Uint8Array) policy.raw = new Uint8Array(policy.raw);
      const pe: PoolElementParameter = {
        identifier: x.id,
        homeRegistrarId: x.owner,
        registrationLife: x.life,
        userTransport: x.user,
        policy,
      };
      if (x.asap !== null) pe.asapTransport = x.asap;
      hs.restoreEntry(handle, pe, x.remaining, x.degradation, x.distance);
    }
  }
  return hs;
}
