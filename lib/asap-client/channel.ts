/**
 * One ASAP connection seen from a PE or PU: encodes what it sends, decodes
 * what it receives, and pairs responses with requests (ASAP has no request
 * ids: a response is matched by type and handle, in the order asked, which a
 * stream keeps). Shared by lib/pool-element and lib/pool-user.
 */
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import type { AsapMessage } from '../../protocols/asap/types.js';
import type { Clock, TimerHandle } from '../clock.js';
import { AbortedError, TimeoutError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ConnectionClosedError, type Connection } from '../transport/index.js';

interface Waiter {
  match: (m: AsapMessage) => boolean;
  resolve: (m: AsapMessage) => void;
  reject: (e: Error) => void;
}

interface RequestOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export class AsapChannel {
  readonly conn: Connection;
  readonly url: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #waiters: Waiter[] = [];
  /** Messages no request waits for (keep-alives, unsolicited errors). */
  onMessage: (m: AsapMessage, ch: AsapChannel) => void = () => {};
  onClose: (ch: AsapChannel) => void = () => {};

  constructor(conn: Connection, url: string, clock: Clock, logger: Logger) {
    this.conn = conn;
    this.url = url;
    this.#clock = clock;
    this.#logger = logger;
    conn.on('message', (bytes) => this.#receive(bytes));
    conn.on('close', (err) => {
      const e = new ConnectionClosedError(`ASAP connection to ${url} closed`, { cause: err });
      for (const w of this.#waiters.splice(0)) w.reject(e);
      this.onClose(this);
    });
  }

  get open(): boolean {
    return this.conn.status === 'open';
  }

  /** Throws ConnectionClosedError (or the transport's error) if it cannot be queued. */
  send(m: AsapMessage): void {
    this.conn.send(encodeAsapMessage(m));
  }

  /** Sends `m` and resolves with the first message `match` accepts. */
  request<T extends AsapMessage>(m: AsapMessage, match: (r: AsapMessage) => r is T, opts: RequestOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new AbortedError('ASAP request aborted', { cause: opts.signal.reason }));
      const done = (): void => {
        this.#clock.clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const w: Waiter = {
        match,
        resolve: (r) => {
          done();
          resolve(r as T);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      const onAbort = (): void => w.reject(new AbortedError('ASAP request aborted', { cause: opts.signal?.reason }));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const timer: TimerHandle = this.#clock.setTimeout(
        () => w.reject(new TimeoutError(`no answer from ${this.url} within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      this.#waiters.push(w);
      try {
        this.send(m);
      } catch (err) {
        w.reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  #receive(bytes: Uint8Array): void {
    let m: AsapMessage;
    try {
      m = decodeAsapMessage(bytes);
    } catch (err) {
      this.#logger.info({ url: this.url, err: (err as Error).message }, 'undecodable ASAP message from registrar dropped');
      return;
    }
    const w = this.#waiters.find((x) => x.match(m));
    if (w) w.resolve(m);
    else this.onMessage(m, this);
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function handleBytes(h: Uint8Array | string): Uint8Array {
  // latin1, as the handlespace keys string handles.
  return typeof h === 'string' ? new Uint8Array(Buffer.from(h, 'latin1')) : h;
}

/** Waits ms on the clock; rejects with AbortedError if the signal fires first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('aborted', { cause: signal.reason }));
    const onAbort = (): void => {
      clock.clearTimeout(t);
      reject(new AbortedError('aborted', { cause: signal?.reason }));
    };
    const t = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
