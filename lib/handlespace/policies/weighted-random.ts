import type { PoolElementEntry } from '../types.js';
import type { PeEntry, SelectContext, Selector } from '../entry.js';

const MAX_REJECTIONS = 8;

/** An integer in [0, total). */
function draw(random: () => number, total: number): number {
  const r = Math.floor(random() * total);
  return r < total ? r : total - 1;
}

function chosen(out: PeEntry[], from: number, e: PeEntry): boolean {
  for (let i = from; i < out.length; i++) if (out[i] === e) return true;
  return false;
}

export interface WeightRules {
  /** The PE's selection weight: a non-negative integer below 2^32. */
  weight(e: PeEntry): number;
  /** DPF: the weight at a distance given at resolution time (then the pool is scanned). */
  weightAtDistance?(e: PeEntry, distance: number): number;
}

/**
 * Weighted random without replacement over a Fenwick tree of integer weights
 * (exact in float64 up to 2^53 total): sample O(log n), add/remove/re-weight
 * O(log n). Slots stay dense: removal moves the last slot into the hole. A
 * resolution returns distinct PEs (see select).
 *
 * A draw walks log2(n) levels of the tree, each a cache miss once the pool is
 * cold (10 at 1,000 PEs): with many large pools that walk is most of a
 * resolution. So a pool whose weights stay put is also given an alias table
 * (Walker/Vose, exact in integers): a draw is then one bucket, one cache
 * line. Any change of weight or membership drops the table; it is rebuilt
 * (O(n)) only after n/4 + 16 resolutions found it missing, so a pool that
 * changes more often than it is resolved keeps using the tree and the rebuild
 * costs at most O(1) amortized per resolution.
 */
export class WeightedRandomSelector implements Selector {
  readonly #rules: WeightRules;
  #cap = 16;
  #top = 16;
  #w = new Float64Array(16);
  #tree = new Float64Array(17);
  readonly #slots: PeEntry[] = [];
  #total = 0;
  /** Alias table by slot: [threshold, alias slot] pairs over buckets of #aliasTotal units; valid while #aliasN > 0. */
  #alias = new Float64Array(0);
  #aliasN = 0;
  #aliasTotal = 0;
  /** Resolutions since the weights last changed while there was no alias table. */
  #stale = 0;

  constructor(rules: WeightRules) {
    this.#rules = rules;
  }

