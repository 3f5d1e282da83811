import { poolHandleFromString } from '../../protocols/parameters/codec.js';
import { TransportUse, type PoolElementParameter, type TransportAddress } from '../../protocols/parameters/types.js';
import { makeTransportUrl, parseTransportUrl } from '../transport/url.js';
import type { TransportScheme, TransportUrl } from '../transport/types.js';

export function toHandle(handle: Uint8Array | string): Uint8Array {
  return typeof handle === 'string' ? poolHandleFromString(handle) : handle;
}

/** A PE's URL: its TCP user transport's first address and port under `scheme`; undefined when it has none. */
export function peUrl(pe: PoolElementParameter, scheme: TransportScheme = 'tcp'): string | undefined {
  const t = pe.userTransport;
  const host = t.addresses[0];
  if (t.protocol !== 'tcp' || host === undefined) return undefined;
  return makeTransportUrl(scheme, host, t.port).href;
}

/** The user transport a PE registers for a session server's bound URL (the inverse of peUrl). */
export function userTransportOf(url: TransportUrl | string): TransportAddress {
  const u = parseTransportUrl(url);
  return { protocol: 'tcp', port: u.port, addresses: [u.host], transportUse: TransportUse.DataOnly };
}

export function describePe(pe: PoolElementParameter): string {
  const t = pe.userTransport;
  return `PE 0x${pe.identifier.toString(16)} (${t.addresses[0] ?? '?'}:${t.port})`;
}
