import type { PoolElementEntry } from '../types.js';
import type { Pool, PeEntry, SelectContext, Selector } from '../entry.js';

/**
 * How an ordered policy ranks PEs: ascending (k1, k2, seq). seq is the pool's
 * selection counter, stamped on a PE each time it counts as used, so among
 * equal keys the least recently used comes first: RFC 5356's "round robin
 * among PEs of equal load/priority".
 */
export interface OrderedRules {
  /** Sets k1/k2 of a PE joining the pool; `heapMinK1` is the k1 of the current first PE (0 if none). */
  init(e: PeEntry, heapMinK1: number): void;
  /** Recomputes k1/k2 after a re-registration changed the PE's values. */
  refresh(e: PeEntry): void;
  /** A PE counted as used by a resolution: degrade it, count its weight down... and recompute k1/k2. */
  used?(e: PeEntry): void;
  /** DPF: k1 for a distance given at resolution time (then the pool is scanned). */
  keyAtDistance?(e: PeEntry, distance: number): number;
}

const RESEQUENCE_AT = 0x40000000;
/** Int32 words per heap slot in #keys: k1, k2, seq, (padding, so a slot is 16 bytes). */
const STRIDE = 4;

/**
 * A binary min-heap per pool. Insert, remove and re-key are O(log n);
 * resolving k items reads the k smallest without popping them (a frontier of
 * at most k+1 heap slots), then re-stamps the used ones and sifts them down.
 *
 * The sort keys live in one Int32Array by heap slot (k1, k2, seq), next to the
 * array of entries: reading the top of the heap touches two or three cache
 * lines, not one PE object per node scattered over the whole heap. A PE's
 * seq lives only there; k1/k2 are computed on the PE by the rules and copied.
 */
export class OrderedSelector implements Selector {
  readonly #pool: Pool;
  readonly #rules: OrderedRules;
  /** #rules.used, read here so a plain resolution touches no rules object. */
  readonly #used: ((e: PeEntry) => void) | undefined;
  readonly #heap: PeEntry[] = [];
  #keys = new Int32Array(4 * STRIDE);
  readonly #frontier: number[] = [];

  constructor(pool: Pool, rules: OrderedRules) {
    this.#pool = pool;
    this.#rules = rules;
    this.#used = rules.used;
  }

