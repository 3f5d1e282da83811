import { RSerPoolError, StateError } from '../errors.js';

/** No PE of the pool could be reached: the resolution was empty or failed, or every candidate refused. */
export class NoPoolElementError extends RSerPoolError {
  override readonly name = 'NoPoolElementError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_NO_POOL_ELEMENT', message, options);
  }
}

/** The session failed over `maxFailovers` times in a row without hearing from any PE in between. */
export class FailoverLimitError extends RSerPoolError {
  override readonly name = 'FailoverLimitError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_FAILOVER_LIMIT', message, options);
  }
}

/** One failover did not reach a new PE within `failoverTimeoutMs`. */
export class FailoverTimeoutError extends RSerPoolError {
  override readonly name = 'FailoverTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_FAILOVER_TIMEOUT', message, options);
  }
}

/** The peer answered neither data nor heartbeats in time; the connection was given up. */
export class PeerTimeoutError extends RSerPoolError {
  override readonly name = 'PeerTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_PEER_TIMEOUT', message, options);
  }
}

/** The peer sent a frame the session layer cannot decode; `cause` is the DecodeError. */
export class SessionProtocolError extends RSerPoolError {
  override readonly name = 'SessionProtocolError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_SESSION_PROTOCOL', message, options);
  }
}

/** An operation on a session (or session server) that is closed. */
export class SessionClosedError extends RSerPoolError {
  override readonly name = 'SessionClosedError';
  constructor(message = 'the session is closed', options?: { cause?: unknown }) {
    super('RSP_ERR_SESSION_CLOSED', message, options);
  }
}

/** The application asked for a failover (`session.failover(reason)`), e.g. after a request timed out. */
export class FailoverRequestedError extends RSerPoolError {
  override readonly name = 'FailoverRequestedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_FAILOVER_REQUESTED', message, options);
  }
}

/** An application message or cookie above the session's limit, or a send queue above its limit. */
export class SessionLimitError extends RSerPoolError {
  override readonly name = 'SessionLimitError';
  readonly size: number;
  readonly limit: number;
  constructor(what: string, size: number, limit: number, unit = 'bytes') {
    super('RSP_ERR_SESSION_LIMIT', `${what} of ${size} ${unit} exceeds the limit of ${limit}`);
    this.size = size;
    this.limit = limit;
  }
}

/** The session server is not in a state for the call (e.g. `address` before start()). */
export class SessionServerStateError extends StateError {
  override readonly name: string = 'SessionServerStateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
