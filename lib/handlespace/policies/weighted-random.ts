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
 */
export class WeightedRandomSelector implements Selector {
  readonly #rules: WeightRules;
  #cap = 16;
  #top = 16;
  #w = new Float64Array(16);
  #tree = new Float64Array(17);
  readonly #slots: PeEntry[] = [];
  #total = 0;

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
  }

  update(e: PeEntry): void {
    const s = e.selIdx;
    const w = this.#rules.weight(e);
    this.#add(s, w - this.#w[s]!);
    this.#w[s] = w;
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
          const x = this.#find(draw(random, total));
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
