/**
 * Endpoint keep-alive supervision (RFC 5352 3.7). Every PE gets the same
 * interval and the same timeout, so due times only grow in the order they are
 * scheduled: two FIFO queues and one clock timer cover any number of PEs in
 * O(1) per event. Superseded entries are skipped by generation number.
 */
import type { Clock, TimerHandle } from '../clock.js';

interface KeepAliveInit {
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  /** Sends the keep-alive; false if it could not go out (it then times out like a lost one). */
  send(key: string): boolean;
  /** No ack within the timeout. */
  timedOut(key: string): void;
}

interface Due {
  key: string;
  gen: number;
  at: number;
}

class Fifo {
  #items: Due[] = [];
  #head = 0;
  get front(): Due | undefined {
    return this.#items[this.#head];
  }
  push(d: Due): void {
    this.#items.push(d);
  }
  shift(): void {
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

interface State {
  gen: number;
  awaiting: boolean;
}

export class KeepAliveSupervisor {
  readonly #init: KeepAliveInit;
  readonly #state = new Map<string, State>();
  readonly #sends = new Fifo();
  readonly #acks = new Fifo();
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  /** The deadlines now due have had their one extra turn of the event loop. */
  #graceGiven = false;
  #stopped = false;

  constructor(init: KeepAliveInit) {
    this.#init = init;
  }

  get size(): number {
    return this.#state.size;
  }

  /** Starts or restarts supervision: the PE just proved it is alive (registration or ack). */
  alive(key: string): void {
    if (this.#stopped) return;
    const s = this.#state.get(key);
    const gen = s ? s.gen + 1 : 0;
    this.#state.set(key, { gen, awaiting: false });
    this.#sends.push({ key, gen, at: this.#init.clock.now() + this.#init.intervalMs });
    this.#schedule();
  }

  /** An ack from a supervised PE: it is alive; false if the PE is not supervised. */
  ack(key: string): boolean {
    const s = this.#state.get(key);
    if (!s) return false;
    this.alive(key);
    return true;
  }

  /**
   * Sends a keep-alive now (evidence asked for by unreachable reports); no ack
   * within the timeout ends in timedOut. False if the PE is not supervised.
   */
  probe(key: string): boolean {
    const s = this.#state.get(key);
    if (!s || this.#stopped) return false;
    // A keep-alive already out decides just the same.
    if (s.awaiting) return true;
    s.awaiting = true;
    this.#acks.push({ key, gen: s.gen, at: this.#init.clock.now() + this.#init.timeoutMs });
    this.#init.send(key);
    this.#schedule();
    return true;
  }

  unwatch(key: string): void {
    this.#state.delete(key);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state.clear();
    this.#sends.clear();
    this.#acks.clear();
  }

  #schedule(): void {
    const at = Math.min(this.#sends.front?.at ?? Infinity, this.#acks.front?.at ?? Infinity);
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.#init.clock.setTimeout(() => this.#run(), Math.max(0, at - this.#init.clock.now()));
  }

  #run(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#init.clock.now();
    for (let d = this.#sends.front; d && d.at <= now; d = this.#sends.front) {
      this.#sends.shift();
      const s = this.#state.get(d.key);
      if (!s || s.gen !== d.gen || s.awaiting) continue;
      s.awaiting = true;
      this.#acks.push({ key: d.key, gen: d.gen, at: now + this.#init.timeoutMs });
      this.#init.send(d.key);
    }
    // Timers run before the sockets are read: after an event-loop stall (GC, SIGSTOP, a frozen VM)
    // the ACKs that arrived meanwhile are still unread. One more turn lets them count first.
    if (!this.#graceGiven && this.#acks.front && this.#acks.front.at <= now) {
      this.#graceGiven = true;
      this.#timerAt = now;
      this.#timer = this.#init.clock.setTimeout(() => this.#run(), 0);
      return;
    }
    this.#graceGiven = false;
    for (let d = this.#acks.front; d && d.at <= now; d = this.#acks.front) {
      this.#acks.shift();
      const s = this.#state.get(d.key);
      if (!s || s.gen !== d.gen || !s.awaiting) continue;
      this.#state.delete(d.key);
      this.#init.timedOut(d.key);
    }
    if (!this.#stopped) this.#schedule();
  }
}
