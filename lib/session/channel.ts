/** One PU-PE connection: framing, ASAP/data demux, reassembly, heartbeats, send queue with backpressure. Internal. */
import { EventEmitter } from 'eventemitter3';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType, type AsapMessage } from '../../protocols/asap/types.js';
import type { RSerPoolError } from '../errors.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import { PPID, type Connection } from '../transport/types.js';
import { MESSAGE_HEADER_LENGTH } from '../../protocols/framing.js';
import { PeerTimeoutError, SessionLimitError, SessionProtocolError } from './errors.js';
import { Reassembler, decodeSessionFrame, encodeDataFrames, encodeHeartbeat, type SessionFrame } from './frames.js';

interface ChannelInit {
  maxMessageSize: number;
  chunkSize: number;
  /** Bounds of the send queue (what the transport has not taken): past them the connection is reset. */
  maxQueuedBytes: number;
  maxQueuedMessages: number;
  /** Probe with a heartbeat after this long without a frame from the peer; 0 never. */
  heartbeatIntervalMs: number;
  /** Give the peer up when nothing arrived for this long; 0 never. */
  deadAfterMs: number;
  clock: Clock;
  logger: Logger;
}

interface ChannelEvents {
  /** An ASAP message of the session layer (Cookie, Cookie Echo, Business Card). */
  asap: (message: AsapMessage) => void;
  data: (bytes: Uint8Array) => void;
  close: (err: RSerPoolError | undefined) => void;
}

/** One queued message: its frames, and how many of them the transport already took. */
interface Outgoing {
  frames: Uint8Array[];
  next: number;
  ppid: number | undefined;
  /** Application data (carried over to the next PE on failover), not control. */
  data: boolean;
  ack?: boolean;
}

