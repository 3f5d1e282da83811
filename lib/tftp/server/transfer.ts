/** What read and write transfers share: their UDP socket (the TID), cookies and keep-alives, the end report. */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { encodeAsapMessage } from '../../../protocols/asap/codec.js';
import { AsapMessageType } from '../../../protocols/asap/types.js';
import type { Clock, TimerHandle } from '../../clock.js';
import type { CookieState } from './cookie.js';
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

/** State cookies of a transfer whose client asked: the state with everything but `next`, and how to seal it for this client. */
export interface TransferCookies {
  template: CookieState;
  seal: (state: CookieState) => Uint8Array;
}

/** The ASAP Cookie datagram naming block `next`. */
export function cookieDatagram(c: TransferCookies, next: number): Uint8Array {
  c.template.next = next;
  return encodeAsapMessage({ type: AsapMessageType.Cookie, cookie: c.seal(c.template) });
}

/**
 * While a cookie client waits on this PE's disk it gets a keep-alive this
 * often: well under its shortest dead-PE wait (200 ms), so a slow disk is not
 * taken for a dead PE.
 */
const KEEPALIVE_MS = 50;

/**
 * A transfer waiting on this PE's disk (an upload's held ACK, its last block
 * being stored or its leaving sync, a download's chunk read). A cookie client
 * gets keep-alives meanwhile: the latest cookie again, byte for byte. It names
 * only what is synced or acknowledged, so it is as good for a resume as when
 * it first went. Once the disk has taken nothing for `boundMs` since the wait
 * began or it last made progress, the keep-alives stop and `giveUp` runs: the
 * transfer ends with a TFTP ERROR the client fails over on.
 */
export class DiskWait {
  /** The latest cookie datagram sent to the client: what a keep-alive repeats. */
  latest: Uint8Array | undefined;
  #sent = 0;
  #since = 0;
  #keepAlives = false;
  #tickTimer: TimerHandle | undefined;
  #boundTimer: TimerHandle | undefined;
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #boundMs: number;
  readonly #waiting: () => boolean;
  readonly #first: () => Uint8Array | undefined;
  readonly #giveUp: (idleMs: number) => void;

  /**
   * `waiting`: the transfer still waits on the disk; `first`: the cookie to
   * send when none went yet (undefined: none); `giveUp`: the disk took nothing
   * for `boundMs` (idleMs: how long) while the transfer waited.
   */
  constructor(socket: Socket, clock: Clock, boundMs: number, waiting: () => boolean, first: () => Uint8Array | undefined, giveUp: (idleMs: number) => void) {
    this.#socket = socket;
    this.#clock = clock;
    this.#boundMs = boundMs;
    this.#waiting = waiting;
    this.#first = first;
    this.#giveUp = giveUp;
  }

  /** The transfer waits on the disk from now; `keepAlives`: whether its client gets them during this wait. */
  wait(keepAlives: boolean): void {
    this.#since = this.#clock.now();
    this.#keepAlives = keepAlives;
    this.#boundTimer ??= this.#clock.setTimeout(this.#bound, this.#boundMs);
    if (keepAlives) this.#tickTimer ??= this.#clock.setTimeout(this.#tick, KEEPALIVE_MS);
  }

  /** The disk took something: the bound counts from now. */
  progress(): void {
    this.#since = this.#clock.now();
  }

  stop(): void {
    if (this.#tickTimer !== undefined) this.#clock.clearTimeout(this.#tickTimer);
    if (this.#boundTimer !== undefined) this.#clock.clearTimeout(this.#boundTimer);
    this.#tickTimer = this.#boundTimer = undefined;
  }

  /** The end report, with the keep-alives sent when there were any. */
  report(end: TransferEnd): TransferEnd {
    return this.#sent > 0 ? { ...end, keepAlives: this.#sent } : end;
  }

  readonly #tick = (): void => {
    this.#tickTimer = undefined;
    if (!this.#keepAlives || !this.#waiting() || this.#clock.now() - this.#since >= this.#boundMs) return;
    const cookie = (this.latest ??= this.#first());
    if (!cookie) return;
    this.#socket.send(cookie);
    this.#sent++;
    this.#tickTimer = this.#clock.setTimeout(this.#tick, KEEPALIVE_MS);
  };

  readonly #bound = (): void => {
    this.#boundTimer = undefined;
    if (!this.#waiting()) return;
    const idle = this.#clock.now() - this.#since;
    if (idle < this.#boundMs) this.#boundTimer = this.#clock.setTimeout(this.#bound, this.#boundMs - idle);
    else this.#giveUp(idle);
  };
}