  add(e: PeEntry): void {
    const h = this.#heap;
    const i = h.length;
    if ((i + 1) * STRIDE > this.#keys.length) {
      const k = new Int32Array(this.#keys.length * 2);
      k.set(this.#keys);
      this.#keys = k;
    }
    this.#rules.init(e, i > 0 ? this.#keys[0]! : 0);
    h.push(e);
    const K = this.#keys;
    const o = i * STRIDE;
    K[o] = e.k1;
    K[o + 1] = e.k2;
    K[o + 2] = this.#pool.seq++;
    e.selIdx = i;
    this.#up(i);
  }

  remove(e: PeEntry): void {
    const h = this.#heap;
    const i = e.selIdx;
    const n = h.length - 1;
    const last = h.pop()!;
    if (last !== e) {
      h[i] = last;
      last.selIdx = i;
      this.#copyKeys(n, i);
      this.#fix(i);
    }
    e.selIdx = -1;
  }

  update(e: PeEntry): void {
    this.#rules.refresh(e);
    const o = e.selIdx * STRIDE;
    this.#keys[o] = e.k1;
    this.#keys[o + 1] = e.k2;
    this.#fix(e.selIdx);
  }

  select(items: number, ctx: SelectContext, out: PeEntry[]): void {
    const h = this.#heap;
    const n = h.length;
    const k = items < n ? items : n;
    if (k === 0) return;
    const base = out.length;
    let first = 0;
    if (ctx.distanceOf && this.#rules.keyAtDistance) {
      this.#scan(k, ctx.distanceOf, out);
      first = out[base]!.selIdx;
    } else if (k <= 3) {
      // the 2nd is a child of the root, the 3rd the other child or a child of the 2nd: no frontier needed
      out.push(h[0]!);
      if (k > 1) {
        let second = 1;
        let other = 2;
        if (n > 2 && this.#less(2, 1)) {
          second = 2;
          other = 1;
        }
        out.push(h[second]!);
        if (k > 2) {
          let third = other < n ? other : -1;
          const l = 2 * second + 1;
          if (l < n && (third < 0 || this.#less(l, third))) third = l;
          if (l + 1 < n && this.#less(l + 1, third)) third = l + 1;
          out.push(h[third]!);
        }
      }
    } else {
      const f = this.#frontier;
      f.length = 0;
      f.push(0);
      for (let c = 0; c < k; c++) {
        let bi = 0;
        for (let j = 1; j < f.length; j++) if (this.#less(f[j]!, f[bi]!)) bi = j;
        const idx = f[bi]!;
        f[bi] = f[f.length - 1]!;
        f.pop();
        out.push(h[idx]!);
        const l = 2 * idx + 1;
        if (l < n) f.push(l);
        if (l + 1 < n) f.push(l + 1);
      }
    }
    const inc = Math.min(ctx.maxIncrement ?? 1, k);
    if (inc <= 0) return;
    if (this.#pool.seq > RESEQUENCE_AT) this.#resequence();
    const used = this.#used;
    const K = this.#keys;
    for (let i = 0; i < inc; i++) {
      // the first used PE is where the walk found it; later ones may have moved since
      const at = i === 0 ? first : out[base + i]!.selIdx;
      const o = at * STRIDE;
      if (used) {
        const e = h[at]!;
        used(e);
        K[o] = e.k1;
        K[o + 1] = e.k2;
      }
      K[o + 2] = this.#pool.seq++;
      this.#fix(at);
    }
  }

  /** Distance known only now: rank the whole pool by keyAtDistance (O(n log k)). */
  #scan(k: number, distanceOf: (pe: PoolElementEntry) => number, out: PeEntry[]): void {
    const keyAt = this.#rules.keyAtDistance!;
    const K = this.#keys;
    const best: { e: PeEntry; key: number; seq: number }[] = [];
    const h = this.#heap;
    for (let i = 0; i < h.length; i++) {
      const e = h[i]!;
      const key = keyAt(e, distanceOf(e));
      const seq = K[i * STRIDE + 2]!;
      if (best.length === k) {
        const worst = best[k - 1]!;
        if (key > worst.key || (key === worst.key && seq > worst.seq)) continue;
        best.pop();
      }
      let j = best.length;
      while (j > 0) {
        const p = best[j - 1]!;
        if (p.key < key || (p.key === key && p.seq < seq)) break;
        j--;
      }
      best.splice(j, 0, { e, key, seq });
    }
    for (const b of best) out.push(b.e);
  }

  /** Renumbers seq from 0 in the same order, so it stays a small integer; rare (every 2^30 uses). */
  #resequence(): void {
    const K = this.#keys;
    const n = this.#heap.length;
    const byAge = Array.from({ length: n }, (_, i) => i).sort((a, b) => K[a * STRIDE + 2]! - K[b * STRIDE + 2]!);
    byAge.forEach((slot, i) => {
      K[slot * STRIDE + 2] = i;
    });
    this.#pool.seq = n;
  }

  /** Slot a ranks before slot b. */
  #less(a: number, b: number): boolean {
    const K = this.#keys;
    const oa = a * STRIDE;
    const ob = b * STRIDE;
    const a1 = K[oa]!;
    const b1 = K[ob]!;
    if (a1 !== b1) return a1 < b1;
    const a2 = K[oa + 1]!;
    const b2 = K[ob + 1]!;
    if (a2 !== b2) return a2 < b2;
    return K[oa + 2]! < K[ob + 2]!;
  }

  #fix(i: number): void {
    if (!this.#up(i)) this.#down(i);
  }

  /** Moves slot i's PE and keys to slot j. */
  #move(i: number, j: number): void {
    const e = this.#heap[i]!;
    this.#heap[j] = e;
    e.selIdx = j;
    this.#copyKeys(i, j);
  }

  /** Slot i's keys to slot j (three stores: cheaper than a copyWithin call). */
  #copyKeys(i: number, j: number): void {
    const K = this.#keys;
    const from = i * STRIDE;
    const to = j * STRIDE;
    K[to] = K[from]!;
    K[to + 1] = K[from + 1]!;
    K[to + 2] = K[from + 2]!;
  }

  #up(i: number): boolean {
    const h = this.#heap;
    const K = this.#keys;
    const e = h[i]!;
    const o = i * STRIDE;
    const k1 = K[o]!;
    const k2 = K[o + 1]!;
    const seq = K[o + 2]!;
    const start = i;
    while (i > 0) {
      const pi = (i - 1) >> 1;
      const po = pi * STRIDE;
      const p1 = K[po]!;
      if (p1 < k1) break;
      if (p1 === k1) {
        const p2 = K[po + 1]!;
        if (p2 < k2 || (p2 === k2 && K[po + 2]! < seq)) break;
      }
      this.#move(pi, i);
      i = pi;
    }
    if (i === start) return false;
    h[i] = e;
    e.selIdx = i;
    const io = i * STRIDE;
    K[io] = k1;
    K[io + 1] = k2;
    K[io + 2] = seq;
    return true;
  }

  #down(i: number): void {
    const h = this.#heap;
    const K = this.#keys;
    const n = h.length;
    const e = h[i]!;
    const o = i * STRIDE;
    const k1 = K[o]!;
    const k2 = K[o + 1]!;
    const seq = K[o + 2]!;
    const start = i;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#less(r, l) ? r : l;
      const co = c * STRIDE;
      const c1 = K[co]!;
      if (c1 > k1) break;
      if (c1 === k1) {
        const c2 = K[co + 1]!;
        if (c2 > k2 || (c2 === k2 && K[co + 2]! >= seq)) break;
      }
      this.#move(c, i);
      i = c;
    }
    if (i === start) return;
    h[i] = e;
    e.selIdx = i;
    const io = i * STRIDE;
    K[io] = k1;
    K[io + 1] = k2;
    K[io + 2] = seq;
  }
}
