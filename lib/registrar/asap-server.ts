/**
 * ASAP connections: accept, decode, apply the RFC 5354 unknown-parameter
 * rules, answer what cannot be decoded with ASAP_ERROR, and hand each
 * message to the handler for its type. No handlespace logic here.
 */
import { DecodeError, DecodeErrorCode } from '../../protocols/errors.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import {
  AsapMessageType,
  type AsapDeregistration,
  type AsapEndpointKeepAliveAck,
  type AsapEndpointUnreachable,
  type AsapHandleResolution,
  type AsapMessage,
  type AsapRegistration,
} from '../../protocols/asap/types.js';
import { ErrorCause, UnknownParameterAction, unknownParameterAction, type UnknownParameter } from '../../protocols/parameters/types.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { BufferFullError, type Connection, type Listener, type TransportSet, type TransportUrl } from '../transport/index.js';
import { listenGuarded, type ConnectionLimits } from '../transport/guard.js';

/** Cause info copied from an offending message is cut to this, so the ASAP_ERROR always fits. */
const MAX_CAUSE_INFO = 4096;

/** One ASAP association (connection) and the PEs registered through it. */
export class AsapSession {
  readonly id: string;
  readonly conn: Connection;
  /** Keys of PEs registered through this connection. */
  readonly owned = new Set<string>();
  readonly #logger: Logger;

  constructor(conn: Connection, logger: Logger) {
    this.id = conn.id;
    this.conn = conn;
    this.#logger = logger;
  }

  get open(): boolean {
    return this.conn.status === 'open';
  }

  /** Sends one message; false if it could not be queued (closed, or the peer does not read: then it is cut off). */
  send(m: AsapMessage): boolean {
    if (!this.open) return false;
    try {
      this.conn.send(encodeAsapMessage(m));
      return true;
    } catch (err) {
      this.#logger.warn({ conn: this.id, err: (err as Error).message }, 'ASAP send failed');
      if (err instanceof BufferFullError) this.conn.abort(err);
      return false;
    }
  }

  sendError(code: number, info: Uint8Array): void {
    this.send({ type: AsapMessageType.Error, error: [{ code, info: info.length > MAX_CAUSE_INFO ? info.slice(0, MAX_CAUSE_INFO) : info }] });
  }
}

export interface AsapHandlers {
  registration(s: AsapSession, m: AsapRegistration): void;
  deregistration(s: AsapSession, m: AsapDeregistration): void;
  handleResolution(s: AsapSession, m: AsapHandleResolution): void;
  keepAliveAck(s: AsapSession, m: AsapEndpointKeepAliveAck): void;
  unreachable(s: AsapSession, m: AsapEndpointUnreachable): void;
  opened(s: AsapSession): void;
  closed(s: AsapSession): void;
  badMessage(s: AsapSession, err: Error): void;
}

/** The TLV of an unknown parameter as received, for an Unrecognized Parameter cause. */
function parameterBytes(p: UnknownParameter): Uint8Array {
  const out = new Uint8Array(4 + p.raw.length);
  const len = Math.min(out.length, 0xffff);
  out[0] = p.type >> 8;
  out[1] = p.type & 0xff;
  out[2] = len >> 8;
  out[3] = len & 0xff;
  out.set(p.raw, 4);
  return out;
}

export class AsapServer {
  readonly #transports: TransportSet;
  readonly #handlers: AsapHandlers;
  readonly #logger: Logger;
  readonly #guard: { clock: Clock; limits: ConnectionLimits | undefined };
  readonly #listeners: Listener[] = [];
  readonly #sessions = new Set<AsapSession>();

  constructor(transports: TransportSet, handlers: AsapHandlers, logger: Logger, guard: { clock: Clock; limits: ConnectionLimits | undefined }) {
    this.#transports = transports;
    this.#handlers = handlers;
    this.#logger = logger;
    this.#guard = guard;
  }

  get connections(): number {
    return this.#sessions.size;
  }

