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

/**
 * A pool handle for a line of output: bytes 0x21-0x7e as they are, every other
 * byte (and the backslash) as \xNN, so a handle cannot break the line or
 * send the terminal an escape sequence.
 */
export function handleText(handle: Uint8Array): string {
  let out = '';
  for (const b of handle) out += b > 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

export { hex32 };
