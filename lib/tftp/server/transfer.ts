/** What read and write transfers share: their UDP socket (the TID), packet bytes, the end report. */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { TransferEndReason } from './types.js';

/** A socket of its own per transfer, connected to the client: the kernel drops other senders, and sends skip the address lookup. */
export function openTransferSocket(host: string, peer: { address: string; port: number }, bufferBytes: number): Promise<Socket> {
  const v6 = isIPv6(peer.address);
  const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', recvBufferSize: bufferBytes, sendBufferSize: bufferBytes });
  const bindHost = isIPv6(host) === v6 ? host : v6 ? '::' : '0.0.0.0';
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', fail);
    socket.bind({ port: 0, address: bindHost, exclusive: true }, () => {
      try {
        socket.connect(peer.port, peer.address, () => {
          socket.off('error', fail);
          resolve(socket);
        });
      } catch (err) {
        // A port or address connect refuses: thrown here, inside the bind callback.
        fail(err as Error);
      }
    });
  });
}

export interface TransferEnd {
  reason: TransferEndReason;
  /** File bytes acknowledged (read) or stored (write) by this transfer. */
  bytes: number;
  /** Last absolute block acknowledged (read) or received (write). */
  lastBlock: number;
  error?: Error;
  /** Keep-alives sent while a cookie client waited on this PE's disk. */
  keepAlives?: number;
}

/** What the server asks of a running transfer. */
export interface Transfer {
  /**
   * Ends it now: with a TFTP ERROR when `notify`, else silently. `resumable`:
   * the server stops and the client may resume elsewhere, so an upload with
   * cookies keeps what it has written.
   */
  abort(notify: boolean, message: string, resumable?: boolean): void;
  /** The client sent its request again: answer it again if the transfer has not got under way. */
  repeat(): void;
  /** The client asked for cookies (it fails over on silence). */
  readonly wantsCookies: boolean;
  /**
   * The server leaves: a transfer that can resume elsewhere tells its client
   * so (see LeaveNotice) and ends once the client has gone quiet; false when
   * it cannot (no cookies, an upload), and it carries on.
   */
  leave(notice: LeaveNotice): boolean;
  /** leave() took it: the transfer only lingers to repeat the notice. */
  readonly leaving: boolean;
}

/** What a leaving PE tells a client that can resume at another PE. */
export interface LeaveNotice {
  /** The TFTP ERROR (code 0, LEAVING_ERROR_PREFIX). */
  error: Uint8Array;
  /** An ASAP_BUSINESS_CARD naming the other PEs, when known. */
  card: Uint8Array | undefined;
}
