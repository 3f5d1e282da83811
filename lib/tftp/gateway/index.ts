/**
 * A TFTP front for unmodified clients (curl, tftp-hpa, atftp ...): each
 * read request is served from a download the gateway makes from the pool as
 * a pool user, with state cookies, so when the PE dies mid-transfer the
 * gateway resumes at another PE and the client sees only a delay.
 *
 * Per transfer: the upstream download writes into a bounded buffer; the
 * downstream sender serves the client's blocks (its own blksize, window and
 * timeout) from that buffer. The upstream holds its ACKs while the buffer is
 * full, so a slow client slows the PE instead of filling memory.
 *
 * Until the client answers once its address is unproven (the RRQ may be
 * spoofed): the gateway sends it one packet per request, nothing on a timer,
 * reads no more than one upstream window for it, and drops the transfer at
 * the handshake deadline.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { decodeTftpPacket, encodeTftpPacket, parseTftpOptions } from '../../../protocols/tftp/codec.js';
import { errorPacket } from '../../../protocols/tftp/packets.js';
import { TFTP_MAX_BLOCK_SIZE, TftpErrorCode, TftpOpcode, type ParsedTftpOptions, type TftpReadRequest } from '../../../protocols/tftp/types.js';
import { systemClock, type Clock, type TimerHandle } from '../../clock.js';
import { RSerPoolError, StateError } from '../../errors.js';
import type { Events } from '../../events.js';
import { silentLogger, type Logger } from '../../logger.js';
import { createPoolUser, type PoolUser } from '../../pool-user/index.js';
import type { TransportSet } from '../../transport/index.js';
import { PoolFinder, deadAfterOf } from '../client/index.js';
import { TftpDownload, type FailoverInfo, type PeFinder, type PeTarget } from '../client/download.js';
import { TftpLocalIoError, TftpRemoteError } from '../client/errors.js';
import { BlockSender, type OutgoingBlocks } from '../client/sender.js';
import { DEFAULT_MIN_TIMEOUT_MS } from '../engine/sender.js';
import { RateLimitedSink, type DownloadSink } from '../client/sink.js';
import { closeSafe, sendSafe, usableSource } from '../engine/udp.js';

export interface TftpGatewayInit {
  listen: { host: string; port: number };
  handle: string;
  /** Registrar ASAP URLs (when no `pu` is given). */
  registrars?: string[];
  /** A pool user to resolve with (not closed by the gateway). */
  pu?: PoolUser;
  /** Upstream block size: the client's when larger. Default 1468. */
  blksize?: number;
  /** Upstream RFC 7440 window. Default 16. */
  windowsize?: number;
  /** Upstream retransmit. Default 200 ms. */
  timeoutMs?: number;
  /** A PE silent this long is dead (see TftpClientInit.deadAfterMs): the limit, or fixed when given alone. Default 600 ms. */
  deadAfterMs?: number;
  /** The floor of the measured dead-PE wait. Default 200 ms. */
  minDeadAfterMs?: number;
  /** Blocks between the PE's cookies (0: the PE's default). */
  cookieInterval?: number;
  /** Retransmit to a client that negotiated no timeout. Default 1,000 ms. */
  retransmitMs?: number;
  /** Client timeouts in a row before the client counts as gone. Default 5. */
  maxRetries?: number;
  /** Concurrent transfers; more are refused. Default 1,000. */
  maxTransfers?: number;
  /** Bytes a transfer reads ahead of its client. Default 16 MiB. */
  bufferBytes?: number;
  /** Bytes all transfers together read ahead of their clients. Default 256 MiB. */
  totalBufferBytes?: number;
  /** A client must answer the first packet within this long. Default 3,000 ms. */
  handshakeMs?: number;
  /** Transfers from one address still in their handshake; more are dropped unanswered. Default 8. */
  maxHandshakesPerSource?: number;
  /** Largest window granted to a client. Default 64. */
  maxWindowSize?: number;
  /** Bytes a second each transfer reads from the pool, and so sends its client (no limit when absent). */
  limitRate?: number;
}

export interface TftpGatewayComponents {
  clock?: Clock;
  logger?: Logger;
  transports?: TransportSet;
  /** Where to find PEs (default: the pool under `handle`); tests point it elsewhere. */
  finder?: () => PeFinder;
}

interface GatewayTransferInfo {
  id: number;
  path: string;
  client: { address: string; port: number };
}

