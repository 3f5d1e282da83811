/**
 * One download (RRQ, or a resume from a cookie): an adapter of the engine's
 * WindowSender (windows, rewinds, retransmission) to the transfer's socket
 * and the file's blocks; it adds the handshake, state cookies, leaving, and
 * polling for the ACK.
 *
 * Until the client answers once (ACK 0 of the OACK, or ACK 1 of a bare
 * RRQ's first DATA) its address is unproven: the PE sends its one first
 * packet, again only when the request comes again, never on a timer, and
 * gives the transfer up after the handshake deadline.
 */
import type { Socket } from 'node:dgram';
import type { Clock, TimerHandle } from '../../clock.js';
import { peerError } from '../../../protocols/tftp/codec.js';
import { TftpErrorCode, TftpOpcode } from '../../../protocols/tftp/types.js';
import { TftpDiskTimeoutError, TftpIllegalOperationError, TftpRequestError, TftpServerBusyError } from './errors.js';
import { Poller, type PollerInit } from '../engine/poll.js';
import { WindowSender } from '../engine/sender.js';
import type { BlockSource } from './files.js';
import { blocksAhead, errorPacket, wireBlock } from '../../../protocols/tftp/packets.js';
import { cookieDatagram, DiskWait, type LeaveNotice, type Transfer, type TransferCookies, type TransferEnd } from './transfer.js';

/** Send errors that lose one datagram, not the transfer. */
const TRANSIENT_SEND_ERRORS = new Set(['EPERM', 'ENOBUFS', 'EAGAIN', 'EWOULDBLOCK', 'ENOMEM']);

export interface ReadTransferInit {
  socket: Socket;
  source: BlockSource;
  windowsize: number;
  /** The longest wait before a retransmission (negotiated, or the server's default). */
  timeoutMs: number;
  /** The shortest; in between, the wait follows the measured round trip (RFC 6298 style) and doubles while nothing comes. */
  minTimeoutMs: number;
  /** The transfer is given up after (maxRetries + 1) * timeoutMs without progress. */
  maxRetries: number;
  /** OACK to send first; DATA starts once the client ACKs block 0. */
  oack: Uint8Array | undefined;
  /** Without an OACK: the first DATA, read on its own (nothing more is read before the client answers). */
  firstPacket?: Buffer | undefined;
  /** The client must answer the first packet within this long. */
  handshakeMs: number;
  /** Poll for ACKs instead of sleeping (a client on this host). */
  busyPoll: boolean;
  /** The client answered once: its address is proven. */
  onUnderWay?: () => void;
  /** First block to send: 1, or the block a cookie names. */
  firstBlock: number;
  /** The OACK named RESUME_ACK_OPTION: the client may answer it with the ACK of a later block it holds. */
  resumeAck?: boolean;
  /** State cookies, when the client asked. */
  cookies: TransferCookies | undefined;
  clock: Clock;
  onEnd: (end: TransferEnd) => void;
}

/**
 * Busy-polling for the ACK (see Poller). Lock-step: a client on this host
 * ACKs a block within 0.1 ms, and every wait stalls the transfer. Windowed:
 * the client writes the window first, so a large one's ACK comes later
 * (loopback: 40-70 µs at 8192/16, 70-200 µs at 65464/4) and polling that
 * long cost 20-25 % more CPU for no speed; a small window's (1468/8: mostly
 * under 20 µs) is still polled.
 */
export function pollSettings(windowsize: number): Omit<PollerInit, 'enabled'> {
  return { spinMs: windowsize === 1 ? 0.1 : 0.03, maxTurns: 500, maxSkip: 256 };
}

/**
 * A leaving transfer repeats its notice to a client that still sends (it
 * missed it), and ends once the client has been quiet this long (longer than
 * a client's retransmission timeout) or at LEAVE_MAX_MS.
 */
const LEAVE_QUIET_MS = 300;
const LEAVE_MAX_MS = 1_500;
/**
 * Make-before-break: a leaving transfer with a card to give goes on serving
 * this long at most while its client readies the next PE.
 */
