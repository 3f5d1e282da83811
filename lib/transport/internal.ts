/** Helpers shared by the transports; not exported from the package. */
import { MESSAGE_HEADER_LENGTH, paddedLength } from '../../protocols/framing.js';
import { AbortedError, RSerPoolError, TimeoutError } from '../errors.js';
import type { Clock } from '../clock.js';
import { InvalidMessageError, MessageTooLargeError } from './errors.js';

export const DEFAULTS = {
  connectTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  highWaterMark: 64 * 1024,
  partialMessageTimeoutMs: 10_000,
} as const;

/** Refuses, before anything is queued, a message the receiving framer would choke on. */
export function checkOutgoing(bytes: Uint8Array, maxMessageSize: number, framed: boolean): void {
  if (bytes.length > maxMessageSize) throw new MessageTooLargeError(bytes.length, maxMessageSize);
  if (!framed) return;
  if (bytes.length < MESSAGE_HEADER_LENGTH) {
    throw new InvalidMessageError(`a message of ${bytes.length} bytes cannot hold its ${MESSAGE_HEADER_LENGTH}-byte header`);
  }
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (length < MESSAGE_HEADER_LENGTH || paddedLength(length) !== bytes.length) {
    throw new InvalidMessageError(`header length ${length} does not frame a message of ${bytes.length} bytes (expected its size, padded to 4)`);
  }
}

interface CancellableOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  clock: Clock;
  /** What is being done, for the timeout message. */
  what: string;
}

/**
 * Runs an operation that the signal or the deadline may cut short. `start`
 * begins it and returns a cancel function, called once with the reason if
 * the operation has not settled: it must release whatever start acquired.
 */
export function cancellable<T>(
  opts: CancellableOptions,
  start: (resolve: (v: T) => void, reject: (e: RSerPoolError) => void) => (reason: RSerPoolError) => void,
): Promise<T> {
  const { signal, timeoutMs, clock, what } = opts;
  if (signal?.aborted) return Promise.reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const cleanup = (): void => {
      done = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const cancelWith = (reason: RSerPoolError): void => {
      if (done) return;
      cleanup();
      cancel(reason);
      reject(reason);
    };
    const onAbort = (): void => cancelWith(new AbortedError(`${what}: aborted`, { cause: signal?.reason }));
    const cancel = start(
      (v) => {
        if (done) return;
        cleanup();
        resolve(v);
      },
      (e) => {
        if (done) return;
        cleanup();
        reject(e);
      },
    );
    if (done) return;
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      timer = clock.setTimeout(() => cancelWith(new TimeoutError(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    }
  });
}
