/**
 * The receiving side of a TFTP transfer, sans I/O: takes DATA in order,
 * ACKs each window's end (RFC 7440; lock-step is a window of 1) and a gap
 * once (the sender goes back there), answers a repeated last block (its ACK
 * was lost), resends the last ACK when the sender goes quiet, holds ACKs
 * while the owner cannot take more (flow control), and after the last block
 * lingers to re-ACK it. It never touches a socket or a file.
 */
import type { Clock, TimerHandle } from '../../clock.js';
import { blocksAhead, wireBlock } from '../../../protocols/tftp/packets.js';

export interface WindowReceiverInit {
  windowsize: number;
  blksize: number;
  /** The first block expected: 1, or where a resume starts. */
  firstBlock: number;
  /** Silence before the last ACK goes again; Infinity: never by itself (the owner calls resendAck()). */
  timeoutMs: number;
  /** ACKs resent in a row without new DATA before the sender counts as gone. */
  maxRetries: number;
  /** After the final ACK: quiet this long and the transfer is over; Infinity: the owner ends it (stop()). */
  dallyMs: number;
}

/** Why an ACK goes: an owner timing round trips times only 'window' and 'release' (Karn: never a repeat). */
export type AckReason = 'window' | 'gap' | 'repeat' | 'release' | 'final' | 'timeout';

export interface WindowReceiverIo {
  /** Sends an ACK for absolute block n. */
  sendAck(n: number, why: AckReason): void;
  /**
   * Block n in order: its bytes (a view, not kept). False: the owner refuses
   * it (too large, over a limit ...) and has ended the transfer itself.
   */
  deliver(n: number, data: Uint8Array): boolean;
  /** A DATA larger than blksize: without this it is ignored, with it the transfer ends (the owner says why). */
  oversize?(n: number, length: number): void;
  /** Whether an ACK may go now; false holds it until release(). */
  mayAck?(): boolean;
  /** The last block (shorter than blksize) is in; the final ACK waits for finish(). */
  complete(last: number): void;
  /** The sender went quiet (maxRetries ACKs unanswered). */
  gone(): void;
  /** The dally is over. */
  closed(): void;
}

export class WindowReceiver {
  readonly #s: WindowReceiverInit;
  readonly #io: WindowReceiverIo;
  readonly #clock: Clock;
  /** The next block wanted (absolute). */
  #expected: number;
  /** The last block acknowledged (absolute). */
  #lastAcked: number;
  #inWindow = 0;
  #gapAcked = false;
  #held = false;
  #retries = 0;
  #lastDataAt: number;
  #timer: TimerHandle | undefined;
  /** Whether the engine resends by itself (a finite timeoutMs). */
  readonly #timed: boolean;
  #state: 'idle' | 'receiving' | 'complete' | 'dallying' | 'done' = 'idle';

  constructor(init: WindowReceiverInit, io: WindowReceiverIo, components: { clock: Clock }) {
    this.#s = init;
    this.#io = io;
    this.#clock = components.clock;
    this.#expected = init.firstBlock;
    this.#lastAcked = init.firstBlock - 1;
    this.#lastDataAt = this.#clock.now();
    this.#timed = Number.isFinite(init.timeoutMs);
  }

  /** The next block wanted (absolute). */
  get expected(): number {
    return this.#expected;
  }
  get lastAcked(): number {
    return this.#lastAcked;
  }
  /** Some block came in order (the sender is proven). */
  get started(): boolean {
    return this.#state !== 'idle';
  }
  get ackHeld(): boolean {
    return this.#held;
  }
  /** Blocks taken since the last ACK. */
  get inWindow(): number {
    return this.#inWindow;
  }

