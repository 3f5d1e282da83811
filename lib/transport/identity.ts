import type { Connection } from './types.js';

/**
 * Who is on a connection, for policies, logs and events: `KIND:NAME` for what
 * the handshake proved (e.g. `psk:pe-1`), else `anonymous@ADDRESS`.
 */
export function peerLabel(conn: Pick<Connection, 'peerIdentity' | 'remote'>): string {
  const id = conn.peerIdentity;
  return id ? `${id.kind}:${id.name}` : `anonymous@${conn.remote.host}`;
}
