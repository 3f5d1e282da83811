import { policyName } from '../handlespace/index.js';
import type { MemberSelectionPolicy, TransportAddress } from '../../protocols/parameters/types.js';
import { hex32 } from './process.js';

export function transportText(t: TransportAddress): string {
  const host = (a: string): string => (a.includes(':') ? `[${a}]` : a);
  return `${t.protocol}://${t.addresses.map(host).join(',')}:${t.port}`;
}

/** "least-used load=25.0%", "weighted-random weight=5". */
export function policyText(p: MemberSelectionPolicy): string {
  const values = Object.entries(p)
    .filter(([k]) => k !== 'type' && k !== 'unknown' && k !== 'raw')
    .map(([k, v]) => (k === 'load' || k === 'loadDegradation' ? `${k}=${((Number(v) / 0xffffffff) * 100).toFixed(1)}%` : `${k}=${String(v)}`));
  return [policyName(p.type), ...values].join(' ');
}

export { hex32 };
