/**
 * An upload (WRQ) to a writable PE. Writes carry no state cookies, so a PE
 * that dies mid-upload means starting over, from byte 0, at the next PE.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { decodeTftpPacket, encodeTftpPacket, parseTftpOptions } from '../../../protocols/tftp/codec.js';
import { errorPacket } from '../../../protocols/tftp/packets.js';
import { TFTP_DEFAULT_BLOCK_SIZE, TftpErrorCode, TftpOpcode } from '../../../protocols/tftp/types.js';
import type { Clock, TimerHandle } from '../../clock.js';
import { AbortedError, RSerPoolError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { describeTarget, peKey, type PeFinder, type PeTarget } from './download.js';
import { NoPoolElementError, TftpProtocolError, TftpRemoteError, TransferTimeoutError } from './errors.js';
import { BlockSender, BufferSource } from './sender.js';
import { DEFAULT_MIN_TIMEOUT_MS } from '../engine/sender.js';
import { sendSafe, usableSource } from '../engine/udp.js';

interface UploadSettings {
  path: string;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  deadAfterMs: number;
  maxFailovers: number;
  localAddress?: string;
}

export interface UploadResult {
  bytes: number;
  /** PEs given up on before one took the file. */
  failovers: number;
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

/** Codes after which no other PE would do better. */
const FATAL_CODES: ReadonlySet<number> = new Set([
  TftpErrorCode.FileNotFound,
  TftpErrorCode.AccessViolation,
  TftpErrorCode.FileAlreadyExists,
  TftpErrorCode.IllegalOperation,
  TftpErrorCode.OptionNegotiationRefused,
  TftpErrorCode.NoSuchUser,
]);