  get addresses(): TransportUrl[] {
    return this.#listeners.map((l) => l.address);
  }

  async listen(urls: readonly string[], signal?: AbortSignal): Promise<void> {
    for (const url of urls) {
      const l = await listenGuarded(this.#transports, url, { signal }, this.#guard.limits, { clock: this.#guard.clock, logger: this.#logger });
      l.on('connection', (conn) => this.attach(conn));
      l.on('inboundError', (err, remote) =>
        this.#logger.info({ err: err.message, code: err.code, remote: `${remote.host}:${remote.port}` }, 'inbound ASAP connection refused'),
      );
      this.#listeners.push(l);
    }
  }

  /** Serves ASAP on a connection (accepted, or opened by us to reach a PE). */
  attach(conn: Connection): AsapSession {
    const s = new AsapSession(conn, this.#logger);
    this.#sessions.add(s);
    conn.on('message', (bytes) => this.#onMessage(s, bytes));
    conn.on('close', (err) => {
      this.#sessions.delete(s);
      if (err) this.#logger.info({ conn: s.id, err: err.message, code: err.code }, 'ASAP connection lost');
      this.#handlers.closed(s);
    });
    this.#handlers.opened(s);
    return s;
  }

  async close(): Promise<void> {
    const listeners = this.#listeners.splice(0);
    await Promise.all(listeners.map((l) => l.close()));
    // A stopping registrar resets its associations: a graceful close would wait on peers that may be gone.
    for (const s of [...this.#sessions]) s.conn.abort();
  }

  #onMessage(s: AsapSession, bytes: Uint8Array): void {
    let m: AsapMessage;
    try {
      m = decodeAsapMessage(bytes);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.#logger.info({ conn: s.id, err: e.message }, 'undecodable ASAP message');
      this.#handlers.badMessage(s, e);
      // RFC 5352 / 5354: an unknown message type is reported with the message itself; anything else is an invalid value.
      const unknownType = err instanceof DecodeError && err.code === DecodeErrorCode.UnknownType && err.offset === 0;
      if (bytes[0] !== AsapMessageType.Error) s.sendError(unknownType ? ErrorCause.UnrecognizedMessage : ErrorCause.InvalidValues, bytes.slice());
      return;
    }
    if (m.unknown && !this.#unknownParameters(s, m.unknown)) return;
    switch (m.type) {
      case AsapMessageType.Registration:
        return this.#handlers.registration(s, m);
      case AsapMessageType.Deregistration:
        return this.#handlers.deregistration(s, m);
      case AsapMessageType.HandleResolution:
        return this.#handlers.handleResolution(s, m);
      case AsapMessageType.EndpointKeepAliveAck:
        return this.#handlers.keepAliveAck(s, m);
      case AsapMessageType.EndpointUnreachable:
        return this.#handlers.unreachable(s, m);
      case AsapMessageType.Error:
        this.#logger.info({ conn: s.id, causes: m.error.map((c) => c.code) }, 'ASAP_ERROR received');
        return;
      default:
        // A message a registrar has no use for (responses, cookies, keep-alives): said so, not acted on.
        this.#handlers.badMessage(s, new Error(`ASAP message type ${m.type} is not for a registrar`));
        s.sendError(ErrorCause.UnrecognizedMessage, bytes.slice());
    }
  }

  /** RFC 5354 section 3: the top two bits of an unknown parameter's type say stop or skip, report or not. */
  #unknownParameters(s: AsapSession, params: UnknownParameter[]): boolean {
    let go = true;
    for (const p of params) {
      const action = unknownParameterAction(p.type);
      if (action === UnknownParameterAction.StopAndReport || action === UnknownParameterAction.SkipAndReport) {
        s.sendError(ErrorCause.UnrecognizedParameter, parameterBytes(p));
      }
      if (action === UnknownParameterAction.Stop || action === UnknownParameterAction.StopAndReport) go = false;
      if (!go) break;
    }
    return go;
  }
}
