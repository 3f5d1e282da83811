/**
 * An upload (WRQ) to a writable PE. With cookies (the `rserpool-cookie`
 * option, as for downloads) the PE sends a state cookie each time the bytes
 * it has written and synced pass a multiple of its spacing; when the PE dies
 * (or leaves) the client echoes the latest cookie to the next PE, which takes
 * the temporary file over (PEs of the pool serving the same root) and
 * receives from the cookie's block on. A PE that cannot resume refuses the
 * cookie and the upload starts over there from byte 0 (the source serves
 * any block again).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { decodeAsapMessage, encodeAsapMessage } from '../../../protocols/asap/codec.js';
import { AsapMessageType } from '../../../protocols/asap/types.js';
import { decodeTftpPacket, encodeTftpPacket, parseTftpOptions, peerError } from '../../../protocols/tftp/codec.js';
import { errorPacket } from '../../../protocols/tftp/packets.js';
import { TFTP_DEFAULT_BLOCK_SIZE, TftpErrorCode, TftpOpcode } from '../../../protocols/tftp/types.js';
import type { Clock, TimerHandle } from '../../clock.js';
import { AbortedError, RSerPoolError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { COOKIE_ERROR_PREFIX, COOKIE_OPTION, LEAVING_ERROR_PREFIX } from '../contract.js';
import { describeTarget, peKey, udpTarget, type FailoverInfo, type PeFinder, type PeTarget } from './download.js';
import { peekCookieNext } from './cookie.js';
import { CookieRefusedError, NoPoolElementError, TftpLocalIoError, TftpProtocolError, TftpRemoteError, TransferTimeoutError } from './errors.js';
import { BlockSender, type UploadSource } from './sender.js';
import { DEFAULT_MIN_TIMEOUT_MS } from '../engine/sender.js';
import { sendSafe, usableSource } from '../engine/udp.js';

interface UploadSettings {
  path: string;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The dead-PE limit; once a round trip is measured the wait follows it down to minDeadAfterMs. */
  deadAfterMs: number;
  minDeadAfterMs: number;
  maxFailovers: number;
  /** Blocks between state cookies (0: the PE's choice); undefined asks for none. */
  cookieInterval: number | undefined;
  localAddress?: string;
}

export interface UploadResult {
  bytes: number;
  /** PEs given up on before one took the file. */
  failovers: number;
  /** The longest failover stall, ms (0 without failover). */
  stallMs: number;
  /** Starts over from byte 0 after a refused cookie. */
  restarts: number;
  pe: PeTarget;
  blksize: number;
  windowsize: number;
  elapsedMs: number;
}

export interface UploadProgress {
  bytes: number;
  total: number;
  pe: PeTarget | undefined;
  failovers: number;
  elapsedMs: number;
}

export interface UploadHooks {
  onFailover?: (f: FailoverInfo) => void;
  /** The upload started over from byte 0 (a refused cookie). */
  onRestart?: (reason: string) => void;
}

/** Codes after which no other PE would do better. */
const FATAL_CODES: ReadonlySet<number> = new Set([
  TftpErrorCode.FileNotFound,
  TftpErrorCode.AccessViolation,
  TftpErrorCode.FileAlreadyExists,
  TftpErrorCode.IllegalOperation,
  TftpErrorCode.OptionNegotiationRefused,
  TftpErrorCode.NoSuchUser,
]);

/** A PE is dead after this many retransmission timeouts of silence (as for downloads). */
const DEAD_RTOS = 6;
/** PEs of a leaving PE's business card kept. */
const MAX_WILL = 16;

/** The PE said it is leaving the pool. */
class PeLeavingError extends TftpRemoteError {}

/** Where an attempt resumes: the cookie echoed, its next block and the block size it counts in. */
interface Resume {
  cookie: Uint8Array;
  next: number;
  blksize: number;
}

interface AttemptEvents {
  /** An ACK moved the upload forward to absolute block k. */
  onAcked(k: number): void;
  onCookie(cookie: Uint8Array, next: number, blksize: number): void;
  onCard(pes: PeTarget[]): void;
}