export interface GatewayTransferEnd extends GatewayTransferInfo {
  ok: boolean;
  bytes: number;
  failovers: number;
  stallMs: number;
  error?: Error;
}

export interface GatewayTransferStatus extends GatewayTransferInfo {
  /** The PE serving it now (undefined while failing over). */
  pe: PeTarget | undefined;
  /** Bytes from the pool so far. */
  received: number;
  /** Bytes the client acknowledged. */
  delivered: number;
  /** The file's size, once the PE told it. */
  total: number | undefined;
  failovers: number;
}

export interface TftpGatewayEvents {
  'transfer-start': (t: GatewayTransferInfo) => void;
  'transfer-end': (t: GatewayTransferEnd) => void;
  failover: (f: FailoverInfo & GatewayTransferInfo) => void;
}

export interface TftpGateway extends Events<TftpGatewayEvents> {
  start(): Promise<void>;
  /** The bound address (after start()). */
  readonly address: { address: string; port: number };
  readonly activeTransfers: number;
  /** What each active transfer is at. */
  transfers(): GatewayTransferStatus[];
  /** Stops taking requests and ends the transfers. */
  stop(): Promise<void>;
  /** The same as stop(). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Bad configuration or a call out of order. */
export class TftpGatewayError extends RSerPoolError {
  override readonly name = 'TftpGatewayError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_GATEWAY', message, options);
  }
}

const CHUNK = 1 << 20;
const EMPTY: Uint8Array[] = [];

/** What all transfers' buffers hold together, and the buffers waiting for some of it to go. */
class BufferBudget {
  used = 0;
  readonly limit: number;
  readonly #waiting = new Set<GatewayBuffer>();

  constructor(limit: number) {
    this.limit = limit;
  }

  get over(): boolean {
    return this.used > this.limit;
  }

  wait(b: GatewayBuffer): void {
    this.#waiting.add(b);
  }

  forget(b: GatewayBuffer): void {
    this.#waiting.delete(b);
  }

  give(bytes: number): void {
    this.used -= bytes;
    if (this.over) return;
    for (const b of this.#waiting) {
      this.#waiting.delete(b);
      b.onDrain?.();
      if (this.over) return;
    }
  }
}

/** The upstream's bytes, kept from the client's last ACK on. */
class GatewayBuffer implements DownloadSink, OutgoingBlocks {
  onDrain: (() => void) | undefined;
  /** The sender waits for bytes. */
  onData: (() => void) | undefined;
  readonly canRewind = false;
  readonly failed: Error | undefined = undefined;
  #limit: number;
  readonly #budget: BufferBudget;
  /** Bytes counted against the budget (from the client's last ACK on). */
  #counted = 0;
  readonly #chunks: Buffer[] = [];
  /** Byte offset of #chunks[0]. */
  #base = 0;
  #written = 0;
  #released = 0;
  #total: number | undefined;
  #waiting = false;

  constructor(limit: number, budget: BufferBudget) {
    this.#limit = limit;
    this.#budget = budget;
  }

  /** The limit changes when the client answers: until then it is 0 (one upstream window). */
  setLimit(limit: number): void {
    const wasFull = this.full;
    this.#limit = limit;
    if (wasFull && !this.full) this.onDrain?.();
  }

  get bytes(): number {
    return this.#written;
  }

  get total(): number | undefined {
    return this.#total;
  }

