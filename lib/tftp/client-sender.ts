/**
 * The sending side of one TFTP transfer, after the options are agreed:
 * windows of DATA (RFC 7440; lock-step is a window of 1), the next window on
 * each ACK that moves forward (from the block after it, so a gap ACK makes it
 * resend), duplicate ACKs ignored (no Sorcerer's Apprentice), the window sent
 * again after a timeout. The owner feeds it ACKs from its socket handler and
 * calls tick() periodically. Used by `put` and by the gateway.
 */
import type { Socket } from 'node:dgram';
import { absoluteBlock, dataHeader } from '../../protocols/tftp/packets.js';

export interface BlockSource {
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
  timeoutMs: number;
  /** Timeouts in a row (with blocks outstanding) before the receiver counts as gone. */
  maxRetries: number;
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
  readonly #socket: Socket;
  readonly #host: string;
  readonly #port: number;
  readonly #source: BlockSource;
  readonly #s: SenderSettings;
  readonly #events: SenderEvents;
  /** Last block acknowledged (absolute). */
  #acked = 0;
  /** Highest block sent. */
  #sent = 0;
  #lastBlock = Number.POSITIVE_INFINITY;
  #lastProgressAt = 0;
  #lastSendAt = 0;
  #retries = 0;
  /** A block of the window was not in the source yet: send it when more arrives. */
  #starved = false;
  #done = false;
  #now: () => number;

  constructor(socket: Socket, peer: { host: string; port: number }, source: BlockSource, settings: SenderSettings, events: SenderEvents, now: () => number) {
    this.#socket = socket;
    this.#host = peer.host;
    this.#port = peer.port;
    this.#source = source;
    this.#s = settings;
    this.#events = events;
    this.#now = now;
  }

  get acked(): number {
    return this.#acked;
  }

  get starved(): boolean {
    return this.#starved;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Sends the first window. */
  start(): void {
    this.#lastProgressAt = this.#now();
    this.#sendWindow(1);
  }

  /** An ACK from the receiver (its 16-bit block number). */
  ack(wire: number): void {
    if (this.#done) return;
    const k = absoluteBlock(wire, this.#acked);
    if (k <= this.#acked || k > this.#sent) return;
    this.#acked = k;
    this.#retries = 0;
    this.#lastProgressAt = this.#now();
    this.#events.onAcked?.(k);
    if (k >= this.#lastBlockNow()) {
      this.#done = true;
      this.#events.onDone();
      return;
    }
    this.#sendWindow(k + 1);
  }

  /** The receiver asked again (its request was repeated): the first window again, before any ACK. */
  repeat(): void {
    if (!this.#done && this.#acked === 0) this.#sendWindow(1);
  }

  /** The source has more bytes: send what the window was waiting for. */
  more(): void {
    if (!this.#starved || this.#done) return;
    this.#starved = false;
    this.#sendWindow(this.#sent + 1);
  }

  tick(now: number): void {
    if (this.#done) return;
    if (now - this.#lastProgressAt < this.#s.timeoutMs || now - this.#lastSendAt < this.#s.timeoutMs) return;
    if (this.#sent <= this.#acked) {
      // Nothing outstanding: we wait for the source, not the receiver.
      this.#lastProgressAt = now;
      return;
    }
    if (++this.#retries > this.#s.maxRetries) {
      this.#done = true;
      this.#events.onGone();
      return;
    }
    this.#sendWindow(this.#acked + 1);
  }

  #lastBlockNow(): number {
    if (this.#lastBlock === Number.POSITIVE_INFINITY && this.#source.total !== undefined) {
      this.#lastBlock = Math.floor(this.#source.total / this.#s.blksize) + 1;
    }
    return this.#lastBlock;
  }

  /** Sends blocks from..acked+windowsize that the source has. */
  #sendWindow(from: number): void {
    const end = Math.min(this.#acked + this.#s.windowsize, this.#lastBlockNow());
    for (let n = from; n <= end; n++) {
      const parts = this.#source.block(n, this.#s.blksize);
      if (!parts) {
        this.#starved = true;
        break;
      }
      this.#sendBlock(n, parts);
      if (n > this.#sent) this.#sent = n;
    }
    this.#lastSendAt = this.#now();
  }

  #sendBlock(n: number, parts: Uint8Array[]): void {
    const header = dataHeader(n);
    this.#socket.send(parts.length === 0 ? header : [header, ...parts], this.#port, this.#host);
  }
}

/** A whole file in memory as a block source. */
export class BufferSource implements BlockSource {
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
