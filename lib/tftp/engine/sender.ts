/**
 * The sending side of a TFTP transfer, sans I/O: RFC 1350 lock-step or
 * RFC 7440 windows, block-number rollover, duplicate ACKs, rewinds, and a
 * retransmission timeout that follows the measured round trip (RFC 6298:
 * SRTT/RTTVAR, Karn's rule, exponential backoff). It never touches a socket
 * or a file: the owner hands it ACKs and sends the blocks it asks for. The
 * PE's read transfer, the client's upload and the gateway are adapters over
 * it.
 */
import type { Clock, TimerHandle } from '../../clock.js';
import { blocksAhead } from '../../../protocols/tftp/packets.js';
import { RttEstimator } from '../../rtt.js';

export interface WindowSenderInit {
  /** RFC 7440 window; 1 is lock-step. */
  windowsize: number;
  /** The first block to send: 1, or where a cookie resumes. */
  firstBlock: number;
  /** The longest wait before a retransmission (the negotiated timeout). */
  timeoutMs: number;
  /** The shortest; in between, the wait follows the measured round trip and doubles while nothing comes. */
  minTimeoutMs: number;
  /** Given up (onGone) after this long without progress; Infinity leaves it to the owner. */
  giveUpMs: number;
}

/** What the sender asks of its owner. */
export interface WindowSenderIo {
  /**
   * Sends absolute block n (on the wire as n mod 65536). False when its bytes
   * are not here yet: the owner calls more() once they are. `resend`: sent
   * before (a retransmission), so the owner may want to hear of send errors.
   */
  send(n: number, resend: boolean): boolean;
  /** The last block, or Infinity while the size is not known. */
  lastBlock(): number;
  /** An ACK moved the transfer forward from `from` to `to` (absolute blocks). */
  acked?(to: number, from: number): void;
  /** The last block was acknowledged. */
  done(): void;
  /** Nothing came for giveUpMs: the receiver is gone. */
  gone(): void;
  /** A window is out and its ACK awaited (where an owner may poll). */
  windowOut?(): void;
}

export interface WindowSenderComponents {
  clock: Clock;
  /**
   * Runs fn after the event loop has had a turn. With it, a window goes out
   * in bursts (halved on each loss, grown by one per clean window), so a
   * receiver slower than the sender loses less of a window's tail.
   */
  defer?: (fn: () => void) => void;
}

/** A floor for minTimeoutMs where the owner has no setting of its own: above it the wait follows the measured round trip. */
export const DEFAULT_MIN_TIMEOUT_MS = 5;

/** ACKs held back after a rewind, so a burst of duplicate ACKs resends a window once. */
const MIN_REWIND_HOLD_MS = 1;

export class WindowSender {
  readonly #io: WindowSenderIo;
  readonly #clock: Clock;
  readonly #defer: ((fn: () => void) => void) | undefined;
  readonly #windowsize: number;
  readonly #timeoutMs: number;
  readonly #minTimeoutMs: number;
  readonly #giveUpMs: number;
  /** Last block the receiver acknowledged. */
  #acked: number;
  /** Last block sent (back to the acknowledged one on a rewind). */
  #sent: number;
  /** The highest block ever sent: a rewind does not unsend what the receiver may have. */
  #highest: number;
  #running = false;
  #done = false;
  /** A block of the window was not here: sending waits for more(). */
  #starved = false;
  #paused = false;
  #burst: number;
  /** The acknowledged block at the last loss, so one window's losses count once. */
  #lossAt = -1;
  #lastProgressAt: number;
  #lastSendAt: number;
  #retries = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #rto: number;
  #rtt = new RttEstimator();
  /**
   * The estimate holds only the owner's handshake round trip: the first
   * window's sample replaces it, for that one may have timed the receiver's
   * own retransmission (a lost ACK 0 resent after its timeout).
   */
  #seeded = false;
  /** When the window now out was first sent, and whether any of it went twice (Karn: no sample then). */
  #windowAt = 0;
  #windowResent = false;
  #lastRewindAt = Number.NEGATIVE_INFINITY;
  /** The acknowledged block of a duplicate ACK that came during the hold: still no progress when it ends, it rewinds then. */
  #heldDup = -1;
  /** A block we sent again: the receiver that had it may ACK it twice, and one duplicate ACK of it is no loss. */
  #excused = -1;
  /**
   * Until when that duplicate may come: the resend's round trip, or just behind the ACK it pairs
   * with. Later it is the next window's loss (the resend's answer, or the ACK it pairs with, was lost).
   */
  #excusedUntil = 0;
  /**
   * Whether the resend under way may repeat blocks the receiver has (a timeout: its ACK may be
   * what was lost). After its ACK of a gap it has none of them (RFC 7440 receivers keep blocks in
   * order only), so each is ACKed once and a duplicate of the last one is the next window's loss.
   */
  #excusable = false;
  /** The receiver's last ACK came inside the window and no rewind followed: it lacks the block after it. */
  #gapAt = -1;

