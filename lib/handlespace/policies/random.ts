import type { Pool, PeEntry, SelectContext, Selector } from '../entry.js';

/**
 * RFC 5356 4.3 random: a uniform sample of distinct PEs from the member array
 * (Floyd's algorithm, O(items) draws), then shuffled because Floyd's order is
 * not uniform.
 */
export class RandomSelector implements Selector {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  add(_e: PeEntry): void {}
  remove(_e: PeEntry): void {}
  update(_e: PeEntry): void {}

  select(items: number, ctx: SelectContext, out: PeEntry[]): void {
    const m = this.#pool.members;
    const n = m.length;
    const k = items < n ? items : n;
    const base = out.length;
    const random = ctx.random;
    for (let j = n - k; j < n; j++) {
      let pick = m[Math.floor(random() * (j + 1))]!;
      if (contains(out, base, pick)) pick = m[j]!;
      out.push(pick);
    }
    for (let i = k - 1; i > 0; i--) {
      const r = base + Math.floor(random() * (i + 1));
      const t = out[base + i]!;
      out[base + i] = out[r]!;
      out[r] = t;
    }
  }
}

function contains(out: PeEntry[], from: number, e: PeEntry): boolean {
  for (let i = from; i < out.length; i++) if (out[i] === e) return true;
  return false;
}