const LEAVE_OVERLAP_MS = 1_000;
/** Repeats at most this often, however many packets come. */
const LEAVE_REPEAT_MS = 5;

export class ReadTransfer implements Transfer {
  readonly wantsCookies: boolean;
  readonly #socket: Socket;
  readonly #source: BlockSource;
  readonly #engine: WindowSender;
  readonly #clock: Clock;
  readonly #lastBlock: number;
  readonly #firstBlock: number;
  readonly #cookies: ReadTransferInit['cookies'];
  readonly #interval: number;
  readonly #resumeAck: boolean;
  readonly #onEnd: (end: TransferEnd) => void;
  readonly #oack: Uint8Array | undefined;
  #oackPending: boolean;
  /** When the OACK first went, and how often: its ACK 0 times the round trip only if it went once (Karn). */
  #oackAt = 0;
  #oackSends = 0;
  #firstPacket: Buffer | undefined;
  readonly #handshakeMs: number;
  readonly #onUnderWay: (() => void) | undefined;
  #underWay = false;
  /** The handshake's deadline, then (leaving) the notice's. */
  #timer: TimerHandle | undefined;
  /** A block is being read from the file. */
  #waiting = false;
  #done = false;
  #released: number;
  readonly #poller: Poller;
  /** Set by leave(): the packets that tell the client to move, and when they last went. */
  #notice: Uint8Array[] | undefined;
  #noticeAt = 0;
  #leftAt = 0;
  /** Leaving, still serving until the client has moved (make-before-break): the notice for when it has not. */
  #overlap: LeaveNotice | undefined;
  /** A chunk read not done as long as the transfer waits on a silent client is given up on. */
  readonly #disk: DiskWait;
  /** The block whose read the transfer waits for. */
  #waitFor = 0;

