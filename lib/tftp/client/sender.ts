/**
 * The sending side of one TFTP transfer after the options are agreed, for
 * `put` and the gateway: a thin adapter of the engine's WindowSender to a
 * UDP socket and a OutgoingBlocks (blocks that may not all be here yet).
 */
import type { Socket } from 'node:dgram';
import { dataHeader } from '../../../protocols/tftp/packets.js';
import type { Clock } from '../../clock.js';
import { WindowSender } from '../engine/sender.js';

export interface OutgoingBlocks {
  /**
   * Block n (1-based, absolute) at `blksize`: its bytes (in up to two parts),
   * or undefined when they are not all here yet.
   */
  block(n: number, blksize: number): Uint8Array[] | undefined;
  /** Total bytes, once known. */
  readonly total: number | undefined;
}

interface SenderSettings {
  blksize: number;
  windowsize: number;
  /** The longest wait before a retransmission. */
  timeoutMs: number;
  /** The shortest: in between it follows the measured round trip. */
  minTimeoutMs: number;
  /** Given up after this long without an ACK that moves forward (Infinity: the owner decides). */
  giveUpMs: number;
  /** The first block to send: 1, or where a cookie resumes. Default 1. */
  firstBlock?: number;
}

interface SenderEvents {
  /** The last block was acknowledged. */
  onDone(): void;
  /** The receiver stopped acknowledging. */
  onGone(): void;
  /** An ACK moved the transfer forward to `acked` (absolute block). */
  onAcked?(acked: number): void;
}

const EMPTY: Uint8Array[] = [];

export class BlockSender {
  readonly #engine: WindowSender;

  constructor(socket: Socket, peer: { host: string; port: number }, source: OutgoingBlocks, s: SenderSettings, events: SenderEvents, clock: Clock) {
    let lastBlock = Number.POSITIVE_INFINITY;
    this.#engine = new WindowSender(
      { windowsize: s.windowsize, firstBlock: s.firstBlock ?? 1, timeoutMs: s.timeoutMs, minTimeoutMs: s.minTimeoutMs, giveUpMs: s.giveUpMs },
      {
        send: (n) => {
          const parts = source.block(n, s.blksize);
          if (!parts) return false;
          socket.send(parts.length === 0 ? dataHeader(n) : [dataHeader(n), ...parts], peer.port, peer.host);
          return true;
        },
        lastBlock: () => {
          if (lastBlock === Number.POSITIVE_INFINITY && source.total !== undefined) lastBlock = Math.floor(source.total / s.blksize) + 1;
          return lastBlock;
        },
        acked: (k) => events.onAcked?.(k),
        done: () => events.onDone(),
        gone: () => events.onGone(),
      },
      { clock },
    );
  }

  get acked(): number {
    return this.#engine.acked;
  }

  get done(): boolean {
    return this.#engine.done;
  }

  /** The retransmission timeout once a round trip is measured; undefined before. */
  get rtoMs(): number | undefined {
    return this.#engine.srtt > 0 ? this.#engine.rto : undefined;
  }

  /** The first block alone, no timer: for a receiver whose address is not proven yet (again on each repeated request). */
  sendFirst(): void {
    this.#engine.sendFirst();
  }

  /** Windows and retransmissions from now on; `rttMs`: a round trip timed before (see WindowSender.start). */
  start(rttMs?: number): void {
    this.#engine.start(rttMs);
  }

  /** An ACK from the receiver (its 16-bit block number). */
  ack(wire: number): void {
    this.#engine.ack(wire);
  }

  /** The source has more bytes: send what the window was waiting for. */
  more(): void {
    this.#engine.more();
  }

  stop(): void {
    this.#engine.stop();
  }
}

/** Hears from an upload's source whose block() said "not here yet". */
export interface UploadSourceWatcher {
  /** Awaited bytes are here. */
  more(): void;
  /** The source cannot serve the upload (a local read failed). */
  fail(err: Error): void;
}

/** The blocks of an upload: the size is known from the start. */
export interface UploadSource extends OutgoingBlocks {
  readonly total: number;
  /** Sources that may answer "not yet" tell the watcher when to ask again. */
  watch?(w: UploadSourceWatcher | undefined): void;
}

/** A whole file in memory as a block source. */
export class BufferSource implements UploadSource {
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  get total(): number {
    return this.#bytes.length;
  }
  block(n: number, blksize: number): Uint8Array[] | undefined {
    const start = (n - 1) * blksize;
    if (start > this.#bytes.length) return undefined;
    if (start === this.#bytes.length) return EMPTY;
    return [this.#bytes.subarray(start, Math.min(start + blksize, this.#bytes.length))];
  }
}