class Attempt {
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: Error) => void;
  #peerPort = -1;
  #sender: BlockSender | undefined;
  #lastHeardAt: number;
  #lastSentAt: number;
  #tick: TimerHandle | undefined;
  #finished = false;
  readonly #wrq: Uint8Array;

  constructor(
    readonly socket: Socket,
    readonly pe: PeTarget,
    readonly data: Uint8Array,
    readonly s: UploadSettings,
    readonly clock: Clock,
    readonly onAcked: (bytes: number) => void,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const options: [string, string][] = [['tsize', String(data.length)]];
    if (s.blksize !== TFTP_DEFAULT_BLOCK_SIZE) options.push(['blksize', String(s.blksize)]);
    if (s.windowsize !== 1) options.push(['windowsize', String(s.windowsize)]);
    this.#wrq = encodeTftpPacket({ opcode: TftpOpcode.Wrq, filename: s.path, mode: 'octet', options });
    socket.on('message', this.#onMessage);
    this.#lastHeardAt = clock.now();
    this.#lastSentAt = this.#lastHeardAt;
    sendSafe(socket, this.#wrq, pe.port, pe.host, () => {});
    this.#schedule();
  }

  blksize = TFTP_DEFAULT_BLOCK_SIZE;
  windowsize = 1;

  stop(err?: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#sender?.stop();
    this.socket.off('message', this.#onMessage);
    if (this.#tick) this.clock.clearTimeout(this.#tick);
    if (err) {
      if (this.#peerPort >= 0) this.#send(errorPacket(TftpErrorCode.NotDefined, 'upload aborted by the client'));
      this.#reject(err);
    } else this.#resolve();
  }

  #schedule(): void {
    this.#tick = this.clock.setTimeout(() => this.#onTick(), Math.max(5, Math.min(100, Math.floor(this.s.timeoutMs / 4))));
  }

  #onTick(): void {
    if (this.#finished) return;
    const now = this.clock.now();
    if (now - this.#lastHeardAt >= this.s.deadAfterMs) {
      return this.stop(new TransferTimeoutError(`${describeTarget(this.pe)} did not answer for ${Math.round(now - this.#lastHeardAt)} ms`));
    }
    if (!this.#sender && now - this.#lastSentAt >= this.s.timeoutMs) {
      this.#lastSentAt = now;
      sendSafe(this.socket, this.#wrq, this.pe.port, this.pe.host, () => {});
    }
    this.#schedule();
  }

  #send(b: Uint8Array): void {
    sendSafe(this.socket, b, this.#peerPort, this.pe.host, () => {});
  }

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (rinfo.address !== this.pe.host || !usableSource(rinfo.address, rinfo.port)) return;
    if (this.#peerPort < 0) this.#peerPort = rinfo.port;
    else if (rinfo.port !== this.#peerPort) return;
    if (msg.length < 4 || msg[0] !== 0) return;
    this.#lastHeardAt = this.clock.now();
    const op = msg[1];
    if (op === TftpOpcode.Ack) {
      const block = (msg[2]! << 8) | msg[3]!;
      if (this.#sender) return this.#sender.ack(block);
      if (block === 0) this.#begin();
      return;
    }
    if (op === TftpOpcode.Oack && !this.#sender) {
      try {
        const p = decodeTftpPacket(msg);
        if (p.opcode !== TftpOpcode.Oack) return;
        const o = parseTftpOptions(p.options);
        this.blksize = o.blksize ?? TFTP_DEFAULT_BLOCK_SIZE;
        this.windowsize = o.windowsize ?? 1;
        if (this.blksize > this.s.blksize || this.windowsize > this.s.windowsize) {
          this.#send(errorPacket(TftpErrorCode.OptionNegotiationRefused, 'more than asked'));
          return this.stop(new TftpProtocolError(`${describeTarget(this.pe)} granted more than asked`));
        }
      } catch (err) {
        return this.stop(new TftpProtocolError(`malformed OACK from ${describeTarget(this.pe)}`, { cause: err }));
      }
      return this.#begin();
    }
    if (op === TftpOpcode.Error) {
      let code = (msg[2]! << 8) | msg[3]!;
      let text = '';
      try {
        const p = decodeTftpPacket(msg);
        if (p.opcode === TftpOpcode.Error) ({ code, message: text } = p);
      } catch {
        text = 'malformed ERROR packet';
      }
      this.stop(new TftpRemoteError(code, text));
    }
  };

  #begin(): void {
    this.#sender = new BlockSender(
      this.socket,
      { host: this.pe.host, port: this.#peerPort },
      new BufferSource(this.data),
      // No give-up of its own: the attempt ends when the PE is silent for deadAfterMs.
      {
        blksize: this.blksize,
        windowsize: this.windowsize,
        timeoutMs: this.s.timeoutMs,
        minTimeoutMs: Math.min(this.s.timeoutMs, DEFAULT_MIN_TIMEOUT_MS),
        giveUpMs: Number.POSITIVE_INFINITY,
      },
      {
        onDone: () => this.stop(),
        onGone: () => this.stop(new TransferTimeoutError(`${describeTarget(this.pe)} stopped acknowledging`)),
        onAcked: (k) => this.onAcked(Math.min(k * this.blksize, this.data.length)),
      },
      this.clock,
    );
    this.#sender.start();
  }
}

/** Uploads `data` to the first PE that takes it, starting over at the next PE when one fails. */
export async function upload(
  data: Uint8Array,
  s: UploadSettings,
  finder: PeFinder,
  components: { clock: Clock; logger: Logger },
  opts: { signal?: AbortSignal; onProgress?: (p: UploadProgress) => void; progressIntervalMs?: number } = {},
): Promise<UploadResult> {
  const { clock, logger } = components;
  const started = clock.now();
  const tried = new Set<string>();
  let socket: Socket | undefined;
  let failovers = 0;
  let lastErr: Error | undefined;
  let acked = 0;
  let current: PeTarget | undefined;
  let progressTimer: TimerHandle | undefined;
  const report = (): void => {
    opts.onProgress?.({ bytes: acked, total: data.length, pe: current, failovers, elapsedMs: clock.now() - started });
    progressTimer = clock.setTimeout(report, opts.progressIntervalMs ?? 250);
  };
  if (opts.onProgress) report();
  try {
    for (let i = 0; i <= s.maxFailovers; i++) {
      if (opts.signal?.aborted) throw new AbortedError('the upload was aborted', { cause: opts.signal.reason });
      const pe = await finder.next(tried, undefined, opts.signal ?? new AbortController().signal);
      if (!pe) break;
      tried.add(peKey(pe));
      current = pe;
      socket ??= await bindFor(pe, s.localAddress);
      acked = 0;
      const attempt = new Attempt(socket, pe, data, s, clock, (b) => (acked = b));
      const onAbort = (): void => attempt.stop(new AbortedError('the upload was aborted', { cause: opts.signal?.reason }));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await attempt.done;
        return { bytes: data.length, failovers, pe, blksize: attempt.blksize, windowsize: attempt.windowsize, elapsedMs: clock.now() - started };
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        if (err instanceof TftpRemoteError && FATAL_CODES.has(err.tftpCode)) throw err;
        if (err instanceof TftpProtocolError) throw err;
        lastErr = err as Error;
        logger.info({ pe: describeTarget(pe), err: (err as Error).message }, 'upload failed at this PE, trying the next');
        if (err instanceof TransferTimeoutError) finder.unreachable(pe);
        failovers++;
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
