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

function less(a: PeEntry, b: PeEntry): boolean {
  return a.k1 < b.k1 || (a.k1 === b.k1 && (a.k2 < b.k2 || (a.k2 === b.k2 && a.seq < b.seq)));
}

/**
 * A binary min-heap per pool. Insert, remove and re-key are O(log n);
 * resolving k items reads the k smallest without popping them (a frontier of
 * at most k+1 heap slots), then re-stamps the used ones and sifts them down.
 */
export class OrderedSelector implements Selector {
  readonly #pool: Pool;
  readonly #rules: OrderedRules;
  readonly #heap: PeEntry[] = [];
  readonly #frontier: number[] = [];

  constructor(pool: Pool, rules: OrderedRules) {
    this.#pool = pool;
    this.#rules = rules;
  }

  add(e: PeEntry): void {
    const h = this.#heap;
    this.#rules.init(e, h.length > 0 ? h[0]!.k1 : 0);
    e.seq = this.#pool.seq++;
    e.selIdx = h.length;
    h.push(e);
    this.#up(e.selIdx);
  }

  remove(e: PeEntry): void {
    const h = this.#heap;
    const i = e.selIdx;
    const last = h.pop()!;
    if (last !== e) {
      h[i] = last;
      last.selIdx = i;
      this.#fix(i);
    }
    e.selIdx = -1;
  }

  update(e: PeEntry): void {
    this.#rules.refresh(e);
    this.#fix(e.selIdx);
  }

  select(items: number, ctx: SelectContext, out: PeEntry[]): void {
    const h = this.#heap;
    const n = h.length;
    const k = items < n ? items : n;
    if (k === 0) return;
    const base = out.length;
    if (ctx.distanceOf && this.#rules.keyAtDistance) {
      this.#scan(k, ctx.distanceOf, out);
    } else {
      const f = this.#frontier;
      f.length = 0;
      f.push(0);
      for (let c = 0; c < k; c++) {
        let bi = 0;
        for (let j = 1; j < f.length; j++) if (less(h[f[j]!]!, h[f[bi]!]!)) bi = j;
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
    if (this.#pool.seq > RESEQUENCE_AT) this.#resequence();
    const used = this.#rules.used;
    for (let i = 0; i < inc; i++) {
      const e = out[base + i]!;
      if (used) used(e);
      e.seq = this.#pool.seq++;
      this.#fix(e.selIdx);
    }
  }

  /** Distance known only now: rank the whole pool by keyAtDistance (O(n log k)). */
  #scan(k: number, distanceOf: (pe: PoolElementEntry) => number, out: PeEntry[]): void {
    const keyAt = this.#rules.keyAtDistance!;
    const best: { e: PeEntry; key: number }[] = [];
    for (const e of this.#heap) {
      const key = keyAt(e, distanceOf(e));
      if (best.length === k) {
        const worst = best[k - 1]!;
        if (key > worst.key || (key === worst.key && e.seq > worst.e.seq)) continue;
        best.pop();
      }
      let i = best.length;
      while (i > 0) {
        const p = best[i - 1]!;
        if (p.key < key || (p.key === key && p.e.seq < e.seq)) break;
        i--;
      }
      best.splice(i, 0, { e, key });
    }
    for (const b of best) out.push(b.e);
  }

  /** Renumbers seq from 0 in the same order, so it stays a small integer; rare (every 2^30 uses). */
  #resequence(): void {
    const byAge = this.#heap.slice().sort((a, b) => a.seq - b.seq);
    byAge.forEach((e, i) => {
      e.seq = i;
    });
    this.#pool.seq = byAge.length;
  }

  #fix(i: number): void {
    if (!this.#up(i)) this.#down(i);
  }

  #up(i: number): boolean {
    const h = this.#heap;
    const e = h[i]!;
    let moved = false;
    while (i > 0) {
      const pi = (i - 1) >> 1;
      const p = h[pi]!;
      if (!less(e, p)) break;
      h[i] = p;
      p.selIdx = i;
      i = pi;
      moved = true;
    }
    h[i] = e;
    e.selIdx = i;
    return moved;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && less(h[r]!, h[l]!)) c = r;
      const ce = h[c]!;
      if (!less(ce, e)) break;
      h[i] = ce;
      ce.selIdx = i;
      i = c;
    }
    h[i] = e;
    e.selIdx = i;
  }
}