class Attempt {
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: Error) => void;
  #peerPort = -1;
  #sender: BlockSender | undefined;
  #lastHeardAt: number;
  #lastSentAt: number;
  /** The request's sends: an answer to the only one times a round trip. */
  #requestSends = 1;
  readonly #requestAt: number;
  #tick: TimerHandle | undefined;
  #finished = false;
  readonly #request: Uint8Array;

  constructor(
    readonly socket: Socket,
    readonly pe: PeTarget,
    readonly source: UploadSource,
    readonly s: UploadSettings,
    readonly clock: Clock,
    readonly resume: Resume | undefined,
    readonly events: AttemptEvents,
    /** TIDs of attempts given up: their late packets must not pass for this PE's answer (PEs may share an address). */
    readonly retired: Set<string>,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (resume) this.#request = encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: resume.cookie });
    else {
      const options: [string, string][] = [['tsize', String(source.total)]];
      if (s.blksize !== TFTP_DEFAULT_BLOCK_SIZE) options.push(['blksize', String(s.blksize)]);
      if (s.windowsize !== 1) options.push(['windowsize', String(s.windowsize)]);
      if (s.cookieInterval !== undefined) options.push([COOKIE_OPTION, String(s.cookieInterval)]);
      this.#request = encodeTftpPacket({ opcode: TftpOpcode.Wrq, filename: s.path, mode: 'octet', options });
    }
    socket.on('message', this.#onMessage);
    this.#lastHeardAt = clock.now();
    this.#lastSentAt = this.#requestAt = this.#lastHeardAt;
    sendSafe(socket, this.#request, pe.port, pe.host, () => {});
    this.#schedule();
  }

  blksize = TFTP_DEFAULT_BLOCK_SIZE;
  windowsize = 1;

  /** Ends the attempt; `lastWords` goes to the PE first (when it answered). */
  stop(err?: Error, lastWords?: Uint8Array): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#peerPort >= 0) this.retired.add(`${this.pe.host}:${this.#peerPort}`);
    this.#sender?.stop();
    this.source.watch?.(undefined);
    this.socket.off('message', this.#onMessage);
    if (this.#tick) this.clock.clearTimeout(this.#tick);
    if (err) {
      if (lastWords && this.#peerPort >= 0) this.#send(lastWords);
      this.#reject(err);
    } else this.#resolve();
  }

  #schedule(): void {
    this.#tick = this.clock.setTimeout(() => this.#onTick(), Math.max(5, Math.min(100, Math.floor(Math.min(this.s.timeoutMs, this.s.minDeadAfterMs) / 4))));
  }

  /** The silence after which the PE is dead: the limit until the round trip is measured, then DEAD_RTOS of it within the floor and the limit. */
  #deadAfter(): number {
    const { deadAfterMs, minDeadAfterMs } = this.s;
    const rto = this.#sender?.rtoMs;
    return rto === undefined ? deadAfterMs : Math.min(deadAfterMs, Math.max(minDeadAfterMs, DEAD_RTOS * rto));
  }

  #onTick(): void {
    if (this.#finished) return;
    const now = this.clock.now();
    if (now - this.#lastHeardAt >= this.#deadAfter()) {
      // Datagrams that came while this process was busy are read before the verdict.
      setImmediate(() => {
        const silent = this.clock.now() - this.#lastHeardAt;
        if (!this.#finished && silent >= this.#deadAfter()) {
          this.stop(new TransferTimeoutError(`${describeTarget(this.pe)} did not answer for ${Math.round(silent)} ms`));
        } else if (!this.#finished) this.#schedule();
      });
      return;
    }
    if (!this.#sender && now - this.#lastSentAt >= this.s.timeoutMs) {
      this.#lastSentAt = now;
      this.#requestSends++;
      sendSafe(this.socket, this.#request, this.pe.port, this.pe.host, () => {});
    }
    this.#schedule();
  }

  #send(b: Uint8Array): void {
    sendSafe(this.socket, b, this.#peerPort, this.pe.host, () => {});
  }

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (rinfo.address !== this.pe.host || !usableSource(rinfo.address, rinfo.port)) return;
    if (this.#peerPort < 0) {
      // Only a TFTP answer names the transfer's port: the PE sends no ASAP before one.
      if (this.retired.has(`${rinfo.address}:${rinfo.port}`) || msg.length < 4 || msg[0] !== 0) return;
      this.#peerPort = rinfo.port;
    } else if (rinfo.port !== this.#peerPort) return;
    if (msg.length === 0) return;
    if (msg[0] !== 0) return this.#asap(msg);
    if (msg.length < 4) return;
    this.#lastHeardAt = this.clock.now();
    const op = msg[1];
    if (op === TftpOpcode.Ack) {
      const block = (msg[2]! << 8) | msg[3]!;
      if (this.#sender) return this.#sender.ack(block);
      if (block === 0 && !this.resume) this.#begin();
      return;
    }
    if (op === TftpOpcode.Oack && !this.#sender) {
      try {
        const p = decodeTftpPacket(msg);
        if (p.opcode !== TftpOpcode.Oack) return;
        const o = parseTftpOptions(p.options);
        this.blksize = o.blksize ?? TFTP_DEFAULT_BLOCK_SIZE;
        this.windowsize = o.windowsize ?? 1;
        if (this.resume && this.blksize !== this.resume.blksize) {
          // The cookie's block counts in the old block size: any other would put the bytes at the wrong offset.
          const why = `blksize ${this.blksize} in a resume of blocks of ${this.resume.blksize}`;
          return this.stop(new TftpProtocolError(`${describeTarget(this.pe)}: ${why}`), errorPacket(TftpErrorCode.OptionNegotiationRefused, why));
        }
        if (!this.resume && (this.blksize > this.s.blksize || this.windowsize > this.s.windowsize)) {
          return this.stop(
            new TftpProtocolError(`${describeTarget(this.pe)} granted more than asked`),
            errorPacket(TftpErrorCode.OptionNegotiationRefused, 'more than asked'),
          );
        }
      } catch (err) {
        return this.stop(new TftpProtocolError(`malformed OACK from ${describeTarget(this.pe)}`, { cause: err }));
      }
      return this.#begin();
    }
    if (op === TftpOpcode.Error) {
      const { code, message: text } = peerError(msg);
      if (code === TftpErrorCode.NotDefined && this.resume && !this.#sender && text.startsWith(COOKIE_ERROR_PREFIX)) {
        return this.stop(new CookieRefusedError(text.slice(COOKIE_ERROR_PREFIX.length)));
      }
      if (code === TftpErrorCode.NotDefined && text.startsWith(LEAVING_ERROR_PREFIX)) return this.stop(new PeLeavingError(code, text));
      this.stop(new TftpRemoteError(code, text));
    }
  };

  #asap(msg: Buffer): void {
    let m;
    try {
      m = decodeAsapMessage(msg);
    } catch {
      return;
    }
    if (m.type === AsapMessageType.Cookie && this.s.cookieInterval !== undefined) {
      const next = peekCookieNext(m.cookie);
      // A cookie whose block we cannot read tells us nowhere to resume.
      if (next === undefined) return;
      // From the transfer's port once its ACK or OACK proved it: the PE is alive, its disk busy (it repeats its cookie as a keep-alive).
      if (this.#sender) this.#lastHeardAt = this.clock.now();
      this.events.onCookie(m.cookie, next, this.#sender ? this.blksize : (this.resume?.blksize ?? this.blksize));
    } else if (m.type === AsapMessageType.BusinessCard) {
      const family = isIP(this.pe.host) === 6 ? 6 : 4;
      const will: PeTarget[] = [];
      for (const e of m.elements.slice(0, MAX_WILL)) {
        const t = udpTarget(e, family);
        if (t && e.identifier !== this.pe.identifier) will.push(t);
      }
      this.events.onCard(will);
    }
  }

  #begin(): void {
    const first = this.resume?.next ?? 1;
    this.#sender = new BlockSender(
      this.socket,
      { host: this.pe.host, port: this.#peerPort },
      this.source,
      // No give-up of its own: the attempt ends when the PE is silent for the dead-PE wait.
      {
        blksize: this.blksize,
        windowsize: this.windowsize,
        timeoutMs: this.s.timeoutMs,
        minTimeoutMs: Math.min(this.s.timeoutMs, DEFAULT_MIN_TIMEOUT_MS),
        giveUpMs: Number.POSITIVE_INFINITY,
        firstBlock: first,
      },
      {
        onDone: () => this.stop(),
        onGone: () => this.stop(new TransferTimeoutError(`${describeTarget(this.pe)} stopped acknowledging`)),
        onAcked: (k) => this.events.onAcked(k),
      },
      this.clock,
    );
    this.source.watch?.({
      more: () => this.#sender?.more(),
      fail: (err) => this.stop(err, errorPacket(TftpErrorCode.NotDefined, 'the client cannot read its file')),
    });
    // Without a round trip the first retransmission (a lost first ACK) would wait the whole timeout (Karn: only an answer to a request sent once).
    this.#sender.start(this.#requestSends === 1 ? this.clock.now() - this.#requestAt : undefined);
  }
}

/** Uploads the source's blocks to the first PE that takes it; when one fails, on to the next, resuming from the last cookie when there is one. */
export async function upload(
  source: UploadSource,
  s: UploadSettings,
  finder: PeFinder,
  components: { clock: Clock; logger: Logger },
  opts: { signal?: AbortSignal; onProgress?: (p: UploadProgress) => void; progressIntervalMs?: number } & UploadHooks = {},
): Promise<UploadResult> {
  const { clock, logger } = components;
  const started = clock.now();
  const tried = new Set<string>();
  let socket: Socket | undefined;
  let failovers = 0;
  let restarts = 0;
  let maxStall = 0;
  let lastErr: Error | undefined;
  let acked = 0;
  let current: PeTarget | undefined;
  let progressTimer: TimerHandle | undefined;
  let resume: Resume | undefined;
  /** PEs a leaving PE's card named: tried first. */
  let will: PeTarget[] = [];
  /** The failover under way: from which PE, since when the upload stood still. */
  let pending: { from: PeTarget; since: number; reason: string; echoed: boolean } | undefined;
  let lastProgressAt = started;
  const retired = new Set<string>();
  const report = (): void => {
    opts.onProgress?.({ bytes: acked, total: source.total, pe: current, failovers, elapsedMs: clock.now() - started });
    progressTimer = clock.setTimeout(report, opts.progressIntervalMs ?? 250);
  };
  if (opts.onProgress) report();
  try {
    // PEs in a row that fail before the upload moves forward: bounded, as for downloads.
    for (let inARow = 0; inARow <= s.maxFailovers; inARow++) {
      if (opts.signal?.aborted) throw new AbortedError('the upload was aborted', { cause: opts.signal.reason });
      let pe: PeTarget | undefined = current !== undefined && !tried.has(peKey(current)) ? current : undefined;
      pe ??= will.find((t) => !tried.has(peKey(t)));
      pe ??= await finder.next(tried, undefined, opts.signal ?? new AbortController().signal);
      if (!pe) break;
      tried.add(peKey(pe));
      current = pe;
      socket ??= await bindFor(pe, s.localAddress);
      const at = resume;
      const attempt: Attempt = new Attempt(
        socket,
        pe,
        source,
        s,
        clock,
        at,
        {
          onAcked: (k) => {
            acked = Math.min(k * attempt.blksize, source.total);
            lastProgressAt = clock.now();
            inARow = 0;
            if (pending) {
              tried.clear();
              tried.add(peKey(pe));
              const stallMs = lastProgressAt - pending.since;
              maxStall = Math.max(maxStall, stallMs);
              failovers++;
              const info: FailoverInfo = { from: pending.from, to: pe, atBlock: at?.next ?? 1, stallMs, cookieEchoed: pending.echoed, reason: pending.reason };
              pending = undefined;
              logger.info({ from: describeTarget(info.from), to: describeTarget(pe), atBlock: info.atBlock, stallMs }, 'upload failed over');
              opts.onFailover?.(info);
            }
          },
          onCookie: (cookie, next, blksize) => {
            if (!resume || next >= resume.next) resume = { cookie, next, blksize };
          },
          onCard: (pes) => (will = pes),
        },
        retired,
      );
      if (at) acked = (at.next - 1) * at.blksize;
      const onAbort = (): void =>
        attempt.stop(
          new AbortedError('the upload was aborted', { cause: opts.signal?.reason }),
          errorPacket(TftpErrorCode.NotDefined, 'upload aborted by the client'),
        );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await attempt.done;
        return {
          bytes: source.total,
          failovers,
          stallMs: maxStall,
          restarts,
          pe,
          blksize: attempt.blksize,
          windowsize: attempt.windowsize,
          elapsedMs: clock.now() - started,
        };
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        if (err instanceof CookieRefusedError) {
          // This PE cannot resume (no temporary file: another root, or it was removed): from byte 0, here.
          logger.warn({ pe: describeTarget(pe), reason: err.reason }, 'upload cookie refused: starting over');
          resume = undefined;
          acked = 0;
          restarts++;
          tried.delete(peKey(pe));
          opts.onRestart?.(`cookie refused: ${err.reason}`);
          continue;
        }
        if (err instanceof TftpRemoteError && !(err instanceof PeLeavingError) && FATAL_CODES.has(err.tftpCode)) throw err;
        if (err instanceof TftpProtocolError || err instanceof TftpLocalIoError) throw err;
        lastErr = err as Error;
        logger.info({ pe: describeTarget(pe), err: (err as Error).message, cookieNext: resume?.next }, 'upload failed at this PE, trying the next');
        if (err instanceof PeLeavingError) finder.left?.(pe);
        else if (err instanceof TransferTimeoutError) finder.unreachable(pe);
        // Without a cookie the next PE starts from byte 0.
        pending ??= { from: pe, since: lastProgressAt, reason: (err as Error).message, echoed: resume !== undefined };
        pending.echoed = resume !== undefined;
        if (!resume) acked = 0;
        current = undefined;
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }
    throw new NoPoolElementError(`no PE took the upload (${tried.size} tried${lastErr ? `; last: ${lastErr.message}` : ''})`, { cause: lastErr });
  } catch (err) {
    if (err instanceof RSerPoolError) throw err;
    throw new NoPoolElementError(`cannot find a PE: ${(err as Error).message}`, { cause: err });
  } finally {
    if (progressTimer) clock.clearTimeout(progressTimer);
    socket?.close();
  }
}

function bindFor(pe: PeTarget, localAddress: string | undefined): Promise<Socket> {
  const six = isIP(pe.host) === 6;
  const local = localAddress ?? (six ? (pe.host === '::1' ? '::1' : '::') : /^127\./.test(pe.host) ? '127.0.0.1' : '0.0.0.0');
  const socket = createSocket({ type: six ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, local, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