  /** Over the limit, unless the client's window reaches past what is here (holding back then would deadlock). */
  get full(): boolean {
    if (this.#waiting) return false;
    if (this.#written - this.#released > this.#limit) return true;
    if (!this.#budget.over) return false;
    this.#budget.wait(this);
    return true;
  }

  write(buf: Uint8Array, start: number, end: number): void {
    let from = start;
    while (from < end) {
      const at = this.#written - this.#base;
      const index = Math.floor(at / CHUNK);
      const chunk = (this.#chunks[index] ??= Buffer.allocUnsafe(CHUNK));
      const off = at - index * CHUNK;
      const n = Math.min(CHUNK - off, end - from);
      if (Buffer.isBuffer(buf)) buf.copy(chunk, off, from, from + n);
      else chunk.set(buf.subarray(from, from + n), off);
      this.#written += n;
      from += n;
    }
    this.#counted += end - start;
    this.#budget.used += end - start;
    if (this.#waiting) this.#wake();
  }

  block(n: number, blksize: number): Uint8Array[] | undefined {
    const start = (n - 1) * blksize;
    const want = start + blksize;
    if (this.#total === undefined && this.#written < want) {
      if (!this.#waiting) {
        this.#waiting = true;
        // The upstream may be holding its ACK for a full buffer: let it go on.
        this.onDrain?.();
      }
      return undefined;
    }
    const end = Math.min(want, this.#written);
    if (start > end || start < this.#base) return undefined;
    if (start === end) return EMPTY;
    const i = Math.floor((start - this.#base) / CHUNK);
    const j = Math.floor((end - 1 - this.#base) / CHUNK);
    const a = this.#chunks[i]!;
    const offA = start - this.#base - i * CHUNK;
    if (i === j) return [a.subarray(offA, offA + (end - start))];
    const b = this.#chunks[j]!;
    return [a.subarray(offA), b.subarray(0, end - this.#base - j * CHUNK)];
  }

  /** The client has everything before byte `upTo`. */
  release(upTo: number): void {
    const wasFull = this.#written - this.#released > this.#limit;
    this.#released = Math.max(this.#released, upTo);
    const counted = Math.max(0, this.#written - this.#released);
    if (counted < this.#counted) {
      this.#budget.give(this.#counted - counted);
      this.#counted = counted;
    }
    while (this.#chunks.length > 0 && this.#base + CHUNK <= this.#released) {
      this.#chunks.shift();
      this.#base += CHUNK;
    }
    if (wasFull && this.#written - this.#released <= this.#limit) this.onDrain?.();
  }

  rewind(): Promise<void> {
    return Promise.reject(new TftpLocalIoError('the gateway cannot start a transfer over: its client has part of the file'));
  }

  finish(): Promise<{ bytes: number }> {
    this.#total = this.#written;
    if (this.#waiting) this.#wake();
    return Promise.resolve({ bytes: this.#written });
  }

  abort(): Promise<void> {
    this.#chunks.length = 0;
    this.dispose();
    return Promise.resolve();
  }

  /** The transfer is over: its bytes no longer count. */
  dispose(): void {
    this.#budget.forget(this);
    if (this.#counted > 0) this.#budget.give(this.#counted);
    this.#counted = 0;
  }

  #wake(): void {
    this.#waiting = false;
    this.onData?.();
  }
}

interface GatewaySettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  deadAfterMs: number;
  minDeadAfterMs: number;
  cookieInterval: number;
  retransmitMs: number;
  maxRetries: number;
  maxTransfers: number;
  bufferBytes: number;
  maxWindowSize: number;
  handshakeMs: number;
  maxHandshakesPerSource: number;
  limitRate: number | undefined;
}

class GatewayTransfer {
  readonly info: GatewayTransferInfo;
  readonly #gw: GatewayImpl;
  readonly #socket: Socket;
  readonly #client: { host: string; port: number };
  readonly #buffer: GatewayBuffer;
  readonly #download: TftpDownload;
  readonly #life = new AbortController();
  readonly #options: ParsedTftpOptions;
  readonly #hadOptions: boolean;
  #blksize: number;
  #windowsize: number;
  #timeoutMs: number;
  #oack: Uint8Array | undefined;
  #sender: BlockSender | undefined;
  #answered = false;
  /** When the first packet went to the client (-1: not yet), and whether the client answered it. */
  #firstSentAt = -1;
  /** The OACK went more than once (a repeated RRQ): its ACK 0 times no round trip (Karn). */
  #oackRepeated = false;
  #underWay = false;
  #ended = false;
  #failovers = 0;
  #stallMs = 0;
  #upstreamDone = false;
  #tsize: number | undefined;

  constructor(gw: GatewayImpl, id: number, rrq: TftpReadRequest, client: RemoteInfo, socket: Socket, finder: PeFinder) {
    this.#gw = gw;
    this.#socket = socket;
    this.#client = { host: client.address, port: client.port };
    this.info = { id, path: rrq.filename, client: { address: client.address, port: client.port } };
    const s = gw.settings;
    this.#options = parseTftpOptions(rrq.options);
    const o = this.#options;
    this.#hadOptions = o.blksize !== undefined || o.tsize !== undefined || o.timeout !== undefined || o.windowsize !== undefined;
    this.#blksize = o.blksize ?? 512;
    this.#windowsize = Math.min(o.windowsize ?? 1, s.maxWindowSize);
    this.#timeoutMs = o.timeout !== undefined ? o.timeout * 1000 : s.retransmitMs;
    // One upstream window at most until the client answers.
    this.#buffer = new GatewayBuffer(0, gw.budget);
    this.#buffer.onData = () => this.#sender?.more();
    this.#download = new TftpDownload(
      {
        path: rrq.filename,
        mode: rrq.mode === 'netascii' ? 'netascii' : 'octet',
        blksize: Math.min(TFTP_MAX_BLOCK_SIZE, Math.max(this.#blksize, s.blksize)),
        windowsize: s.windowsize,
        timeoutMs: s.timeoutMs,
        deadAfterMs: s.deadAfterMs,
        minDeadAfterMs: s.minDeadAfterMs,
        cookieInterval: s.cookieInterval,
        restartOnRefusal: false,
        maxFailovers: 8,
        askTsize: true,
        dallyMs: Math.max(2 * s.timeoutMs, 1_000),
      },
      s.limitRate !== undefined ? new RateLimitedSink(this.#buffer, s.limitRate, gw.clock) : this.#buffer,
      finder,
      { clock: gw.clock, logger: gw.logger },
      {
        onNegotiated: (n) => this.#upstreamReady(n.tsize),
        onFailover: (f) => {
          this.#failovers++;
          this.#stallMs = Math.max(this.#stallMs, f.stallMs);
          gw.emit('failover', { ...f, ...this.info });
        },
      },
    );
    socket.on('message', this.#onMessage);
    this.#download.run(this.#life.signal).then(
      () => {
        this.#upstreamDone = true;
      },
      (err: unknown) => this.#upstreamFailed(err as Error),
    );
  }

  status(): GatewayTransferStatus {
    return {
      ...this.info,
      pe: this.#download.pe,
      received: this.#buffer.bytes,
      delivered: this.#delivered(),
      total: this.#buffer.total ?? this.#tsize,
      failovers: this.#failovers,
    };
  }

  #delivered(): number {
    return this.#sender ? Math.min(this.#sender.acked * this.#blksize, this.#buffer.bytes) : 0;
  }

  /** The PE agreed (or answered without options): answer the client. */
  #upstreamReady(tsize: number | undefined): void {
    if (this.#answered || this.#ended) return;
    this.#tsize = tsize;
    this.#answered = true;
    if (!this.#hadOptions) return this.#startSending(false);
    const o = this.#options;
    const ack: [string, string][] = [];
    if (o.blksize !== undefined) ack.push(['blksize', String(this.#blksize)]);
    if (o.tsize !== undefined && tsize !== undefined) ack.push(['tsize', String(tsize)]);
    if (o.timeout !== undefined) ack.push(['timeout', String(o.timeout)]);
    if (o.windowsize !== undefined) ack.push(['windowsize', String(this.#windowsize)]);
    if (ack.length === 0) return this.#startSending(false);
    this.#oack = encodeTftpPacket({ opcode: TftpOpcode.Oack, options: ack });
    this.#firstSentAt = this.#gw.clock.now();
    this.#send(this.#oack);
  }

  /** The client sent its RRQ again: the first packet again, until it answered. */
  repeat(): void {
    if (this.#ended || this.#underWay) return;
    if (this.#oack) {
      this.#oackRepeated = true;
      this.#send(this.#oack);
    } else this.#sender?.sendFirst();
  }

  /** The client's first answer proves its address: the transfer may now read ahead and retransmit. */
  #startedUp(): void {
    this.#underWay = true;
    this.#buffer.setLimit(this.#gw.settings.bufferBytes);
    this.#gw.settled(this);
  }

  /** Ends a transfer still in its handshake, silently, for a newer request. */
  drop(): void {
    this.#end(new TftpGatewayError('dropped for a newer request: the client had not answered'));
  }

  /** After the OACK's ACK 0 (`proven`), or as the answer to a bare RRQ: then block 1 alone until the client answers. */
  #startSending(proven: boolean, rttMs?: number): void {
    this.#oack = undefined;
    this.#sender = new BlockSender(
      this.#socket,
      this.#client,
      this.#buffer,
      {
        blksize: this.#blksize,
        windowsize: this.#windowsize,
        timeoutMs: this.#timeoutMs,
        // A timeout the client asked for is kept (RFC 2349); else the wait follows the measured round trip.
        minTimeoutMs: this.#options.timeout !== undefined ? this.#timeoutMs : Math.min(this.#timeoutMs, DEFAULT_MIN_TIMEOUT_MS),
        giveUpMs: this.#timeoutMs * (this.#gw.settings.maxRetries + 1),
      },
      {
        onDone: () => this.#end(),
        onGone: () => this.#end(new TftpGatewayError(`the client ${this.#client.host}:${this.#client.port} stopped acknowledging`)),
        onAcked: (k) => this.#buffer.release(k * this.#blksize),
      },
      this.#gw.clock,
    );
    if (proven) this.#sender.start(rttMs);
    else this.#sender.sendFirst();
    if (this.#firstSentAt < 0) this.#firstSentAt = this.#gw.clock.now();
  }

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (rinfo.port !== this.#client.port || rinfo.address !== this.#client.host) {
      if (msg.length >= 2 && msg[0] === 0 && msg[1] !== TftpOpcode.Error && usableSource(rinfo.address, rinfo.port)) {
        sendSafe(this.#socket, errorPacket(TftpErrorCode.UnknownTransferId, 'unknown transfer ID'), rinfo.port, rinfo.address, () => {});
      }
      return;
    }
    if (msg.length < 4 || msg[0] !== 0) return;
    if (msg[1] === TftpOpcode.Ack) {
      const block = (msg[2]! << 8) | msg[3]!;
      if (this.#sender) {
        this.#sender.ack(block);
        if (!this.#underWay && this.#sender.acked > 0 && !this.#ended) {
          this.#startedUp();
          this.#sender.start();
        }
        return;
      }
      if (this.#oack && block === 0) {
        const rttMs = this.#oackRepeated ? undefined : this.#gw.clock.now() - this.#firstSentAt;
        this.#startedUp();
        this.#startSending(true, rttMs);
      }
      return;
    }
    if (msg[1] === TftpOpcode.Error) {
      let text = '';
      try {
        const p = decodeTftpPacket(msg);
        if (p.opcode === TftpOpcode.Error) text = `${p.code}: ${p.message}`;
      } catch {
        text = 'malformed ERROR';
      }
      this.#end(new TftpGatewayError(`the client ended the transfer (${text})`));
    }
  };

  tick(now: number): void {
    if (this.#ended) return;
    if (!this.#underWay) {
      // Nothing is resent to an address that never answered; past the deadline the transfer goes, silently.
      if (this.#firstSentAt >= 0 && now - this.#firstSentAt >= this.#gw.settings.handshakeMs) {
        this.#end(new TftpGatewayError('the client did not answer the first packet'));
      }
    }
  }

  #upstreamFailed(err: Error): void {
    if (this.#ended) return;
    const remote = err instanceof TftpRemoteError && !this.#answered ? err : undefined;
    // Before the client heard anything, a PE's own error (file not found ...) goes to it as is.
    const code = remote ? remote.tftpCode : TftpErrorCode.NotDefined;
    const text = remote ? remote.remoteMessage : `the pool could not serve the file: ${err.message}`;
    this.#end(err, errorPacket(code, text));
  }

  #send(b: Uint8Array): void {
    sendSafe(this.#socket, b, this.#client.port, this.#client.host, () => {});
  }

  /** Ends the transfer; `lastWords` (an ERROR) goes to the client first. */
  #end(err?: Error, lastWords?: Uint8Array): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sender?.stop();
    this.#buffer.dispose();
    if (!this.#upstreamDone) this.#life.abort(err ?? new TftpGatewayError('the transfer ended'));
    this.#socket.off('message', this.#onMessage);
    const socket = this.#socket;
    // Closing at once would drop a send still on its way.
    if (lastWords) sendSafe(socket, lastWords, this.#client.port, this.#client.host, () => closeSafe(socket));
    else closeSafe(socket);
    this.#gw.ended(this, {
      ...this.info,
      ok: !err,
      bytes: this.#delivered(),
      failovers: this.#failovers,
      stallMs: this.#stallMs,
      ...(err ? { error: err } : {}),
    });
    // The upstream answers a repeated last block a little longer, then closes by itself.
    if (!this.#upstreamDone) this.#download.dispose();
  }

  shutdown(): void {
    const err = new TftpGatewayError('the gateway is shutting down');
    this.#end(err, errorPacket(TftpErrorCode.NotDefined, err.message));
    this.#download.dispose();
  }
}

class GatewayImpl extends EventEmitter<TftpGatewayEvents> implements TftpGateway {
  readonly settings: GatewaySettings;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly #init: TftpGatewayInit;
  readonly #components: TftpGatewayComponents;
  #pu: PoolUser | undefined;
  #socket: Socket | undefined;
  #address: { address: string; port: number } | undefined;
  readonly #transfers = new Set<GatewayTransfer>();
  /** Transfers by client address: a repeated RRQ (the client's retransmission) is not a new transfer. */
  readonly #byClient = new Map<string, GatewayTransfer>();
  /** Transfers in their handshake, by client address. */
  readonly #handshakes = new Map<string, number>();
  readonly #handshaking = new Set<GatewayTransfer>();
  /** Requests whose transfer socket is being bound. */
  #binding = 0;
  readonly budget: BufferBudget;
  #nextId = 1;
  #tick: TimerHandle | undefined;
  #closed = false;

  constructor(init: TftpGatewayInit, components: TftpGatewayComponents) {
    super();
    this.#init = init;
    this.#components = components;
    this.clock = components.clock ?? systemClock;
    this.logger = (components.logger ?? silentLogger).child({ component: 'tftp-gateway' });
    const timeoutMs = init.timeoutMs ?? 200;
    this.settings = {
      blksize: init.blksize ?? 1468,
      windowsize: init.windowsize ?? 16,
      timeoutMs,
      ...deadAfterOf(init.deadAfterMs, init.minDeadAfterMs, timeoutMs),
      cookieInterval: init.cookieInterval ?? 0,
      retransmitMs: init.retransmitMs ?? 1_000,
      maxRetries: init.maxRetries ?? 5,
      maxTransfers: init.maxTransfers ?? 1_000,
      bufferBytes: init.bufferBytes ?? 16 << 20,
      maxWindowSize: init.maxWindowSize ?? 64,
      handshakeMs: init.handshakeMs ?? 3_000,
      maxHandshakesPerSource: init.maxHandshakesPerSource ?? 8,
      limitRate: init.limitRate,
    };
    this.budget = new BufferBudget(init.totalBufferBytes ?? 256 << 20);
    if (!init.handle) throw new TftpGatewayError('a pool handle is needed');
    if (!(this.settings.blksize >= 8 && this.settings.blksize <= TFTP_MAX_BLOCK_SIZE))
      throw new TftpGatewayError(`blksize ${this.settings.blksize} is out of 8..65464`);
    if (init.limitRate !== undefined && !(init.limitRate > 0)) throw new TftpGatewayError(`limitRate ${init.limitRate} is not above 0`);
    this.#pu = init.pu;
  }

  get address(): { address: string; port: number } {
    if (!this.#address) throw new StateError('the gateway is not started');
    return this.#address;
  }

  get activeTransfers(): number {
    return this.#transfers.size;
  }

  transfers(): GatewayTransferStatus[] {
    return [...this.#transfers].map((t) => t.status());
  }

  async start(): Promise<void> {
    if (this.#socket) throw new StateError('the gateway is already started');
    const { host, port } = this.#init.listen;
    const socket = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        socket.close();
        reject(new TftpGatewayError(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
      };
      socket.once('error', fail);
      socket.bind(port, host, () => {
        socket.off('error', fail);
        resolve();
      });
    });
    socket.on('error', (err) => this.logger.warn({ err: err.message }, 'gateway socket error'));
    socket.on('message', (msg, rinfo) => this.#request(msg, rinfo));
    this.#socket = socket;
    const a = socket.address();
    this.#address = { address: a.address, port: a.port };
    this.#scheduleTick();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  stop(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#tick) this.clock.clearTimeout(this.#tick);
    for (const t of [...this.#transfers]) t.shutdown();
    this.#socket?.close();
    this.#socket = undefined;
    if (!this.#init.pu) await this.#pu?.close();
  }

  /** The transfer's handshake is over (its client answered, or it ended). */
  settled(t: GatewayTransfer): void {
    if (this.#handshaking.delete(t)) this.#uncount(t.info.client.address);
  }

  #uncount(address: string): void {
    const n = (this.#handshakes.get(address) ?? 1) - 1;
    if (n > 0) this.#handshakes.set(address, n);
    else this.#handshakes.delete(address);
  }

  ended(t: GatewayTransfer, end: GatewayTransferEnd): void {
    this.settled(t);
    this.#transfers.delete(t);
    const key = `${end.client.address}:${end.client.port}`;
    if (this.#byClient.get(key) === t) this.#byClient.delete(key);
    if (end.ok) this.logger.info({ id: end.id, path: end.path, bytes: end.bytes, failovers: end.failovers }, 'transfer done');
    else this.logger.info({ id: end.id, path: end.path, err: end.error?.message }, 'transfer failed');
    this.emit('transfer-end', end);
  }

  #finder(): PeFinder {
    if (this.#components.finder) return this.#components.finder();
    this.#pu ??= createPoolUser(
      { registrars: this.#init.registrars ?? [], ...((this.#init.registrars ?? []).length > 0 ? { discovery: false as const } : {}), items: 8 },
      {
        clock: this.clock,
        logger: this.#components.logger ?? silentLogger,
        ...(this.#components.transports ? { transports: this.#components.transports } : {}),
      },
    );
    return new PoolFinder(this.#pu, this.#init.handle, this.logger);
  }

  #request(msg: Buffer, rinfo: RemoteInfo): void {
    // No answer can go back to port 0 or a group address: nothing to start.
    if (!usableSource(rinfo.address, rinfo.port)) return;
    // Garbage gets no answer larger than itself (`maxBytes`): nothing to gain by reflecting it off the gateway.
    const reply = (code: number, text: string, maxBytes = Number.POSITIVE_INFINITY): void => {
      const packet = errorPacket(code, text, maxBytes);
      if (this.#socket && packet) sendSafe(this.#socket, packet, rinfo.port, rinfo.address, () => {});
    };
    let p;
    try {
      p = decodeTftpPacket(msg);
    } catch (err) {
      this.logger.info({ from: `${rinfo.address}:${rinfo.port}`, err: (err as Error).message }, 'malformed request');
      return reply(TftpErrorCode.IllegalOperation, `malformed request: ${(err as Error).message}`, msg.length);
    }
    if (p.opcode === TftpOpcode.Wrq) return reply(TftpErrorCode.AccessViolation, 'this gateway serves downloads only');
    if (p.opcode !== TftpOpcode.Rrq) return; // a late packet of a finished transfer: nothing to say
    if (p.mode === 'mail') return reply(TftpErrorCode.IllegalOperation, 'mail mode is not supported');
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = this.#byClient.get(key);
    if (existing) return existing.repeat();
    // Unanswered: an answer per request is what a flood from spoofed addresses wants.
    if ((this.#handshakes.get(rinfo.address) ?? 0) >= this.settings.maxHandshakesPerSource) return;
    if (this.#transfers.size + this.#binding >= this.settings.maxTransfers) {
      // Full: the oldest transfer whose client never answered makes room, so such a flood cannot lock out clients that answer.
      const oldest = this.#handshaking.values().next();
      if (oldest.done) return reply(TftpErrorCode.NotDefined, 'the gateway is busy, try again later');
      oldest.value.drop();
    }
    // Counted from now: the socket is bound asynchronously, and the requests behind this one must see it.
    this.#handshakes.set(rinfo.address, (this.#handshakes.get(rinfo.address) ?? 0) + 1);
    this.#binding++;
    const host = this.#init.listen.host;
    const socket = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
    socket.on('error', (err) => this.logger.warn({ err: err.message }, 'transfer socket error'));
    socket.bind(0, host, () => {
      this.#binding--;
      const giveUp = (): void => {
        this.#uncount(rinfo.address);
        closeSafe(socket);
      };
      if (this.#closed) return giveUp();
      let finder: PeFinder;
      try {
        finder = this.#finder();
      } catch (err) {
        giveUp();
        return reply(TftpErrorCode.NotDefined, (err as Error).message);
      }
      if (this.#byClient.has(key)) return giveUp();
      const t = new GatewayTransfer(this, this.#nextId++, p, rinfo, socket, finder);
      this.#transfers.add(t);
      this.#byClient.set(key, t);
      this.#handshaking.add(t);
      this.logger.info({ id: t.info.id, path: p.filename, client: `${rinfo.address}:${rinfo.port}` }, 'transfer start');
      this.emit('transfer-start', t.info);
    });
  }

  #scheduleTick(): void {
    this.#tick = this.clock.setTimeout(() => {
      const now = this.clock.now();
      for (const t of this.#transfers) t.tick(now);
      if (!this.#closed) this.#scheduleTick();
    }, 50);
  }
}

export function createTftpGateway(init: TftpGatewayInit, components: TftpGatewayComponents = {}): TftpGateway {
  return new GatewayImpl(init, components);
}
