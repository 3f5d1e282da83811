import type { Pool, PeEntry, SelectContext, Selector } from '../entry.js';

/**
 * RFC 5356 4.1 round robin over the pool's member array: a cursor names the
 * first PE of the next answer; each resolution returns the PEs from the
 * cursor on and moves it by maxIncrement (default 1, as RSPLIB), so the
 * sequence of first choices visits every PE in turn. Removal swaps the last
 * member into the hole, which reorders the round but stays O(1).
 */
export class RoundRobinSelector implements Selector {
  readonly #pool: Pool;
  #cursor = 0;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  add(_e: PeEntry): void {}
  remove(_e: PeEntry): void {}
  update(_e: PeEntry): void {}

  select(items: number, ctx: SelectContext, out: PeEntry[]): void {
    const m = this.#pool.members;
    const n = m.length;
    if (n === 0) return;
    let c = this.#cursor;
    if (c >= n) c = 0;
    const k = items < n ? items : n;
    for (let i = 0; i < k; i++) {
      let idx = c + i;
      if (idx >= n) idx -= n;
      out.push(m[idx]!);
    }
    const inc = Math.min(ctx.maxIncrement ?? 1, k);
    this.#cursor = (c + inc) % n;
  }
}
