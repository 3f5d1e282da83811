/** Conversions between handlespace entries, wire parameters and transport URLs. */
import { isIP } from 'node:net';
import type { PoolElementEntry } from '../handlespace/index.js';
import { makeTransportUrl, parseTransportUrl, type TransportScheme } from '../transport/index.js';
import { TransportUse, type ServerInformation } from '../../protocols/parameters/types.js';

/** The PE Owner Identity parameter's bytes for an entry's owner identity (hex SHA-256), if it has one. */
export function ownerIdentityBytes(e: PoolElementEntry): Uint8Array | undefined {
  return e.ownerIdentity === undefined ? undefined : Uint8Array.from(Buffer.from(e.ownerIdentity, 'hex'));
}

/** Register options carrying the owner identity a peer sent with a PE (none: the entry keeps none). */
export function ownerOption(digest: Uint8Array | undefined): { ownerIdentity?: string } {
  return digest === undefined ? {} : { ownerIdentity: Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex') };
}

/** Key of a PE across the handlespace: pool key + identifier. */
export function peKey(poolKey: string, identifier: number): string {
  return `${poolKey}\u0000${identifier >>> 0}`;
}

/**
 * Our ENRP transport as a Server Information parameter. It carries an IP
 * address and port only, so a memory:// endpoint is advertised only when its
 * name is an IP address (the test clusters name hosts 127.1.0.x).
 */
export function serverInformation(id: number, url: string): ServerInformation | undefined {
  const u = parseTransportUrl(url);
  if (isIP(u.host) === 0 || u.port === 0) return undefined;
  return { registrarId: id, transport: { protocol: 'tcp', port: u.port, addresses: [u.host], transportUse: TransportUse.DataPlusControl } };
}

/** The URL of a peer's ENRP endpoint; the scheme is ours (a cluster speaks one transport). */
export function urlOf(info: ServerInformation, scheme: TransportScheme): string | undefined {
  const host = info.transport.addresses[0];
  if (host === undefined || info.transport.port === 0 || isIP(host) === 0) return undefined;
  return makeTransportUrl(scheme, host, info.transport.port).href;
}