export class SessionChannel extends EventEmitter<ChannelEvents> {
  readonly conn: Connection;
  readonly #init: ChannelInit;
  readonly #asapPpid: number | undefined;
  readonly #reassembler: Reassembler;
  #queue: Outgoing[] = [];
  #queuedBytes = 0;
  /** A heartbeat ack waits in the queue: a peer that sends heartbeats and does not read gets one, not one per heartbeat. */
  #ackQueued = false;
  #waitingDrain = false;
  #lastHeard: number;
  #probeSent = false;
  #nonce = 0;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(conn: Connection, init: ChannelInit) {
    super();
    this.conn = conn;
    this.#init = init;
    // A stream carries one ppid and frames everything by the ASAP header; message transports keep ASAP on its own ppid.
    this.#asapPpid = conn.scheme === 'memory' || conn.scheme === 'sctp' || conn.scheme === 'sctp+udp' ? PPID.ASAP : undefined;
    this.#reassembler = new Reassembler(init.maxMessageSize);
    this.#lastHeard = init.clock.now();
    conn.on('message', this.#onMessage);
    conn.on('drain', this.#onDrain);
    conn.on('close', this.#onClose);
    this.#arm();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Bytes queued that the transport has not taken yet. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Throws SessionLimitError (and resets the connection) when the peer has left too much unread. */
  sendAsap(message: AsapMessage): void {
    const err = this.#enqueue({ frames: [encodeAsapMessage(message)], next: 0, ppid: this.#asapPpid, data: false });
    if (err) throw err;
  }

  /** Throws SessionLimitError (and resets the connection) when the peer has left too much unread. */
  sendData(bytes: Uint8Array): void {
    const err = this.#enqueue({ frames: encodeDataFrames(bytes, this.#init.chunkSize), next: 0, ppid: undefined, data: true });
    if (err) throw err;
  }

  /**
   * Application messages the transport has not taken in full: a message cut
   * after some of its chunks counts as unsent (the peer never saw all of it).
   */
  unsentData(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const o of this.#queue) {
      if (!o.data) continue;
      // Rebuilt from the frames (already a copy), so the caller may have reused its buffer since send().
      const chunks = o.frames.map((f) => f.subarray(MESSAGE_HEADER_LENGTH, (f[2]! << 8) | f[3]!));
      const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        whole.set(c, at);
        at += c.length;
      }
      out.push(whole);
    }
    return out;
  }

  /** Stops listening to the connection and resets it; no events after this. */
  detach(err?: RSerPoolError): void {
    this.#stop();
    this.conn.off('message', this.#onMessage);
    this.conn.off('drain', this.#onDrain);
    this.conn.off('close', this.#onClose);
    this.conn.abort(err);
  }

  /** Flushes the queue, then closes gracefully; a peer that takes nothing for `timeoutMs` gets a reset. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (!this.#closed) {
      const timer = this.#init.clock.setTimeout(() => this.conn.abort(), timeoutMs);
      try {
        await this.#drained();
      } finally {
        this.#init.clock.clearTimeout(timer);
      }
      if (this.conn.status === 'open') await this.conn.close();
    }
    await this.conn.closed;
  }

  abort(err?: RSerPoolError): void {
    this.conn.abort(err);
  }

  #drained(): Promise<void> {
    if (this.#queue.length === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.#queue.length > 0 && !this.#closed) return;
        this.conn.off('drain', check);
        this.conn.off('close', check);
        resolve();
      };
      this.conn.on('drain', check);
      this.conn.on('close', check);
    });
  }

  #enqueue(o: Outgoing): SessionLimitError | undefined {
    let size = 0;
    for (const f of o.frames) size += f.length;
    const { maxQueuedBytes, maxQueuedMessages } = this.#init;
    let err: SessionLimitError | undefined;
    if (this.#queuedBytes + size > maxQueuedBytes) err = new SessionLimitError('send queue', this.#queuedBytes + size, maxQueuedBytes);
    else if (this.#queue.length >= maxQueuedMessages) err = new SessionLimitError('send queue', this.#queue.length + 1, maxQueuedMessages, 'messages');
    if (err) {
      // The peer has not read what is queued for it: waiting longer only costs memory.
      this.#init.logger.warn({ id: this.conn.id, remote: this.conn.remote, err: err.message }, 'peer does not read, resetting');
      this.conn.abort(err);
      return err;
    }
    this.#queue.push(o);
    this.#queuedBytes += size;
    this.#flush();
    return undefined;
  }

  #flush(): void {
    while (!this.#waitingDrain && !this.#closed && this.conn.status === 'open') {
      const o = this.#queue[0];
      if (!o) return;
      const f = o.frames[o.next]!;
      let ok: boolean;
      try {
        ok = this.conn.send(f, o.ppid);
      } catch (err) {
        // A frame the transport refuses (too large for it, buffer full): the connection cannot carry the session.
        this.#init.logger.warn({ id: this.conn.id, err: (err as Error).message }, 'transport refused a session frame, resetting');
        this.conn.abort(err as RSerPoolError);
        return;
      }
      o.next++;
      this.#queuedBytes -= f.length;
      if (o.next === o.frames.length) {
        this.#queue.shift();
        if (o.ack) this.#ackQueued = false;
      }
      if (!ok) this.#waitingDrain = true;
    }
  }

  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    this.#flush();
  };

  readonly #onMessage = (bytes: Uint8Array): void => {
    if (this.#closed) return;
    let frame: SessionFrame;
    try {
      frame = decodeSessionFrame(bytes);
    } catch (err) {
      this.#protocolError(err);
      return;
    }
    this.#lastHeard = this.#init.clock.now();
    this.#probeSent = false;
    switch (frame.kind) {
      case 'data': {
        let whole: Uint8Array | undefined;
        try {
          whole = this.#reassembler.push(frame.chunk, frame.more);
        } catch (err) {
          this.#protocolError(err);
          return;
        }
        if (whole) this.emit('data', whole);
        return;
      }
      case 'heartbeat':
        if (this.#ackQueued) return;
        this.#ackQueued = true;
        this.#enqueue({ frames: [encodeHeartbeat(frame.nonce, true)], next: 0, ppid: undefined, data: false, ack: true });
        return;
      case 'heartbeat-ack':
        return;
      case 'asap': {
        const m = frame.message;
        if (m.type === AsapMessageType.Cookie || m.type === AsapMessageType.CookieEcho || m.type === AsapMessageType.BusinessCard) {
          if (this.#reassembler.pending) {
            this.#protocolError(new Error('an ASAP message inside a chunked application message'));
            return;
          }
          this.emit('asap', m);
        } else {
          this.#init.logger.debug({ id: this.conn.id, type: m.type }, 'ignoring an ASAP message that has no place in a session');
        }
        return;
      }
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${String(never)}`);
      }
    }
  };

  #protocolError(err: unknown): void {
    const e = new SessionProtocolError(`${this.conn.id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    this.#init.logger.warn({ id: this.conn.id, remote: this.conn.remote, err: e.message }, 'closing session on a malformed frame');
    this.conn.abort(e);
  }

  readonly #onClose = (err: RSerPoolError | undefined): void => {
    this.#stop();
    this.emit('close', err);
  };

  #stop(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One timer, re-armed from the time last heard, instead of a reset per received frame. */
  #arm(): void {
    const { heartbeatIntervalMs: probe, deadAfterMs: dead, clock } = this.#init;
    if (this.#closed || (probe <= 0 && dead <= 0)) return;
    const quiet = clock.now() - this.#lastHeard;
    let wait = Infinity;
    if (probe > 0 && !this.#probeSent) wait = Math.min(wait, probe - quiet);
    if (dead > 0) wait = Math.min(wait, dead - quiet);
    this.#timer = clock.setTimeout(() => this.#check(), Math.max(0, wait));
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    const { heartbeatIntervalMs: probe, deadAfterMs: dead, clock } = this.#init;
    const quiet = clock.now() - this.#lastHeard;
    if (dead > 0 && quiet >= dead) {
      const err = new PeerTimeoutError(`${this.conn.id}: nothing heard from ${this.conn.remote.host}:${this.conn.remote.port} for ${quiet} ms`);
      this.#init.logger.info({ id: this.conn.id, quiet }, 'peer silent, giving the connection up');
      this.conn.abort(err);
      return;
    }
    if (probe > 0 && !this.#probeSent && quiet >= probe) {
      this.#probeSent = true;
      this.#nonce = (this.#nonce + 1) >>> 0;
      this.#enqueue({ frames: [encodeHeartbeat(this.#nonce)], next: 0, ppid: undefined, data: false });
    }
    this.#arm();
  }
}
