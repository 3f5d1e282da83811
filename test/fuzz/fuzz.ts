/**
 * Mutation fuzzing of every decoder: ASAP, ENRP, TFTP and the stream framer.
 * Each input is derived from (seed, target, index) alone, so any failure is
 * replayed with `--seed S --target T --index I`.
 */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { DecodeError } from '../../protocols/errors.js';
import { StreamFramer } from '../../protocols/framing.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/index.js';
import { wireSamples } from '../../protocols/samples.js';
import { TftpOpcode, decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/index.js';
import type { TftpMode, TftpPacket } from '../../protocols/tftp/index.js';
import { asapMessage, enrpMessage } from '../protocols/arbitraries.js';

// ---------------------------------------------------------------- randomness

/** mulberry32: small, fast, and good enough to pick mutations. */
export class Prng {
  #s: number;

  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  u32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** 0..n-1 */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Independent streams per (seed, target, index, purpose). */
function inputRng(seed: number, target: string, index: number, purpose: number): Prng {
  return new Prng(fmix32(fmix32(fmix32(seed ^ nameHash(target)) ^ index) ^ purpose));
}

// ---------------------------------------------------------------- mutations

function u16At(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

function setU16(b: Uint8Array, at: number, v: number): void {
  if (at + 1 >= b.length) return;
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A random offset, 4-aligned plus `phase` half the time (where RSerPool TLV fields sit). */
function fieldOffset(rng: Prng, length: number, phase: number): number {
  if (length < 2) return 0;
  if (rng.chance(0.5)) {
    const slots = Math.floor((length - 2 - phase) / 4) + 1;
    if (slots > 0) return rng.int(slots) * 4 + phase;
  }
  return rng.int(length - 1);
}

const TYPE_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x3fff, 0x4000, 0x7fff, 0x8000, 0x803f, 0xbfff, 0xc000, 0xffff];

type Mutation = (b: Uint8Array, rng: Prng, corpus: readonly Uint8Array[]) => Uint8Array;

const MUTATIONS: readonly Mutation[] = [
  function flipBits(b, rng) {
    if (b.length === 0) return b;
    for (let n = 1 + rng.int(4); n > 0; n--) {
      const i = rng.int(b.length);
      b[i] = b[i]! ^ (1 << rng.int(8));
    }
    return b;
  },
  function setByte(b, rng) {
    if (b.length === 0) return b;
    b[rng.int(b.length)] = rng.pick([0x00, 0xff, 0x7f, 0x80, 0x01, rng.u32() & 0xff]);
    return b;
  },
  function setLength(b, rng) {
    // Length fields of the message header and of every parameter sit at 4k+2.
    const at = fieldOffset(rng, b.length, 2);
    const cur = u16At(b, at);
    const remaining = b.length - at + 2;
    setU16(
      b,
      at,
      rng.pick([0, 1, 3, 4, 5, 7, 8, cur - 1, cur + 1, cur + 3, cur + 4, remaining, remaining + 1, remaining - 1, 0x7fff, 0x8000, 0xfffc, 0xffff]) & 0xffff,
    );
    return b;
  },
  function setType(b, rng) {
    setU16(b, fieldOffset(rng, b.length, 0), rng.pick(TYPE_VALUES));
    return b;
  },
  function truncate(b, rng) {
    if (b.length === 0) return b;
    const n = rng.chance(0.5) ? rng.int(b.length) : Math.min(b.length - 1, rng.int(Math.ceil(b.length / 4)) * 4);
    return b.subarray(0, n);
  },
  function extend(b, rng) {
    const n = 1 + rng.int(64);
    const junk = rng.chance(0.5) ? rng.bytes(n) : new Uint8Array(n);
    return concat(b, junk);
  },
  function splice(b, rng, corpus) {
    const other = rng.pick(corpus);
    return concat(b.subarray(0, rng.int(b.length + 1)), other.subarray(rng.int(other.length + 1)));
  },
  function append(b, rng, corpus) {
    return concat(b, rng.pick(corpus));
  },
  function duplicateRegion(b, rng) {
    if (b.length < 8) return b;
    // Prefer a whole parameter: a 4-aligned start whose length field fits.
    const start = fieldOffset(rng, b.length - 4, 0);
    const tlvLength = (u16At(b, start + 2) + 3) & ~3;
    const end = tlvLength >= 4 && start + tlvLength <= b.length ? start + tlvLength : start + 1 + rng.int(b.length - start);
    return concat(b.subarray(0, end), b.subarray(start, end), b.subarray(end));
  },
  function deleteRegion(b, rng) {
    if (b.length < 2) return b;
    const start = rng.int(b.length);
    const end = start + 1 + rng.int(Math.min(64, b.length - start));
    return concat(b.subarray(0, start), b.subarray(end));
  },
  function insertBytes(b, rng) {
    const at = rng.int(b.length + 1);
    const ins = rng.chance(0.5) ? rng.bytes(1 + rng.int(8)) : Uint8Array.of(rng.pick([0, 0xff, 0x41, 0x30]));
    return concat(b.subarray(0, at), ins, b.subarray(at));
  },
];

export interface GenerateOptions {
  /** After mutating, set the header's 16-bit length (bytes 2-3) to the input length half the time. */
  fixLength: boolean;
}

/** One input: pure random bytes, an intact corpus entry, or a corpus entry with 1..4 stacked mutations. */
export function generateInput(rng: Prng, corpus: readonly Uint8Array[], opts: GenerateOptions): Uint8Array {
  const roll = rng.int(100);
  if (roll < 10 || corpus.length === 0) return rng.bytes(rng.int(2049));
  let b: Uint8Array = rng.pick(corpus).slice();
  if (roll < 15) return b;
  for (let n = 1 + (rng.chance(0.5) ? 0 : rng.int(4)); n > 0; n--) b = rng.pick(MUTATIONS)(b, rng, corpus);
  if (opts.fixLength && b.length >= 4 && b.length <= 0xffff && rng.chance(0.5)) setU16(b, 2, b.length);
  return b;
}

// ---------------------------------------------------------------- targets

/** Thrown by a target when an input decoded but a check on it failed. */
export class FuzzCheckFailure extends Error {
  override readonly name = 'FuzzCheckFailure';
  constructor(
    readonly kind: 'round-trip' | 'chunking',
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

export interface FuzzTarget {
  readonly name: string;
  /** Valid encodings the mutations start from. */
  readonly corpus: readonly Uint8Array[];
  generate(rng: Prng): Uint8Array;
  /** Returns when the input decoded and passed its checks; a DecodeError means refused; anything else is a failure. */
  run(input: Uint8Array, rng: Prng): void;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/** decode; if it decodes, encode -> decode -> encode must give the same bytes as the first encode. */
export function codecTarget<T>(
  name: string,
  corpus: readonly Uint8Array[],
  decode: (bytes: Uint8Array) => T,
  encode: (value: T) => Uint8Array,
  opts: GenerateOptions,
): FuzzTarget {
  return {
    name,
    corpus,
    generate: (rng) => generateInput(rng, corpus, opts),
    run(input) {
      const value = decode(input);
      let first: Uint8Array;
      let second: Uint8Array;
      try {
        first = encode(value);
        second = encode(decode(first));
      } catch (cause) {
        throw new FuzzCheckFailure('round-trip', `decoded, but re-encoding or decoding the re-encoding threw: ${String(cause)}`, { cause });
      }
      if (!equalBytes(first, second)) {
        throw new FuzzCheckFailure('round-trip', `re-encodings differ: ${toHex(first)} then ${toHex(second)}`);
      }
    },
  };
}

interface FramerOutcome {
  frames: Uint8Array[];
  error: DecodeError | undefined;
  buffered: number;
}

function frameAll(chunks: readonly Uint8Array[], maxMessageSize: number | undefined): FramerOutcome {
  const framer = new StreamFramer(maxMessageSize === undefined ? {} : { maxMessageSize });
  const frames: Uint8Array[] = [];
  // A trailing empty push surfaces a fault found after frames the last real push returned.
  for (const c of [...chunks, new Uint8Array(0)]) {
    try {
      frames.push(...framer.push(c));
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // A failed framer must keep refusing: the stream has lost sync.
      let again: unknown;
      try {
        framer.push(new Uint8Array(0));
      } catch (e2) {
        again = e2;
      }
      if (!(again instanceof DecodeError) || again.code !== e.code) {
        throw new FuzzCheckFailure('chunking', 'framer accepted input after a framing error');
      }
      return { frames, error: e, buffered: framer.buffered };
    }
  }
  return { frames, error: undefined, buffered: framer.buffered };
}

/**
 * A stream of whole, mutated and random messages, pushed once whole and once
 * cut at random points: both must give the same frames and the same error
 * (see the note on frames lost to a throwing push).
 */
export function framerTarget(corpus: readonly Uint8Array[]): FuzzTarget {
  const opts = { fixLength: true };
  return {
    name: 'framer',
    corpus,
    generate(rng) {
      const parts: Uint8Array[] = [];
      for (let n = 1 + rng.int(6); n > 0; n--) {
        const roll = rng.int(100);
        if (roll < 55 && corpus.length > 0) parts.push(rng.pick(corpus));
        else if (roll < 90) parts.push(generateInput(rng, corpus, opts));
        else parts.push(rng.bytes(rng.int(16)));
      }
      return concat(...parts);
    },
    run(input, rng) {
      // Now and then a small limit, so TOO_LARGE is reached too.
      const max = rng.chance(0.75) ? undefined : rng.pick([64, 256, 1024]);
      const whole = frameAll([input], max);
      const chunks: Uint8Array[] = [];
      let pos = 0;
      while (pos < input.length) {
        const n = rng.chance(0.1) ? 0 : 1 + rng.int(rng.chance(0.5) ? 8 : 256);
        chunks.push(input.subarray(pos, pos + n));
        pos += n;
      }
      const cut = frameAll(chunks, max);
      const sameError = whole.error?.code === cut.error?.code && whole.error?.offset === cut.error?.offset;
      const sameFrames = whole.frames.length === cut.frames.length && whole.frames.every((f, i) => equalBytes(f, cut.frames[i]!));
      if (!sameError || !sameFrames) {
        throw new FuzzCheckFailure(
          'chunking',
          `whole: ${whole.frames.length} frames, ${whole.error?.message ?? 'no error'}; in ${chunks.length} chunks: ${cut.frames.length} frames, ${cut.error?.message ?? 'no error'}`,
        );
      }
      // Frames are the input's leading bytes, back to back.
      const framed = concat(...cut.frames);
      if (!equalBytes(framed, input.subarray(0, framed.length))) throw new FuzzCheckFailure('chunking', 'frames are not the input in order');
      if (cut.error) throw cut.error;
      if (framed.length + cut.buffered !== input.length) {
        throw new FuzzCheckFailure('chunking', `${framed.length} bytes framed + ${cut.buffered} buffered != ${input.length} pushed`);
      }
    },
  };
}

/** A spread of valid TFTP packets: every opcode, modes, options, block sizes. */
export function tftpCorpus(rng: Prng, n = 200): Uint8Array[] {
  const modes: TftpMode[] = ['netascii', 'octet', 'mail'];
  const optionNames = ['blksize', 'timeout', 'tsize', 'windowsize', 'utimeout', 'rserpool-cookie', 'x'];
  const optionValues = ['0', '1', '8', '255', '256', '512', '1428', '65464', '65535', '65536', '', 'abc', '9007199254740993'];
  const options = (): Array<[string, string]> => {
    const out: Array<[string, string]> = [];
    for (let k = rng.int(5); k > 0; k--) out.push([rng.pick(optionNames), rng.pick(optionValues)]);
    return out;
  };
  const filename = (): string => rng.pick(['a', 'boot/pxelinux.0', 'images/kernel-6.1.img', 'fichier-été', '../../etc/passwd', 'x'.repeat(200)]);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    let p: TftpPacket;
    switch (i % 6) {
      case 0:
        p = { opcode: TftpOpcode.Rrq, filename: filename(), mode: rng.pick(modes), options: options() };
        break;
      case 1:
        p = { opcode: TftpOpcode.Wrq, filename: filename(), mode: rng.pick(modes), options: options() };
        break;
      case 2:
        p = {
          opcode: TftpOpcode.Data,
          block: rng.pick([0, 1, 2, 0xfffe, 0xffff, rng.int(0x10000)]),
          data: rng.bytes(rng.pick([0, 1, 7, 8, 511, 512, 1428, rng.int(2048)])),
        };
        break;
      case 3:
        p = { opcode: TftpOpcode.Ack, block: rng.int(0x10000) };
        break;
      case 4:
        p = { opcode: TftpOpcode.Error, code: rng.int(9), message: rng.pick(['', 'File not found', 'Option negotiation refused', 'ünïcödé']) };
        break;
      default:
        p = { opcode: TftpOpcode.Oack, options: options() };
    }
    out.push(encodeTftpPacket(p));
  }
  return out;
}

/** ASAP, ENRP, TFTP and the framer; corpora from protocols/samples.ts, the test arbitraries and tftpCorpus. */
export function defaultFuzzTargets(seed: number): FuzzTarget[] {
  const samples = wireSamples();
  // The hand-written samples, plus generated messages for variety (same seed, same corpus).
  const asap = [
    ...samples.filter((s) => s.proto === 'asap').map((s) => s.bytes),
    ...fc.sample(asapMessage, { seed: seed | 0, numRuns: 200 }).map(encodeAsapMessage),
  ];
  const enrp = [
    ...samples.filter((s) => s.proto === 'enrp').map((s) => s.bytes),
    ...fc.sample(enrpMessage, { seed: (seed ^ 0x5a5a5a5a) | 0, numRuns: 200 }).map(encodeEnrpMessage),
  ];
  const tlv = { fixLength: true };
  return [
    codecTarget('asap', asap, decodeAsapMessage, encodeAsapMessage, tlv),
    codecTarget('enrp', enrp, decodeEnrpMessage, encodeEnrpMessage, tlv),
    codecTarget('tftp', tftpCorpus(new Prng(fmix32(seed ^ 0x7f7f))), decodeTftpPacket, encodeTftpPacket, { fixLength: false }),
    framerTarget([...asap, ...enrp]),
  ];
}

// ---------------------------------------------------------------- runner

export interface FuzzInit {
  /** Inputs in total, split evenly across the targets. */
  count: number;
  seed: number;
  targets?: readonly FuzzTarget[];
  /** Run only the targets with these names. */
  only?: readonly string[];
  /** Replay one input of each selected target instead of a campaign. */
  index?: number;
  /** A run taking longer (and again on a retry) is a hang. Default 50 ms. */
  hangMs?: number;
  /** Stop after this many failures. Default 10. */
  maxFailures?: number;
  /** Injected for tests of the hang check. */
  now?: () => number;
  onProgress?: (target: string, done: number, total: number) => void;
  /** Called before each input runs, so a watchdog outside can name an input that never returns. */
  onInput?: (target: string, index: number) => void;
}

/** The input `runFuzz` feeds target `name` at `index` for `seed` (to report an input that never returned). */
export function fuzzInput(seed: number, name: string, index: number, targets?: readonly FuzzTarget[]): Uint8Array | undefined {
  const target = (targets ?? defaultFuzzTargets(seed >>> 0)).find((t) => t.name === name);
  return target?.generate(inputRng(seed >>> 0, name, index, 0));
}

export type FuzzFailureKind = 'exception' | 'bad-offset' | 'hang' | 'round-trip' | 'chunking';

export interface FuzzFailure {
  seed: number;
  target: string;
  index: number;
  kind: FuzzFailureKind;
  error: string;
  hex: string;
}

export interface FuzzTargetStats {
  target: string;
  count: number;
  decoded: number;
  refused: number;
  /** DecodeError codes and how often each was thrown. */
  refusedByCode: Record<string, number>;
  failures: number;
  /** The slowest single run, in ms. */
  slowestMs: number;
}

export interface FuzzReport {
  seed: number;
  count: number;
  elapsedMs: number;
  targets: FuzzTargetStats[];
  failures: FuzzFailure[];
}

type Outcome = { kind: 'decoded' } | { kind: 'refused'; code: string } | { kind: 'failed'; failure: FuzzFailureKind; error: string };

function runOne(target: FuzzTarget, input: Uint8Array, rng: Prng): Outcome {
  try {
    target.run(input, rng);
    return { kind: 'decoded' };
  } catch (e) {
    if (e instanceof DecodeError) {
      // The offset must point into the input (or just past it) to be of use to anyone.
      if (Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= input.length) return { kind: 'refused', code: e.code };
      return { kind: 'failed', failure: 'bad-offset', error: `${e.message}: offset outside the ${input.length}-byte input` };
    }
    if (e instanceof FuzzCheckFailure) return { kind: 'failed', failure: e.kind, error: e.message };
    const error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    return { kind: 'failed', failure: 'exception', error };
  }
}

export function runFuzz(init: FuzzInit): FuzzReport {
  const now = init.now ?? (() => performance.now());
  const hangMs = init.hangMs ?? 50;
  const maxFailures = init.maxFailures ?? 10;
  const seed = init.seed >>> 0;
  const all = init.targets ?? defaultFuzzTargets(seed);
  const targets = init.only ? all.filter((t) => init.only!.includes(t.name)) : all;
  const started = now();
  const failures: FuzzFailure[] = [];
  const stats: FuzzTargetStats[] = [];
  const base = Math.floor(init.count / Math.max(1, targets.length));

  targets.forEach((target, ti) => {
    const total = init.index !== undefined ? 1 : base + (ti < init.count % targets.length ? 1 : 0);
    const s: FuzzTargetStats = { target: target.name, count: 0, decoded: 0, refused: 0, refusedByCode: {}, failures: 0, slowestMs: 0 };
    stats.push(s);
    for (let k = 0; k < total && failures.length < maxFailures; k++) {
      const index = init.index ?? k;
      const input = target.generate(inputRng(seed, target.name, index, 0));
      init.onInput?.(target.name, index);
      const t0 = now();
      let outcome = runOne(target, input, inputRng(seed, target.name, index, 1));
      let took = now() - t0;
      if (took > hangMs && outcome.kind !== 'failed') {
        // A GC pause can stall one run; a real hang repeats.
        const t1 = now();
        outcome = runOne(target, input, inputRng(seed, target.name, index, 1));
        took = Math.min(took, now() - t1);
        if (took > hangMs && outcome.kind !== 'failed') {
          outcome = { kind: 'failed', failure: 'hang', error: `took ${took.toFixed(1)} ms (limit ${hangMs} ms)` };
        }
      }
      s.count++;
      s.slowestMs = Math.max(s.slowestMs, took);
      if (outcome.kind === 'decoded') s.decoded++;
      else if (outcome.kind === 'refused') {
        s.refused++;
        s.refusedByCode[outcome.code] = (s.refusedByCode[outcome.code] ?? 0) + 1;
      } else {
        s.failures++;
        failures.push({ seed, target: target.name, index, kind: outcome.failure, error: outcome.error, hex: toHex(input) });
      }
      if (init.onProgress && (k + 1) % 50_000 === 0) init.onProgress(target.name, k + 1, total);
    }
  });

  return { seed, count: stats.reduce((n, s) => n + s.count, 0), elapsedMs: now() - started, targets: stats, failures };
}
