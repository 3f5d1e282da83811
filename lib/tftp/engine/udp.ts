/**
 * UDP against a hostile network: a datagram's source decides where the
 * answer goes, so one that cannot be answered (port 0, an unspecified,
 * multicast or broadcast address) is dropped before any reply; and no send
 * or close throws out of an event handler.
 */
import type { Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/** A source a reply may go to: a unicast address and a port in 1..65535. */
export function usableSource(address: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  if (isIPv4(address)) {
    const first = Number(address.slice(0, address.indexOf('.')));
    // 0.0.0.0/8 (this network), 224/4 multicast, 240/4 reserved and the broadcast address.
    return first !== 0 && first < 224;
  }
  if (isIPv6(address)) {
    const a = address.toLowerCase();
    if (a === '::' || a.startsWith('ff')) return false;
    // An IPv4-mapped source is judged by its IPv4 address.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
    return mapped ? usableSource(mapped[1]!, port) : true;
  }
  return false;
}

/**
 * socket.send that never throws: a bad port or address, or a socket closed
 * meanwhile, is reported to `cb` (when given) instead. Unconnected sockets
 * pass `port` and `address`; connected ones leave them out.
 */
export function sendSafe(socket: Socket, bytes: Uint8Array | readonly Uint8Array[], port?: number, address?: string, cb?: (err: Error | null) => void): void {
  try {
    if (port === undefined) {
      if (cb) socket.send(bytes as Uint8Array, cb);
      else socket.send(bytes as Uint8Array);
    } else if (cb) socket.send(bytes as Uint8Array, port, address, cb);
    else socket.send(bytes as Uint8Array, port, address);
  } catch (err) {
    cb?.(err as Error);
  }
}

/** socket.close that never throws (the socket may be closed already). */
export function closeSafe(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // Already closed.
  }
}