  add(e: PeEntry): void {
    const s = this.#slots.length;
    if (s === this.#cap) this.#grow();
    this.#slots.push(e);
    e.selIdx = s;
    const w = this.#rules.weight(e);
    this.#w[s] = w;
    this.#add(s, w);
    this.#changed();
  }

  remove(e: PeEntry): void {
    const s = e.selIdx;
    const last = this.#slots.length - 1;
    const ws = this.#w[s]!;
    if (s !== last) {
      const le = this.#slots[last]!;
      const wl = this.#w[last]!;
      this.#add(s, wl - ws);
      this.#add(last, -wl);
      this.#w[s] = wl;
      this.#slots[s] = le;
      le.selIdx = s;
    } else {
      this.#add(s, -ws);
    }
    this.#w[last] = 0;
    this.#slots.pop();
    e.selIdx = -1;
    this.#changed();
  }

  update(e: PeEntry): void {
    const s = e.selIdx;
    const w = this.#rules.weight(e);
    if (w === this.#w[s]!) return;
    this.#add(s, w - this.#w[s]!);
    this.#w[s] = w;
    this.#changed();
  }

  select(items: number, ctx: SelectContext, out: PeEntry[]): void {
    if (ctx.distanceOf && this.#rules.weightAtDistance) {
      this.#scan(items, ctx, ctx.distanceOf, out);
      return;
    }
    const n = this.#slots.length;
    const k = items < n ? items : n;
    const base = out.length;
    const random = ctx.random;
    const slots = this.#slots;
    if (this.#aliasN === 0 && ++this.#stale >= (n >> 2) + 16) this.#buildAlias();
    const alias = this.#aliasN > 0;
    // Draw from the full tree and reject PEs already chosen: exactly the
    // distribution of the remaining PEs, without touching the tree. Only when
    // rejections pile up (one PE holds most of the weight) are the chosen
    // weights taken out of the tree, and put back at the end.
    let subtracted = false;
    for (let c = 0; c < k; c++) {
      let s = -1;
      if (!subtracted) {
        const total = this.#total;
        if (total <= 0) break;
        for (let t = 0; t < MAX_REJECTIONS; t++) {
          const x = alias ? this.#aliasDraw(random) : this.#find(draw(random, total));
          if (!chosen(out, base, slots[x]!)) {
            s = x;
            break;
          }
        }
        if (s < 0) {
          subtracted = true;
          for (let i = base; i < out.length; i++) this.#add(out[i]!.selIdx, -this.#w[out[i]!.selIdx]!);
        }
      }
      if (subtracted) {
        const total = this.#total;
        if (total <= 0) break;
        s = this.#find(draw(random, total));
        this.#add(s, -this.#w[s]!);
      }
      out.push(slots[s]!);
    }
    if (subtracted) {
      for (let i = base; i < out.length; i++) {
        const s = out[i]!.selIdx;
        this.#add(s, this.#w[s]!);
      }
    }
  }

  /** O(n * items): weights computed for this caller's distances. */
  #scan(items: number, ctx: SelectContext, distanceOf: (pe: PoolElementEntry) => number, out: PeEntry[]): void {
    const at = this.#rules.weightAtDistance!;
    const slots = this.#slots;
    const w = slots.map((e) => at(e, distanceOf(e)));
    let total = w.reduce((a, b) => a + b, 0);
    for (let c = 0; c < items && total > 0; c++) {
      let r = Math.floor(ctx.random() * total);
      let s = 0;
      while (s < w.length - 1 && r >= w[s]!) r -= w[s++]!;
      out.push(slots[s]!);
      total -= w[s]!;
      w[s] = 0;
    }
  }

  #changed(): void {
    this.#aliasN = 0;
    this.#stale = 0;
  }

  /** One slot drawn in proportion to its weight from the alias table. */
  #aliasDraw(random: () => number): number {
    const n = this.#aliasN;
    let u = Math.floor(random() * n);
    if (u >= n) u = n - 1;
    const a = this.#alias;
    return draw(random, this.#aliasTotal) < a[2 * u]! ? u : a[2 * u + 1]!;
  }

  /**
   * Vose's alias method in integers: n buckets of `total` units each, weight
   * w filling w * n units, so every value is exact while total * n <= 2^53
   * (above that the pool keeps using the tree). A zero weight gets no units.
   */
  #buildAlias(): void {
    const n = this.#slots.length;
    const total = this.#total;
    this.#stale = 0;
    if (n === 0 || !(total > 0) || total * n > Number.MAX_SAFE_INTEGER) return;
    if (this.#alias.length < 2 * n) this.#alias = new Float64Array(2 * this.#cap);
    const a = this.#alias;
    const units = new Float64Array(n);
    // small indices stack up from the front, large ones from the back
    const stack = new Int32Array(n);
    let small = 0;
    let large = n;
    for (let i = 0; i < n; i++) {
      const u = this.#w[i]! * n;
      units[i] = u;
      if (u < total) stack[small++] = i;
      else stack[--large] = i;
    }
    while (small > 0 && large < n) {
      const s = stack[--small]!;
      const l = stack[large++]!;
      a[2 * s] = units[s]!;
      a[2 * s + 1] = l;
      const left = units[l]! - (total - units[s]!);
      units[l] = left;
      if (left < total) stack[small++] = l;
      else stack[--large] = l;
    }
    // exact arithmetic: whatever is left fills its own bucket exactly
    while (small > 0) {
      const s = stack[--small]!;
      a[2 * s] = total;
      a[2 * s + 1] = s;
    }
    while (large < n) {
      const l = stack[large++]!;
      a[2 * l] = total;
      a[2 * l + 1] = l;
    }
    this.#aliasN = n;
    this.#aliasTotal = total;
  }

  #add(s: number, delta: number): void {
    if (delta === 0) return;
    this.#total += delta;
    const t = this.#tree;
    const cap = this.#cap;
    for (let i = s + 1; i <= cap; i += i & -i) t[i] = t[i]! + delta;
  }

  /** The slot holding the r-th unit of weight (smallest slot whose prefix sum exceeds r). */
  #find(r: number): number {
    const t = this.#tree;
    const cap = this.#cap;
    let pos = 0;
    for (let step = this.#top; step > 0; step >>= 1) {
      const nx = pos + step;
      if (nx <= cap && t[nx]! <= r) {
        pos = nx;
        r -= t[nx]!;
      }
    }
    return pos;
  }

  #grow(): void {
    const cap = this.#cap * 2;
    const w = new Float64Array(cap);
    w.set(this.#w);
    const t = new Float64Array(cap + 1);
    // linear-time Fenwick build
    for (let i = 1; i <= cap; i++) {
      t[i] = t[i]! + w[i - 1]!;
      const j = i + (i & -i);
      if (j <= cap) t[j] = t[j]! + t[i]!;
    }
    this.#cap = cap;
    this.#top = cap;
    this.#w = w;
    this.#tree = t;
  }
}
