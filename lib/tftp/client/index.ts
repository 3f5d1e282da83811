/**
 * The RSerPool-aware TFTP client: resolves a pool handle, downloads from the
 * PE the pool's policy picks, keeps the PE's state cookies, and when the PE
 * dies reports it unreachable and resumes at the next PE from the last
 * cookie (contract in ../contract.ts). `put` uploads to a writable PE.
 */
import type { BusyPoll } from '../engine/poll.js';
import { isIP } from 'node:net';
import type { Writable } from 'node:stream';
import { lookup } from 'node:dns/promises';
import type { PoolElementParameter } from '../../../protocols/parameters/types.js';
import { TFTP_MAX_BLOCK_SIZE, TFTP_MAX_WINDOW_SIZE, TFTP_MIN_BLOCK_SIZE, type TftpMode } from '../../../protocols/tftp/types.js';
import { systemClock, type Clock } from '../../clock.js';
import { InvalidOptionError, StateError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import { createPoolUser, type PoolUser } from '../../pool-user/index.js';
import type { TransportSet } from '../../transport/index.js';
import {
  TftpDownload,
  describeTarget,
  peKey,
  type DownloadProgress,
  type DownloadResult,
  type DownloadSettings,
  type FailoverInfo,
  type Negotiated,
  type PeFinder,
  type PeTarget,
  type ServedSpan,
  udpTarget,
} from './download.js';
import { NoPoolElementError } from './errors.js';
import { FileSink, RateLimitedSink, StreamSink, type DownloadSink } from './sink.js';
import { upload, type UploadProgress, type UploadResult } from './upload.js';
import { FileSource } from './file-source.js';
import { BufferSource } from './sender.js';

export type { PeTarget, ServedSpan, FailoverInfo, Negotiated, PeFinder, DownloadSink };
export { describeTarget, peKey };

export interface TftpClientInit {
  /** Registrar ASAP URLs (when no `pu` is given). */
  registrars?: string[];
  /** A registrar that has not answered a resolution (or a connect) this long is passed over for the next. Default 1 s; the first try of a resolution waits 250 ms (or 4 measured round trips) at most. */
  resolveTimeoutMs?: number;
  /** A pool user to resolve with (not closed by the client). */
  pu?: PoolUser;
  /** Asked of the PE. Default 1468 (a block fits an Ethernet frame). */
  blksize?: number;
  /** RFC 7440 window asked of the PE. Default 16. */
  windowsize?: number;
  /** Retransmit after this long without an answer. Default 200 ms. */
  timeoutMs?: number;
  /**
   * A PE silent this long is dead: report it and fail over. Given alone it is
   * fixed. Else it is the limit (default 600 ms, and what holds until a
   * round trip is measured): the wait follows the measured round trip
   * (RFC 6298 style) down to minDeadAfterMs.
   */
  deadAfterMs?: number;
  /** The floor of the measured dead-PE wait. Default 200 ms (deadAfterMs when only that is given). */
  minDeadAfterMs?: number;
  /** Poll for blocks instead of sleeping (a core busy meanwhile). Default 'auto': only for a PE on this host. */
  busyPoll?: BusyPoll;
  /** Blocks between state cookies; 0 (default) leaves it to the PE; false asks for none. */
  cookieInterval?: number | false;
  /** When a PE refuses the cookie, start over from byte 0 (files only) instead of failing. Default false. */
  restartOnRefusal?: boolean;
  /** PEs in a row that fail before sending a block, before giving up (with no other PE left, a silent one is asked again, as often). Default 8. */
  maxFailovers?: number;
  /** Compute the SHA-256 of each download. Default true. */
  sha256?: boolean;
  /** Local address of the client's sockets (default: loopback for a loopback PE, else any). */
  localAddress?: string;
  /** PEs asked for per resolution. Default 8. */
  items?: number;
}

export interface TftpClientComponents {
  clock?: Clock;
  logger?: Logger;
  transports?: TransportSet;
}

export interface TransferProgress {
  bytes: number;
  /** From tsize, when the PE told it. */
  total?: number;
  /** Recent rate. */
  bytesPerSecond: number;
  etaMs?: number;
  pe: PeTarget | undefined;
  failovers: number;
  elapsedMs: number;
}

export interface GetOptions {
  signal?: AbortSignal;
  onProgress?: (p: TransferProgress) => void;
  /** Default 250 ms. */
  progressIntervalMs?: number;
  onFailover?: (f: FailoverInfo) => void;
  onNegotiated?: (n: Negotiated) => void;
  /** The download started over from byte 0 (a refused cookie, with restartOnRefusal). */
  onRestart?: (reason: string) => void;
  mode?: TftpMode;
  /** At most this many bytes a second: the client holds its ACKs back (no limit when absent). */
  limitRate?: number;
}

export interface TftpGetResult extends DownloadResult {
  /** 10^6 bytes per second over the whole download. */
  mbPerSec: number;
}

export interface PutOptions {
  signal?: AbortSignal;
  onProgress?: (p: TransferProgress) => void;
  progressIntervalMs?: number;
  /** The upload went on at another PE (from the last cookie's block, or from byte 0 without one). */
  onFailover?: (f: FailoverInfo) => void;
  /** A PE refused the cookie: the upload started over there from byte 0. */
  onRestart?: (reason: string) => void;
}

export type TftpPutResult = UploadResult & { mbPerSec: number };

export interface TftpClient {
  /** Downloads `path` from the pool `handle` into a file (path) or a stream. */
  get(handle: string | Uint8Array, path: string, destination: string | Writable, opts?: GetOptions): Promise<TftpGetResult>;
  /** Uploads a file (path) or bytes to a writable PE of the pool. */
  put(handle: string | Uint8Array, path: string, source: string | Uint8Array, opts?: PutOptions): Promise<TftpPutResult>;
  /** Downloads from given PEs (their TFTP addresses), failing over among them in order; no registrar. */
  download(targets: PeTarget | PeTarget[], path: string, destination: string | Writable, opts?: GetOptions): Promise<TftpGetResult>;
  /** Downloads with a finder of your own (the gateway uses it); `sink` receives the bytes. */
  downloadTo(finder: PeFinder, path: string, sink: DownloadSink, opts?: GetOptions): Promise<TftpGetResult>;
  /** Nothing to wait for: the client resolves and binds per transfer. Refused after stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The same as stop(). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface ClientSettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  deadAfterMs: number;
  minDeadAfterMs: number;
  cookieInterval: number | undefined;
  restartOnRefusal: boolean;
  maxFailovers: number;
  sha256: boolean;
  busyPoll: BusyPoll;
  localAddress?: string;
}

function checkInt(name: string, v: number | undefined, min: number, max: number, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min || x > max) throw new InvalidOptionError(`${name} must be a whole number from ${min} to ${max}, not ${String(v)}`);
  return x;
}

/** The dead-PE limit and floor: a deadAfterMs given alone is fixed, else the floor defaults to DEFAULT_MIN_DEAD_AFTER_MS. */
export function deadAfterOf(
  deadAfterMs: number | undefined,
  minDeadAfterMs: number | undefined,
  timeoutMs: number,
): { deadAfterMs: number; minDeadAfterMs: number } {
  const max = checkInt('deadAfterMs', deadAfterMs, timeoutMs, 600_000, Math.max(600, timeoutMs));
  const fixed = deadAfterMs !== undefined && minDeadAfterMs === undefined;
  return { deadAfterMs: max, minDeadAfterMs: fixed ? max : checkInt('minDeadAfterMs', minDeadAfterMs, 1, max, Math.min(DEFAULT_MIN_DEAD_AFTER_MS, max)) };
}

/** The floor of the measured dead-PE wait: well under the fixed 600 ms, well over a LAN's hiccups. */
export const DEFAULT_MIN_DEAD_AFTER_MS = 200;

function settingsOf(init: TftpClientInit): ClientSettings {
  const timeoutMs = checkInt('timeoutMs', init.timeoutMs, 1, 60_000, 200);
  const s: ClientSettings = {
    blksize: checkInt('blksize', init.blksize, TFTP_MIN_BLOCK_SIZE, TFTP_MAX_BLOCK_SIZE, 1468),
    windowsize: checkInt('windowsize', init.windowsize, 1, TFTP_MAX_WINDOW_SIZE, 16),
    timeoutMs,
    ...deadAfterOf(init.deadAfterMs, init.minDeadAfterMs, timeoutMs),
    cookieInterval: init.cookieInterval === false ? undefined : checkInt('cookieInterval', init.cookieInterval, 0, 0xffffffff, 0),
    restartOnRefusal: init.restartOnRefusal ?? false,
    maxFailovers: checkInt('maxFailovers', init.maxFailovers, 0, 1000, 8),
    sha256: init.sha256 ?? true,
    busyPoll: init.busyPoll ?? 'auto',
  };
  if (init.localAddress !== undefined) s.localAddress = init.localAddress;
  return s;
}

/** PEs from handle resolutions, in the order the registrar's policy gave them. */
export class PoolFinder implements PeFinder {
  readonly #pu: PoolUser;
  readonly #handle: string | Uint8Array;
  readonly #logger: Logger;
  #list: PoolElementParameter[] | undefined;
  /** A PE left: the next resolution bypasses every cache (the pool changed). */
  #refresh = false;

  constructor(pu: PoolUser, handle: string | Uint8Array, logger: Logger) {
    this.#pu = pu;
    this.#handle = handle;
    this.#logger = logger;
  }

  async next(exclude: ReadonlySet<string>, family: 4 | 6 | undefined, signal: AbortSignal): Promise<PeTarget | undefined> {
    const pick = (list: PoolElementParameter[]): PeTarget | undefined => {
      for (const pe of list) {
        const t = udpTarget(pe, family);
        if (t && !exclude.has(peKey(t))) return t;
      }
      return undefined;
    };
    const had = this.#list;
    const cached = had && !this.#refresh ? pick(had) : undefined;
    if (cached) return cached;
    const fresh = had !== undefined || this.#refresh;
    this.#refresh = false;
    this.#list = await this.#pu.resolve(this.#handle, { signal, fresh });
    return pick(this.#list);
  }

  left(pe: PeTarget): void {
    const id = pe.identifier;
    this.#list = this.#list?.filter((e) => e.identifier !== id);
    this.#refresh = true;
  }

  unreachable(pe: PeTarget): void {
    if (pe.identifier === undefined) return;
    const id = pe.identifier;
    this.#list = this.#list?.filter((e) => e.identifier !== id);
    this.#pu.reportUnreachable(this.#handle, id).catch((err: unknown) => {
      this.#logger.debug({ pe: describeTarget(pe), err: (err as Error).message }, 'could not report the PE unreachable');
    });
  }
}

/** Given addresses, in order; hostnames are looked up once. */
class FixedFinder implements PeFinder {
  readonly #targets: PeTarget[];
  constructor(targets: PeTarget[]) {
    this.#targets = targets;
  }
  async next(exclude: ReadonlySet<string>, family: 4 | 6 | undefined): Promise<PeTarget | undefined> {
    for (const t of this.#targets) {
      const host = isIP(t.host) ? t.host : (await lookup(t.host, family ? { family } : {})).address;
      const target = { ...t, host };
      if (!exclude.has(peKey(target)) && (family === undefined || isIP(host) === family)) return target;
    }
    return undefined;
  }
  unreachable(): void {}
}

/** A rate over the last few seconds, for progress and ETA. */
class RateMeter {
  #samples: { at: number; bytes: number }[] = [{ at: 0, bytes: 0 }];
  sample(at: number, bytes: number): number {
    this.#samples.push({ at, bytes });
    while (this.#samples.length > 2 && at - this.#samples[0]!.at > 3_000) this.#samples.shift();
    const first = this.#samples[0]!;
    const dt = at - first.at;
    return dt > 0 ? ((bytes - first.bytes) * 1000) / dt : 0;
  }
}

class TftpClientImpl implements TftpClient {
  readonly #s: ClientSettings;
  readonly #init: TftpClientInit;
  #stopped = false;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #components: TftpClientComponents;
  #pu: PoolUser | undefined;
  readonly #active = new Set<TftpDownload>();

  constructor(init: TftpClientInit, components: TftpClientComponents) {
    this.#s = settingsOf(init);
    this.#init = init;
    this.#components = components;
    this.#clock = components.clock ?? systemClock;
    this.#logger = (components.logger ?? silentLogger).child({ component: 'tftp-client' });
    this.#pu = init.pu;
  }

  #poolUser(): PoolUser {
    if (this.#stopped) throw new StateError('the TFTP client is stopped');
    this.#pu ??= createPoolUser(
      {
        registrars: this.#init.registrars ?? [],
        ...((this.#init.registrars ?? []).length > 0 ? { discovery: false as const } : {}),
        items: this.#init.items ?? 8,
        requestTimeoutMs: checkInt('resolveTimeoutMs', this.#init.resolveTimeoutMs, 1, 600_000, 1_000),
        connectTimeoutMs: checkInt('resolveTimeoutMs', this.#init.resolveTimeoutMs, 1, 600_000, 1_000),
      },
      {
        clock: this.#clock,
        logger: this.#components.logger ?? silentLogger,
        ...(this.#components.transports ? { transports: this.#components.transports } : {}),
      },
    );
    return this.#pu;
  }

  async get(handle: string | Uint8Array, path: string, destination: string | Writable, opts: GetOptions = {}): Promise<TftpGetResult> {
    return this.downloadTo(new PoolFinder(this.#poolUser(), handle, this.#logger), path, await this.#sinkFor(destination), opts);
  }

  async download(targets: PeTarget | PeTarget[], path: string, destination: string | Writable, opts: GetOptions = {}): Promise<TftpGetResult> {
    const list = Array.isArray(targets) ? targets : [targets];
    try {
      return await this.downloadTo(new FixedFinder(list), path, await this.#sinkFor(destination), opts);
    } catch (err) {
      // With one address there is no pool: say what happened to it.
      if (list.length === 1 && err instanceof NoPoolElementError && err.cause instanceof Error && !(err.cause instanceof NoPoolElementError)) throw err.cause;
      throw err;
    }
  }

  async downloadTo(finder: PeFinder, path: string, sink: DownloadSink, opts: GetOptions = {}): Promise<TftpGetResult> {
    const settings: DownloadSettings = {
      path,
      mode: opts.mode ?? 'octet',
      blksize: this.#s.blksize,
      windowsize: this.#s.windowsize,
      timeoutMs: this.#s.timeoutMs,
      deadAfterMs: this.#s.deadAfterMs,
      minDeadAfterMs: this.#s.minDeadAfterMs,
      cookieInterval: this.#s.cookieInterval,
      restartOnRefusal: this.#s.restartOnRefusal,
      maxFailovers: this.#s.maxFailovers,
      askTsize: true,
      dallyMs: Math.max(2 * this.#s.timeoutMs, 1_000),
      busyPoll: this.#s.busyPoll,
      ...(this.#s.localAddress !== undefined ? { localAddress: this.#s.localAddress } : {}),
    };
    const d = new TftpDownload(
      settings,
      opts.limitRate !== undefined ? new RateLimitedSink(sink, opts.limitRate, this.#clock) : sink,
      finder,
      { clock: this.#clock, logger: this.#logger },
      {
        ...(opts.onNegotiated ? { onNegotiated: opts.onNegotiated } : {}),
        ...(opts.onFailover ? { onFailover: opts.onFailover } : {}),
        ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
      },
    );
    this.#active.add(d);
    const stopProgress = opts.onProgress ? this.#reportProgress(() => d.progress(), opts.onProgress, opts.progressIntervalMs ?? 250) : undefined;
    let r: DownloadResult;
    try {
      r = await d.run(opts.signal);
    } catch (err) {
      this.#active.delete(d);
      throw err;
    } finally {
      stopProgress?.();
    }
    // The engine keeps answering a repeated last block for a while, then closes by itself.
    this.#clock.setTimeout(() => this.#active.delete(d), settings.dallyMs + 10);
    if (opts.onProgress)
      opts.onProgress({ bytes: r.bytes, total: r.bytes, bytesPerSecond: 0, etaMs: 0, pe: d.pe, failovers: r.failovers, elapsedMs: r.elapsedMs });
    return { ...r, mbPerSec: r.elapsedMs > 0 ? r.bytes / 1000 / r.elapsedMs : 0 };
  }

  async put(handle: string | Uint8Array, path: string, source: string | Uint8Array, opts: PutOptions = {}): Promise<TftpPutResult> {
    // A file is read in chunks as the upload goes: memory does not grow with its size.
    const data = typeof source === 'string' ? await FileSource.open(source) : new BufferSource(source);
    const meter = new RateMeter();
    let r: UploadResult;
    try {
      r = await upload(
        data,
        {
          path,
          blksize: this.#s.blksize,
          windowsize: this.#s.windowsize,
          timeoutMs: this.#s.timeoutMs,
          deadAfterMs: this.#s.deadAfterMs,
          minDeadAfterMs: this.#s.minDeadAfterMs,
          maxFailovers: this.#s.maxFailovers,
          cookieInterval: this.#s.cookieInterval,
          ...(this.#s.localAddress !== undefined ? { localAddress: this.#s.localAddress } : {}),
        },
        new PoolFinder(this.#poolUser(), handle, this.#logger),
        { clock: this.#clock, logger: this.#logger },
        {
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onFailover ? { onFailover: opts.onFailover } : {}),
          ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
          ...(opts.onProgress
            ? {
                onProgress: (p: UploadProgress) => {
                  const rate = meter.sample(p.elapsedMs, p.bytes);
                  opts.onProgress!({ ...p, bytesPerSecond: rate, ...(rate > 0 ? { etaMs: ((p.total - p.bytes) * 1000) / rate } : {}) });
                },
              }
            : {}),
          progressIntervalMs: opts.progressIntervalMs ?? 250,
        },
      );
    } finally {
      if (data instanceof FileSource) await data.close();
    }
    return { ...r, mbPerSec: r.elapsedMs > 0 ? r.bytes / 1000 / r.elapsedMs : 0 };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  start(): Promise<void> {
    return this.#stopped ? Promise.reject(new StateError('the TFTP client is stopped')) : Promise.resolve();
  }

  stop(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    this.#stopped = true;
    for (const d of this.#active) d.dispose();
    this.#active.clear();
    if (!this.#init.pu) await this.#pu?.close();
    this.#pu = undefined;
  }

  async #sinkFor(destination: string | Writable): Promise<DownloadSink> {
    if (typeof destination === 'string') return FileSink.open(destination, { sha256: this.#s.sha256 });
    const std = destination === process.stdout || destination === process.stderr;
    return new StreamSink(destination, { sha256: this.#s.sha256, end: !std });
  }

  #reportProgress(snapshot: () => DownloadProgress, onProgress: (p: TransferProgress) => void, everyMs: number): () => void {
    const meter = new RateMeter();
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const fire = (): void => {
      const p = snapshot();
      const rate = meter.sample(p.elapsedMs, p.bytes);
      const etaMs = p.total !== undefined && rate > 0 ? ((p.total - p.bytes) * 1000) / rate : undefined;
      onProgress({ ...p, bytesPerSecond: rate, ...(etaMs !== undefined ? { etaMs } : {}) });
      timer = this.#clock.setTimeout(fire, everyMs);
    };
    timer = this.#clock.setTimeout(fire, everyMs);
    return () => {
      if (timer) this.#clock.clearTimeout(timer);
    };
  }
}

export function createTftpClient(init: TftpClientInit = {}, components: TftpClientComponents = {}): TftpClient {
  return new TftpClientImpl(init, components);
}

export * from './errors.js';
