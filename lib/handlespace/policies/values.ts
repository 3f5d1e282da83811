/** Typed views of the policy values the selectors read (register() has validated them). */
import type { MemberSelectionPolicy } from '../../../protocols/parameters/types.js';
import { LOAD_MAX } from '../../../protocols/parameters/types.js';

type Values = Partial<
  Record<'weight' | 'priority' | 'load' | 'loadDegradation' | 'weightDpf' | 'loadDpf' | 'distance' | 'connections' | 'responseTimeUs', number>
>;

/** The numeric values of a policy, whatever its type; absent ones read as undefined. */
export function values(p: MemberSelectionPolicy): Values {
  return p as Values;
}

/** a + b + c clamped to [0, LOAD_MAX], as RSPLIB's getSum. */
export function loadSum(a: number, b: number, c = 0): number {
  const v = a + b + c;
  return v > LOAD_MAX ? LOAD_MAX : v;
}
