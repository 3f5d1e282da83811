/**
 * Busy-polling for the peer's next packet. Waking a sleeping process costs
 * more than handling a datagram (tens of µs on a VM), and in lock-step that
 * wait is most of each block's time; so while a packet is due the event loop
 * polls instead of sleeping, for up to `spinMs`. It pays only when the peer
 * is on this host and costs a core meanwhile: off unless the peer is local or
 * the owner asks. A peer that twice in a row does not answer within spinMs
 * turns it off for 1, 2, 4 ... waits (up to maxSkip), so a slow one costs
 * next to nothing.
 */
import { networkInterfaces } from 'node:os';
import type { Clock } from '../../clock.js';

/** 'auto': only for a peer on this host. */
export type BusyPoll = 'auto' | 'on' | 'off';

export interface PollerInit {
  /** Poll at all. */
  enabled: boolean;
  /** How long one wait is polled. */
  spinMs: number;
  /** Turns at most per wait, whatever the clock says (a test's clock stands still). */
  maxTurns: number;
  /** The longest run of waits left unpolled after misses. */
  maxSkip: number;
}

export interface PollerComponents {
  clock: Clock;
  /** Runs fn after the event loop's poll phase (setImmediate). */
  schedule?: (fn: () => void) => void;
}

export class Poller {
  readonly #s: PollerInit;
  readonly #clock: Clock;
  readonly #schedule: (fn: () => void) => void;
  #spinning = false;
  #from = 0;
  #turns = 0;
  /** Waits in a row that ran out; waits left unpolled, and the length of the last such pause. */
  #misses = 0;
  #skip = 0;
  #backoff = 0;
  #stopped = false;

  constructor(init: PollerInit, components: PollerComponents) {
    this.#s = init;
    this.#clock = components.clock;
    this.#schedule = components.schedule ?? setImmediate;
  }

  get spinning(): boolean {
    return this.#spinning;
  }

  /** A packet is due (we sent a window or its ACK): poll for it, unless backing off. */
  expect(): void {
    if (!this.#s.enabled || this.#stopped) return;
    if (this.#spinning) {
      this.#from = this.#clock.now();
      this.#turns = 0;
    } else if (this.#skip > 0) this.#skip--;
    else {
      this.#spinning = true;
      this.#from = this.#clock.now();
      this.#turns = 0;
      this.#schedule(this.#spin);
    }
  }

  /** A packet came; `answer`: the one a wait was for (the first of a window, an ACK), so polling paid. `now`: the clock, when the caller has read it. */
  heard(answer: boolean, now?: number): void {
    if (!this.#spinning) return;
    if (answer) this.#misses = this.#backoff = 0;
    this.#from = now ?? this.#clock.now();
    this.#turns = 0;
  }

  /** The transfer is over: the next turn ends the polling. */
  stop(): void {
    this.#stopped = true;
  }

  readonly #spin = (): void => {
    if (this.#stopped) {
      this.#spinning = false;
      return;
    }
    if (++this.#turns > this.#s.maxTurns || this.#clock.now() - this.#from > this.#s.spinMs) {
      this.#spinning = false;
      // One late answer is a hiccup (a pause of the peer's); two in a row, a slow peer.
      if (++this.#misses >= 2) {
        this.#backoff = Math.min(this.#s.maxSkip, this.#backoff * 2 || 1);
        this.#skip = this.#backoff;
      }
      return;
    }
    this.#schedule(this.#spin);
  };
}

/** Whether `address` is one of this host's (loopback, or an address of a local interface). */
export function isLocalAddress(address: string): boolean {
  if (/^127\./.test(address) || address === '::1' || address === '::ffff:127.0.0.1') return true;
  const bare = address.replace(/^::ffff:/, '').replace(/%.*$/, '');
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.address === bare) return true;
  }
  return false;
}

/** Whether to poll for a peer at `address` under setting `mode`. */
export function pollsFor(mode: BusyPoll, address: string): boolean {
  return mode === 'on' || (mode === 'auto' && isLocalAddress(address));
}
