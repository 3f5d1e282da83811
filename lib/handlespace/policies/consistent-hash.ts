import type { MemberSelectionPolicy } from '../../../protocols/parameters/types.js';
import type { PeEntry, SelectContext, Selector } from '../entry.js';

/** murmur3's 32-bit finalizer: a cheap, well-mixing integer hash. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The ring position of a client key (FNV-1a, then mixed). */
export function clientKeyHash(key: string | Uint8Array): number {
  let h = 0x811c9dc5;
  if (typeof key === 'string') {
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  } else {
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  }
  return fmix32(h);
}

/** Ring position of a PE's i-th virtual node: depends on its identifier only, so it is the same on every registrar. */
function pointHash(identifier: number, i: number): number {
  return fmix32(Math.imul(identifier, 0x9e3779b1) ^ fmix32(i + 0x7f4a7c15));
}

/** Ring points of one PE: virtualNodes x weight, weight counted from 1 to 16. */
export function ringPointsOf(policy: MemberSelectionPolicy, virtualNodes: number): number {
  const w = (policy as { weight?: number }).weight ?? 1;
  return virtualNodes * Math.min(16, Math.max(1, w));
}

const CHUNK = 256;

interface Chunk {
  h: number[];
  e: PeEntry[];
}

function before(h1: number, e1: PeEntry, h2: number, e2: PeEntry): boolean {
  return h1 < h2 || (h1 === h2 && e1.id < e2.id);
}

/**
 * Consistent hashing on a ring of virtual nodes (points ordered by hash, then
 * PE identifier). The ring is a list of sorted chunks of at most 2*CHUNK
 * points: insert/remove cost O(log n + CHUNK) per point, lookup O(log n).
 * A client key goes to the first point at or after its hash; more items walk
 * on clockwise to the next distinct PEs. Adding or removing a PE moves only
 * the keys of its own points.
 */
export class ConsistentHashSelector implements Selector {
  readonly #virtualNodes: number;
  readonly #chunks: Chunk[] = [];
  #points = 0;

  constructor(virtualNodes: number) {
    this.#virtualNodes = virtualNodes;
  }

  #pointsOf(e: PeEntry): number {
    return ringPointsOf(e.policy, this.#virtualNodes);
  }

  add(e: PeEntry): void {
    const p = this.#pointsOf(e);
    e.k1 = p;
    for (let i = 0; i < p; i++) this.#insert(pointHash(e.id, i), e);
  }

  remove(e: PeEntry): void {
    for (let i = 0; i < e.k1; i++) this.#delete(pointHash(e.id, i), e);
    e.k1 = 0;
  }

  update(e: PeEntry): void {
    if (this.#pointsOf(e) === e.k1) return;
    this.remove(e);
    this.add(e);
  }

  select(items: number, ctx: SelectContext, out: PeEntry[]): void {
    if (this.#points === 0) return;
    const hash = ctx.clientKey === undefined ? Math.floor(ctx.random() * 0x100000000) : clientKeyHash(ctx.clientKey);
    const chunks = this.#chunks;
    let ci = this.#chunkFor(hash);
    let c = chunks[ci]!;
    let pi = lowerBound(c.h, hash);
    if (pi === c.h.length) {
      ci = (ci + 1) % chunks.length;
      c = chunks[ci]!;
      pi = 0;
    }
    const base = out.length;
    for (let walked = 0; walked < this.#points && out.length - base < items; walked++) {
      const e = c.e[pi]!;
      let seen = false;
      for (let j = base; j < out.length; j++) if (out[j] === e) seen = true;
      if (!seen) out.push(e);
      if (++pi === c.h.length) {
        ci = (ci + 1) % chunks.length;
        c = chunks[ci]!;
        pi = 0;
      }
    }
  }

  /** Index of the first chunk whose last point is >= hash (the last chunk if none). */
  #chunkFor(hash: number): number {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = chunks[mid]!;
      if (c.h[c.h.length - 1]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #insert(hash: number, e: PeEntry): void {
    const chunks = this.#chunks;
    this.#points++;
    if (chunks.length === 0) {
      chunks.push({ h: [hash], e: [e] });
      return;
    }
    const ci = this.#chunkFor(hash);
    const c = chunks[ci]!;
    let lo = 0;
    let hi = c.h.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(c.h[mid]!, c.e[mid]!, hash, e)) lo = mid + 1;
      else hi = mid;
    }
    c.h.splice(lo, 0, hash);
    c.e.splice(lo, 0, e);
    if (c.h.length > 2 * CHUNK) {
      chunks.splice(ci + 1, 0, { h: c.h.splice(CHUNK), e: c.e.splice(CHUNK) });
    }
  }

  #delete(hash: number, e: PeEntry): void {
    const chunks = this.#chunks;
    let ci = this.#chunkFor(hash);
    // equal hashes may straddle chunks
    for (; ci < chunks.length; ci++) {
      const c = chunks[ci]!;
      let i = lowerBound(c.h, hash);
      while (i < c.h.length && c.h[i] === hash) {
        if (c.e[i] === e) {
          c.h.splice(i, 1);
          c.e.splice(i, 1);
          this.#points--;
          if (c.h.length === 0) chunks.splice(ci, 1);
          return;
        }
        i++;
      }
      if (i < c.h.length) return;
    }
  }
}

function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
