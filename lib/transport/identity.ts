import { createHash } from 'node:crypto';
import type { Connection, PeerIdentity } from './types.js';

/**
 * Who is on a connection, for policies, logs and events: `KIND:NAME` for what
 * the handshake proved (e.g. `psk:pe-1`), else `anonymous@ADDRESS`.
 */
export function peerLabel(conn: Pick<Connection, 'peerIdentity' | 'remote'>): string {
  const id = conn.peerIdentity;
  return id ? `${id.kind}:${id.name}` : `anonymous@${conn.remote.host}`;
}

/**
 * The owner identity a registrar records for a PE and ENRP carries (rserpool's
 * PE Owner Identity parameter): hex SHA-256 of `KIND:NAME`, fixed-size and
 * without the name itself; undefined for a peer that proved none. The name,
 * not a certificate's fingerprint: a renewed certificate is the same owner.
 */
export function ownerIdentityOf(identity: PeerIdentity | undefined): string | undefined {
  return identity === undefined ? undefined : createHash('sha256').update(`${identity.kind}:${identity.name}`).digest('hex');
}