  /** A DATA packet: its 16-bit block number and payload. */
  data(wire: number, payload: Uint8Array): void {
    const st = this.#state;
    if (st === 'done') return;
    const expected = this.#expected;
    const ahead = blocksAhead(wire, expected);
    if (ahead !== 0) {
      if (st === 'complete' || st === 'dallying' || st === 'idle') {
        // The final ACK was lost: the last block came again.
        if (st === 'dallying' && wire === wireBlock(expected - 1)) this.#io.sendAck(expected - 1, 'repeat');
        return;
      }
      if (ahead < 0x8000) {
        // A block went missing: ACK the last one in order, once, so the sender resends from there.
        if (!this.#gapAcked && !this.#held) {
          this.#gapAcked = true;
          this.#ackOrHold(expected - 1, 'gap');
        }
      } else if (wire === wireBlock(expected - 1) && expected - 1 === this.#lastAcked && !this.#held) {
        // The block we last ACKed, again: the sender missed that ACK. A block inside the window
        // again is a resend we need not answer (the window's end is ACKed when it comes); an ACK
        // for it would end our window early and send the sender back once more.
        this.#ack(expected - 1, 'repeat');
      }
      return;
    }
    if (st !== 'idle' && st !== 'receiving') return;
    if (payload.length > this.#s.blksize) {
      // Larger than agreed: not a block of this transfer.
      if (this.#io.oversize) {
        this.#stop();
        this.#io.oversize(expected, payload.length);
      }
      return;
    }
    // RFC 7440: after a window the sender waits for its ACK. Blocks past it (the ACK held for flow
    // control, or a peer that does not wait) are not taken: nothing unacknowledged grows past a window.
    if (expected - this.#lastAcked > this.#s.windowsize) return;
    if (st === 'idle') {
      this.#state = 'receiving';
      this.#arm(this.#s.timeoutMs);
    }
    if (!this.#io.deliver(expected, payload)) {
      this.#stop();
      return;
    }
    if (this.#state === 'done') return;
    this.#expected = expected + 1;
    // Only the resend timer reads it: without one, no clock reading per block.
    if (this.#timed) this.#lastDataAt = this.#clock.now();
    this.#retries = 0;
    this.#gapAcked = false;
    if (payload.length < this.#s.blksize) {
      this.#state = 'complete';
      this.#io.complete(expected);
      return;
    }
    if (++this.#inWindow >= this.#s.windowsize) this.#ackOrHold(expected, 'window');
  }

  /** The owner can take more: the held ACK goes. */
  release(): void {
    if (!this.#held || this.#state !== 'receiving') return;
    this.#held = false;
    this.#lastDataAt = this.#clock.now();
    this.#ack(this.#expected - 1, 'release');
  }

  /** After complete(): the final ACK, then the dally. */
  finish(): void {
    if (this.#state !== 'complete') return;
    this.#state = 'dallying';
    this.#ack(this.#expected - 1, 'final');
    this.#lastDataAt = this.#clock.now();
    this.#disarm();
    this.#arm(this.#s.dallyMs);
  }

  /** Ends it: nothing more is sent, no timer. */
  stop(): void {
    this.#stop();
  }

  /** Re-sends the last ACK now (e.g. a repeated request before any DATA). */
  resendAck(): void {
    if (this.#state !== 'done') this.#io.sendAck(this.#lastAcked, 'timeout');
  }

  #stop(): void {
    this.#state = 'done';
    this.#disarm();
  }

  /** An ACK that lets the sender go on (a window's end, a gap): while the owner cannot take more it waits for release(). */
  #ackOrHold(n: number, why: AckReason): void {
    if (this.#io.mayAck && !this.#io.mayAck()) {
      this.#held = true;
      this.#inWindow = 0;
    } else this.#ack(n, why);
  }

  #ack(n: number, why: AckReason): void {
    this.#lastAcked = n;
    this.#inWindow = 0;
    this.#io.sendAck(n, why);
  }

  #arm(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.#timer = this.#clock.setTimeout(this.#onTimer, ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const st = this.#state;
    if (st === 'done' || st === 'idle') return;
    const idle = this.#clock.now() - this.#lastDataAt;
    if (st === 'dallying') {
      if (idle >= this.#s.dallyMs) {
        this.#stop();
        this.#io.closed();
      } else this.#arm(this.#s.dallyMs - idle);
      return;
    }
    const timeoutMs = this.#s.timeoutMs;
    if (idle < timeoutMs) {
      this.#arm(timeoutMs - idle);
      return;
    }
    this.#lastDataAt = this.#clock.now();
    // Waiting for the owner (held ACK, or storing the last block) is not the sender's silence.
    if (st === 'receiving' && !this.#held) {
      if (++this.#retries > this.#s.maxRetries) {
        this.#stop();
        this.#io.gone();
        return;
      }
      this.#io.sendAck(this.#lastAcked, 'timeout');
    }
    this.#arm(timeoutMs);
  };
}