  constructor(init: WindowSenderInit, io: WindowSenderIo, components: WindowSenderComponents) {
    this.#io = io;
    this.#clock = components.clock;
    this.#defer = components.defer;
    this.#windowsize = init.windowsize;
    this.#timeoutMs = init.timeoutMs;
    this.#minTimeoutMs = Math.min(init.minTimeoutMs, init.timeoutMs);
    this.#giveUpMs = init.giveUpMs;
    this.#rto = init.timeoutMs;
    this.#burst = this.#defer ? init.windowsize : Number.POSITIVE_INFINITY;
    this.#acked = this.#sent = this.#highest = init.firstBlock - 1;
    this.#lastProgressAt = this.#lastSendAt = this.#clock.now();
  }

  /** Last block acknowledged (absolute). */
  get acked(): number {
    return this.#acked;
  }
  /** Highest block sent (absolute). */
  get highest(): number {
    return this.#highest;
  }
  get done(): boolean {
    return this.#done;
  }
  /** Smoothed round trip, ms (0 before the first sample). */
  get srtt(): number {
    return this.#rtt.srtt;
  }
  /** The retransmission timeout before backoff. */
  get rto(): number {
    return this.#rto;
  }

  /**
   * Sends the first block alone, with no timer: the answer to a request whose
   * address is not proven yet (sent again only when the request comes again).
   */
  sendFirst(): void {
    if (this.#done || this.#running) return;
    const n = this.#acked + 1;
    if (!this.#io.send(n, n <= this.#highest)) {
      // more() sends it once its bytes are here.
      this.#starved = true;
      return;
    }
    this.#sent = n;
    if (n > this.#highest) this.#highest = n;
    this.#windowAt = this.#clock.now();
  }

  /** Before anything is sent: the receiver holds the blocks up to `b` already, so the first block sent is b + 1. */
  skipTo(b: number): void {
    if (this.#running || this.#done || this.#highest !== this.#acked || b <= this.#acked) return;
    this.#acked = this.#sent = this.#highest = b;
  }

  /**
   * From now on windows and retransmissions: the receiver is proven.
   * `rttMs`: a round trip the owner timed before (its OACK, sent once, and
   * the ACK 0): without it the first retransmission waits the whole
   * timeout, and while every window loses its tail (a receiver's buffer
   * too small for the window) Karn's rule never lets a sample in.
   */
  start(rttMs?: number): void {
    if (this.#done || this.#running) return;
    if (rttMs !== undefined && rttMs >= 0) {
      this.#measured(rttMs, this.#clock.now());
      this.#seeded = true;
    }
    this.#running = true;
    this.#lastProgressAt = this.#lastSendAt = this.#clock.now();
    this.#arm(this.#rto);
    this.#pump(false);
  }

  /** Ends it: no more sends, no timer. */
  stop(): void {
    this.#done = true;
    this.#running = false;
    this.#disarm();
  }

  /** The bytes the sender was waiting for are here. */
  more(): void {
    if (!this.#starved || this.#done) return;
    this.#starved = false;
    if (this.#running) this.#pump(false);
    else if (this.#highest === this.#acked) this.sendFirst();
  }

  /** An ACK from the receiver: its 16-bit block number. */
  ack(wire: number): void {
    if (this.#done) return;
    const acked = this.#acked;
    const diff = blocksAhead(wire, acked);
    if (diff === 0) {
      this.#duplicateAck();
      return;
    }
    // Never sent: an old ACK from before a rollover, or a bogus one. An ACK for
    // blocks sent before a rewind counts: the receiver has them and may never repeat it.
    if (diff > this.#highest - acked) return;
    const b = acked + diff;
    if (b > this.#sent) this.#sent = b;
    const now = this.#clock.now();
    if (!this.#windowResent) {
      this.#measured(now - this.#windowAt, now);
      if (b === this.#sent && this.#burst < this.#windowsize) this.#burst++;
    }
    this.#acked = b;
    this.#lastProgressAt = this.#lastSendAt = now;
    this.#retries = 0;
    this.#io.acked?.(b, acked);
    if (this.#done) return;
    if (b >= this.#io.lastBlock()) {
      this.stop();
      this.#io.done();
      return;
    }
    if (b < this.#sent && now - this.#lastRewindAt >= this.#hold()) {
      // RFC 7440: an ACK inside the window means the receiver lost the block after it; go back there.
      this.#rewind(now);
    } else {
      // Inside the window soon after a rewind: the blocks after b went again less than a round trip
      // ago (atftp ACKs what it has at any block out of order, a duplicate too); sending them a third
      // time would only make more duplicates. A real loss among them is the timer's: from b + 1, no probe.
      if (b < this.#sent) this.#gapAt = b;
      this.#pump(false);
      // Its pair, if the receiver sent one, is queued right behind it; the next window's ACKs take a round trip.
      if (this.#excused === b) this.#excusedUntil = Math.max(this.#excusedUntil, this.#clock.now() + this.#rtt.srtt / 2);
    }
  }

  /**
   * An ACK for the block already acknowledged. Lock-step: ignored, only a
   * timeout resends (RFC 1123, no Sorcerer's Apprentice). Windowed: the
   * receiver lost the window's first block, so the window goes again, but
   * once per round trip however many duplicates come.
   */
  #duplicateAck(): void {
    if (!this.#running || this.#windowsize === 1 || this.#sent === this.#acked) return;
    const now = this.#clock.now();
    if (this.#acked === this.#excused) {
      this.#excused = -1;
      // The answer to our own resend of that block (the receiver had it): once, not a loss.
      if (now <= this.#excusedUntil) return;
    }
    const end = this.#lastRewindAt + this.#hold();
    if (now < end) {
      // Maybe one of the rewind's answers, maybe a receiver that lost the resend too and repeats
      // its ACK: it waits for the hold's end, not for a backed-off timeout it may not outlive.
      this.#heldDup = this.#acked;
      if (this.#timerAt > end) {
        this.#disarm();
        this.#arm(end - now);
      }
      return;
    }
    this.#rewind(now);
  }

  #rewind(now: number): void {
    this.#lastRewindAt = now;
    this.#lost();
    this.#sent = this.#acked;
    this.#excusable = false;
    this.#excused = -1;
    // Resent from the gap: its tail may be probed again.
    this.#gapAt = -1;
    this.#pump(true);
  }

  /** How long after a rewind the ACKs it causes may still come: no second rewind meanwhile. */
  #hold(): number {
    return Math.min(this.#timeoutMs / 2, Math.max(MIN_REWIND_HOLD_MS, 2 * this.#rtt.srtt));
  }

  #lost(): void {
    if (this.#lossAt === this.#acked) return;
    this.#lossAt = this.#acked;
    if (this.#defer) this.#burst = Math.max(Math.min(2, this.#windowsize), this.#burst >> 1);
  }

  readonly #resume = (): void => {
    this.#paused = false;
    if (!this.#done) this.#pump(false);
  };

  /** Sends up to the window's end; the hot path. */
  #pump(resend: boolean): void {
    if (this.#paused || !this.#running) return;
    if (this.#sent === this.#acked) {
      if (resend) this.#windowResent = true;
      else {
        this.#windowAt = this.#clock.now();
        this.#windowResent = false;
      }
    }
    const end = Math.min(this.#acked + this.#windowsize, this.#io.lastBlock());
    let budget = this.#burst;
    while (this.#sent < end) {
      if (budget-- === 0) {
        this.#paused = true;
        this.#defer!(this.#resume);
        return;
      }
      const n = this.#sent + 1;
      const again = resend || n <= this.#highest;
      if (!this.#io.send(n, again)) {
        this.#starved = true;
        return;
      }
      if (again) this.#excuse(this.#excusable ? n : -1);
      this.#sent = n;
      if (n > this.#highest) this.#highest = n;
    }
    this.#io.windowOut?.();
  }

  #measured(sample: number, now: number): void {
    if (this.#seeded) {
      this.#seeded = false;
      this.#rtt = new RttEstimator();
    }
    this.#rtt.sample(sample);
    this.#rto = Math.min(this.#timeoutMs, Math.max(this.#minTimeoutMs, this.#rtt.rto));
    // The timer may have been set for the long initial timeout: bring it closer.
    if (this.#running && this.#timerAt > now + 2 * this.#rto) {
      this.#disarm();
      this.#arm(this.#rto);
    }
  }

  #arm(ms: number): void {
    const now = this.#clock.now();
    // A held duplicate ACK is acted on at the hold's end at the latest.
    if (this.#heldDup >= 0) ms = Math.min(ms, Math.max(0, this.#lastRewindAt + this.#hold() - now));
    this.#timerAt = now + ms;
    this.#timer = this.#clock.setTimeout(this.#onTimer, ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  /** One timer, re-armed lazily: ACKs only stamp the time. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#done) return;
    const now = this.#clock.now();
    if (this.#heldDup >= 0 && (this.#heldDup !== this.#acked || this.#sent === this.#acked)) this.#heldDup = -1;
    if (this.#heldDup >= 0 && now >= this.#lastRewindAt + this.#hold()) {
      this.#heldDup = -1;
      this.#lastSendAt = now;
      this.#paused = false;
      this.#rewind(now);
      if (!this.#done) this.#arm(Math.min(this.#backoff(), this.#lastProgressAt + this.#giveUpMs - now));
      return;
    }
    // Nothing outstanding, waiting for our own bytes: not the receiver's fault.
    if (this.#starved && this.#sent === this.#acked) {
      this.#lastProgressAt = this.#lastSendAt = now;
      this.#arm(this.#timeoutMs);
      return;
    }
    if (now - this.#lastProgressAt >= this.#giveUpMs) {
      this.stop();
      this.#io.gone();
      return;
    }
    const due = this.#lastSendAt + this.#backoff();
    if (now < due) {
      this.#arm(due - now);
      return;
    }
    this.#retries++;
    this.#lastSendAt = now;
    if (this.#windowsize > 1) this.#lost();
    if (!this.#probe()) {
      this.#sent = this.#acked;
      this.#paused = false;
      // A timeout may repeat blocks the receiver has (its ACK was lost); not after it told us of a gap.
      this.#excusable = this.#gapAt !== this.#acked;
      this.#gapAt = -1;
      this.#pump(true);
    }
    if (!this.#done) this.#arm(Math.min(this.#backoff(), this.#lastProgressAt + this.#giveUpMs - now));
  };

  /**
   * First timeout of a window: send only its last block. The usual loss is
   * the window's tail (the receiver's socket buffer overflowing), and the one
   * block completes the window; a receiver missing more answers with the ACK
   * of what it has (RFC 7440), and the window goes again from there.
   */
  #probe(): boolean {
    if (this.#windowsize === 1 || this.#retries !== 1 || this.#sent <= this.#acked + 1) return false;
    // A receiver that lacks the block after its ACK drops the tail: the earliest unacknowledged goes (RFC 6298 5.4).
    if (this.#gapAt === this.#acked) return false;
    if (!this.#io.send(this.#sent, true)) return false;
    this.#excuse(this.#sent);
    this.#windowResent = true;
    return true;
  }

  /** Block n went again: its answer comes within a round trip (half of one spare: the next window's answers take two). */
  #excuse(n: number): void {
    this.#excused = n;
    if (n >= 0) this.#excusedUntil = this.#clock.now() + 1.5 * this.#rtt.srtt;
  }

  #backoff(): number {
    return Math.min(this.#timeoutMs, this.#rto * 2 ** this.#retries);
  }
}