  constructor(init: ReadTransferInit) {
    this.#socket = init.socket;
    this.#source = init.source;
    this.#clock = init.clock;
    this.#lastBlock = init.source.lastBlock;
    this.#firstBlock = init.firstBlock;
    this.#cookies = init.cookies;
    this.#interval = init.cookies?.template.interval ?? 0;
    this.#resumeAck = init.resumeAck ?? false;
    this.wantsCookies = init.cookies !== undefined;
    const giveUpMs = init.timeoutMs * (init.maxRetries + 1);
    // Leaving with its notice out, it ends on its own.
    this.#disk = new DiskWait(
      init.socket,
      init.clock,
      giveUpMs,
      () => !this.#done && this.#waiting && !this.#notice,
      () => this.#cookieNow(),
      (idleMs) => this.#diskTimedOut(idleMs),
    );
    this.#onEnd = (end) => init.onEnd(this.#disk.report(end));
    this.#oack = init.oack;
    this.#oackPending = init.oack !== undefined;
    this.#firstPacket = init.firstPacket;
    this.#handshakeMs = init.handshakeMs;
    this.#onUnderWay = init.onUnderWay;
    this.#released = init.firstBlock - 1;
    this.#poller = new Poller({ enabled: init.busyPoll, ...pollSettings(init.windowsize) }, { clock: init.clock });
    this.#engine = new WindowSender(
      {
        windowsize: init.windowsize,
        firstBlock: init.firstBlock,
        timeoutMs: init.timeoutMs,
        minTimeoutMs: init.minTimeoutMs,
        giveUpMs,
      },
      {
        send: this.#sendBlock,
        lastBlock: () => this.#lastBlock,
        acked: this.#acked,
        done: () => this.#finish({ reason: 'done', bytes: this.#bytes(), lastBlock: this.#engine.acked }),
        gone: () => this.#finish({ reason: 'timeout', bytes: this.#bytes(), lastBlock: this.#engine.acked }),
        windowOut: () => this.#poller.expect(),
      },
      { clock: init.clock, defer: setImmediate },
    );
    this.#socket.on('message', this.#onMessage);
    this.#socket.on('error', this.#onSocketError);
  }

  start(): void {
    this.#sendFirst();
    this.#arm(this.#handshakeMs);
  }

  /** The request came again (its answer was lost): the first packet again, once per request. */
  repeat(): void {
    if (!this.#done && !this.#underWay) this.#sendFirst();
  }

  #sendFirst(): void {
    if (this.#oack) {
      if (this.#oackSends++ === 0) this.#oackAt = this.#clock.now();
      this.#socket.send(this.#oack, this.#afterResend);
    } else this.#engine.sendFirst();
  }

  /** The client's first answer: from now on the engine's timers. */
  #startedUp(): void {
    this.#underWay = true;
    this.#disarm();
    this.#onUnderWay?.();
  }

  get leaving(): boolean {
    return this.#notice !== undefined || this.#overlap !== undefined;
  }

  leave(notice: LeaveNotice): boolean {
    if (this.#done || !this.wantsCookies) return false;
    if (this.#notice || this.#overlap) return true;
    if (!this.#underWay) {
      // An unproven address gets one small packet, nothing it could be flooded with.
      this.#finish({ reason: 'moved', bytes: 0, lastBlock: this.#engine.acked }, notice.error);
      return true;
    }
    const cookie = notice.card ? this.#cookieNow() : undefined;
    if (notice.card && cookie) {
      // Make-before-break: the client readies a PE of the card while this one still sends.
      this.#overlap = notice;
      this.#socket.send(cookie, this.#afterResend);
      this.#socket.send(notice.card, this.#afterResend);
      this.#disarm();
      this.#arm(LEAVE_OVERLAP_MS);
      return true;
    }
    this.#tell(notice);
    return true;
  }

  /** A cookie naming the block after the last one acknowledged (undefined at the end). */
  #cookieNow(): Uint8Array | undefined {
    const c = this.#cookies;
    const acked = this.#engine.acked;
    if (!c || acked + 1 > this.#lastBlock) return undefined;
    // Where the client is, not the last interval's cookie: nothing is sent twice.
    return cookieDatagram(c, acked + 1);
  }

  /** Stops sending and tells the client to move: cookie, card, leaving ERROR. */
  #tell(notice: LeaveNotice): void {
    const packets: Uint8Array[] = [];
    const cookie = this.#cookieNow();
    if (cookie) packets.push(cookie);
    if (notice.card) packets.push(notice.card);
    packets.push(notice.error);
    this.#notice = packets;
    this.#leftAt = this.#clock.now();
    this.#engine.stop();
    // Twice: one lost datagram must not cost the client a timeout.
    this.#repeatNotice();
    this.#repeatNotice();
    this.#disarm();
    this.#arm(LEAVE_QUIET_MS);
  }

  #repeatNotice(): void {
    this.#noticeAt = this.#clock.now();
    for (const p of this.#notice!) this.#socket.send(p, this.#afterResend);
  }

  /** While leaving: whatever the client sends means it missed the notice. */
  #stillThere(msg: Buffer): void {
    if (msg.length >= 2 && msg[0] === 0 && msg[1] === TftpOpcode.Error) {
      this.#finish({ reason: 'moved', bytes: this.#bytes(), lastBlock: this.#engine.acked });
      return;
    }
    const now = this.#clock.now();
    if (now - this.#noticeAt >= LEAVE_REPEAT_MS) this.#repeatNotice();
    this.#disarm();
    this.#arm(Math.max(0, Math.min(LEAVE_QUIET_MS, this.#leftAt + LEAVE_MAX_MS - now)));
  }

  abort(notify: boolean, message: string): void {
    if (this.#done) return;
    this.#finish(
      { reason: 'closed', bytes: this.#bytes(), lastBlock: this.#engine.acked },
      notify ? errorPacket(TftpErrorCode.NotDefined, message) : undefined,
    );
  }

  readonly #onMessage = (msg: Buffer): void => {
    if (this.#done) return;
    if (this.#notice) return this.#stillThere(msg);
    // Leaving, the client says it has moved (MOVED_ERROR_TEXT) or gives up: either way it is done here.
    if (this.#overlap && msg.length >= 2 && msg[0] === 0 && msg[1] === TftpOpcode.Error) {
      this.#finish({ reason: 'moved', bytes: this.#bytes(), lastBlock: this.#engine.acked });
      return;
    }
    if (msg.length === 4 && msg[0] === 0 && msg[1] === TftpOpcode.Ack) this.#ack((msg[2]! << 8) | msg[3]!);
    else this.#other(msg);
  };

  readonly #afterResend = (err: Error | null): void => {
    if (err) this.#onSocketError(err);
  };

  readonly #onSocketError = (err: Error): void => {
    if (this.#done) return;
    const code = (err as NodeJS.ErrnoException).code;
    // A datagram a local firewall dropped (EPERM) or no buffer took: lost, as on the wire; resent in time.
    if (code !== undefined && TRANSIENT_SEND_ERRORS.has(code)) return;
    // ICMP port unreachable on the connected socket: the client is gone.
    const gone = code === 'ECONNREFUSED';
    this.#finish({ reason: gone ? 'peer-gone' : 'error', bytes: this.#bytes(), lastBlock: this.#engine.acked, ...(gone ? {} : { error: err }) });
  };

  #ack(wire: number): void {
    if (this.#oackPending) {
      const from = wire === 0 ? this.#firstBlock : this.#resumeAck ? this.#heldThrough(wire) + 1 : -1;
      if (from < 0) return;
      this.#oackPending = false;
      this.#startedUp();
      this.#engine.skipTo(from - 1);
      this.#sendCookie(from);
      this.#engine.start(this.#oackSends === 1 ? this.#clock.now() - this.#oackAt : undefined);
      return;
    }
    if (!this.#underWay) {
      // Only the ACK of the first DATA proves the client: anything else waits for the deadline.
      if (wire !== wireBlock(this.#firstBlock)) return;
      this.#startedUp();
      this.#firstPacket = undefined;
      this.#engine.ack(wire);
      this.#engine.start();
      return;
    }
    this.#engine.ack(wire);
  }

  /** RESUME_ACK_OPTION: the absolute block of the client's first ACK, at most 65535 past the cookie's. */
  #heldThrough(wire: number): number {
    const before = this.#firstBlock - 1;
    // Not the last block: its ACK is what ends the transfer.
    return Math.min(before + blocksAhead(wire, before), this.#lastBlock - 1);
  }

  /** The engine's send: the block's packet, or false while it is read from the file. */
  readonly #sendBlock = (n: number, resend: boolean): boolean => {
    const packet = n === this.#firstBlock && this.#firstPacket ? this.#firstPacket : this.#source.packet(n);
    if (packet === undefined) {
      if (!this.#waiting) this.#wait(n);
      return false;
    }
    // A resend reports its errors: after a client vanished, only resends learn of it (ICMP port unreachable).
    if (resend) this.#socket.send(packet, this.#afterResend);
    else this.#socket.send(packet);
    return true;
  };

  /** An ACK moved the transfer forward: cookies, read-ahead release, polling. */
  readonly #acked = (b: number, from: number): void => {
    // The ACK came while polling: polling pays.
    this.#poller.heard(true);
    if (b >= this.#lastBlock) return;
    if (this.#interval > 0 && Math.floor(b / this.#interval) !== Math.floor(from / this.#interval)) this.#sendCookie(b + 1);
    // Chunks behind the window may go (checked every MiB, not every ACK).
    if ((b - this.#released) * this.#source.blksize >= 1 << 20) {
      this.#released = b;
      this.#source.release(b + 1);
    }
  };

  #wait(n: number): void {
    this.#waiting = true;
    this.#waitFor = n;
    this.#disk.wait(this.wantsCookies && this.#underWay);
    // Settling late (given up on meanwhile): the transfer is done, nothing more happens.
    this.#source.fetch(n).then(
      () => {
        this.#waited();
        if (!this.#done) this.#engine.more();
      },
      (err: unknown) => {
        this.#waited();
        if (this.#done) return;
        const e = new TftpServerBusyError(`read error: ${(err as Error).message}`, { cause: err });
        this.#finish({ reason: 'error', bytes: this.#bytes(), lastBlock: this.#engine.acked, error: e }, errorPacket(e.tftpCode, e.message));
      },
    );
  }

  #waited(): void {
    this.#waiting = false;
    this.#disk.stop();
  }

  /** The block's read has not completed in the give-up time: held, the slot, the socket and the chunks would stay for good. */
  #diskTimedOut(idleMs: number): void {
    const e = new TftpDiskTimeoutError(idleMs);
    // Shared: later transfers of the file read the chunk again, not wait on this read too.
    this.#source.abandon(this.#waitFor);
    // The client is told, and fails over.
    this.#finish({ reason: 'disk-timeout', bytes: this.#bytes(), lastBlock: this.#engine.acked, error: e }, errorPacket(e.tftpCode, e.message));
  }

  #other(msg: Buffer): void {
    // Anything not starting with a zero byte is ASAP; a client has nothing to tell the PE that way mid-transfer.
    if (msg.length > 0 && msg[0] !== 0) return;
    if (msg.length >= 2 && msg[1] === TftpOpcode.Error) {
      const { code, message } = peerError(msg);
      this.#finish({
        reason: 'peer-error',
        bytes: this.#bytes(),
        lastBlock: this.#engine.acked,
        error: new TftpRequestError('RSP_ERR_TFTP_PEER', code, message),
      });
      return;
    }
    const what = msg.length >= 2 ? (msg[1] === TftpOpcode.Ack ? 'malformed ACK' : `opcode ${(msg[0]! << 8) | msg[1]!} during a download`) : 'truncated packet';
    const e = new TftpIllegalOperationError(`illegal TFTP operation: ${what}`);
    this.#finish({ reason: 'error', bytes: this.#bytes(), lastBlock: this.#engine.acked, error: e }, errorPacket(e.tftpCode, e.message));
  }

  #sendCookie(next: number): void {
    const c = this.#cookies;
    if (!c || next > this.#lastBlock) return;
    const cookie = (this.#disk.latest = cookieDatagram(c, next));
    this.#socket.send(cookie);
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(this.#onTimer, ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The handshake's deadline, or the end of leaving; the engine keeps the transfer's own timer. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#done) return;
    if (this.#overlap && !this.#notice) {
      // The client did not move in time: it is told as without make-before-break.
      this.#tell(this.#overlap);
      return;
    }
    if (this.#notice) {
      // The client went quiet after the notice: it has moved.
      this.#finish({ reason: 'moved', bytes: this.#bytes(), lastBlock: this.#engine.acked });
      return;
    }
    // No answer to the first packet: a spoofed request, or a client gone. Nothing is resent.
    if (!this.#underWay) this.#finish({ reason: 'timeout', bytes: 0, lastBlock: this.#engine.acked });
  };

  #bytes(): number {
    const blksize = this.#source.blksize;
    return Math.max(0, Math.min(this.#engine.acked * blksize, this.#source.size) - (this.#firstBlock - 1) * blksize);
  }

  #finish(end: TransferEnd, lastPacket?: Uint8Array): void {
    if (this.#done) return;
    this.#done = true;
    this.#engine.stop();
    this.#poller.stop();
    this.#disarm();
    this.#disk.stop();
    this.#socket.off('message', this.#onMessage);
    const socket = this.#socket;
    // Errors after the end (a late ICMP) must not go unhandled.
    socket.on('error', () => {});
    if (lastPacket) socket.send(lastPacket, () => socket.close());
    else socket.close();
    void this.#source.close();
    this.#onEnd(end);
  }
}
