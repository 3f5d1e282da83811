/** Test helpers: wait on events with a deadline (never a fixed sleep), build framed messages. */
import type { Events } from '../../lib/transport/types.js';

/** The argument tuple of event K of an event map E. */
export type Args<E, K extends keyof E> = E[K] extends (...args: infer A) => void ? A : never;
type Handler = (...args: never[]) => void;
interface LooseEmitter {
  on(event: string, fn: Handler): unknown;
  off(event: string, fn: Handler): unknown;
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/** Resolves or rejects as `p` does, or rejects with DeadlineError after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Waits until `cond` holds, checked every 10 ms (for state no event announces), failing with DeadlineError after `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new DeadlineError(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface WaitForOptions<A extends unknown[]> {
  timeoutMs?: number;
  /** Only an emission whose arguments pass this resolves the wait. */
  filter?: (...args: A) => boolean;
}

/** The arguments of the next `event` emission (that passes `filter`), or DeadlineError. */
export function waitFor<E extends object, K extends keyof E & string>(
  emitter: Events<E>,
  event: K,
  opts: WaitForOptions<Args<E, K>> = {},
): Promise<Args<E, K>> {
  const { timeoutMs = 5_000, filter } = opts;
  let fn: ((...args: Args<E, K>) => void) | undefined;
  const p = new Promise<Args<E, K>>((resolve) => {
    fn = (...args) => {
      if (filter && !filter(...args)) return;
      resolve(args);
    };
    (emitter as unknown as LooseEmitter).on(event, fn as unknown as Handler);
  });
  return withDeadline(p, timeoutMs, `event '${event}'`).finally(() => (emitter as unknown as LooseEmitter).off(event, fn as unknown as Handler));
}

/** Collects `count` emissions of `event` (each one's arguments), or DeadlineError. */
export function collect<E extends object, K extends keyof E & string>(emitter: Events<E>, event: K, count: number, timeoutMs = 10_000): Promise<Args<E, K>[]> {
  const got: Args<E, K>[] = [];
  let fn: ((...args: Args<E, K>) => void) | undefined;
  const p = new Promise<Args<E, K>[]>((resolve) => {
    fn = (...args) => {
      got.push(args);
      if (got.length === count) resolve(got);
    };
    (emitter as unknown as LooseEmitter).on(event, fn as unknown as Handler);
    if (count === 0) resolve(got);
  });
  return withDeadline(p, timeoutMs, `${count} x '${event}' (got ${got.length})`).finally(() =>
    (emitter as unknown as LooseEmitter).off(event, fn as unknown as Handler),
  );
}

export interface FrameInit {
  /** Message type byte; default 0x0b (arbitrary, the transport does not look at it). */
  type?: number;
  flags?: number;
  payload?: Uint8Array;
}

/**
 * An ASAP/ENRP-framed message: type, flags, 16-bit length (header + payload,
 * unpadded), payload, zero padding to a multiple of 4.
 */
export function frameMessage(init: FrameInit = {}): Uint8Array {
  const payload = init.payload ?? new Uint8Array(0);
  const length = 4 + payload.length;
  if (length > 0xffff) throw new RangeError(`a framed message holds at most 65,535 bytes, not ${length}`);
  const out = new Uint8Array((length + 3) & ~3);
  out[0] = init.type ?? 0x0b;
  out[1] = init.flags ?? 0;
  out[2] = length >> 8;
  out[3] = length & 0xff;
  out.set(payload, 4);
  return out;
}

/**
 * A framed message of exactly `size` bytes (a multiple of 4, 8 to 65,536)
 * carrying `seq` and a seq-derived fill. 65,536 is the largest frame: length
 * field 65,535 plus one byte of padding.
 */
export function testMessage(size: number, seq: number): Uint8Array {
  if (size < 8 || size % 4 !== 0 || size > 0x10000) {
    throw new RangeError(`test message size ${size} must be a multiple of 4 from 8 to 65,536`);
  }
  const payload = new Uint8Array(Math.min(size, 0xffff) - 4);
  new DataView(payload.buffer).setUint32(0, seq >>> 0);
  for (let i = 4; i < payload.length; i++) payload[i] = (seq + i) & 0xff;
  return frameMessage({ payload });
}

/** The seq a testMessage carries. */
export function seqOf(msg: Uint8Array): number {
  return new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(4);
}
