import { RSerPoolError } from '../errors.js';

export { AbortedError, TimeoutError } from '../errors.js';

/** Nothing listens at the address (TCP RST to the SYN, or no memory listener). */
export class ConnectionRefusedError extends RSerPoolError {
  override readonly name = 'ConnectionRefusedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_CONNECTION_REFUSED', message, options);
  }
}

/** The peer reset the connection, or it ended without a graceful close. */
export class ConnectionResetError extends RSerPoolError {
  override readonly name = 'ConnectionResetError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_CONNECTION_RESET', message, options);
  }
}

/** An operation on a connection or listener that is already closed (or closing). */
export class ConnectionClosedError extends RSerPoolError {
  override readonly name = 'ConnectionClosedError';
  constructor(message = 'the connection is closed', options?: { cause?: unknown }) {
    super('RSP_ERR_CONNECTION_CLOSED', message, options);
  }
}

/** An outgoing message is above the transport's maximum message size. */
export class MessageTooLargeError extends RSerPoolError {
  override readonly name = 'MessageTooLargeError';
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number) {
    super('RSP_ERR_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limit}`);
    this.size = size;
    this.limit = limit;
  }
}

/** An outgoing message whose own header does not frame it (length field disagrees with its size). */
export class InvalidMessageError extends RSerPoolError {
  override readonly name = 'InvalidMessageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_INVALID_MESSAGE', message, options);
  }
}

/** The peer's byte stream lost sync (bad or oversize length); `cause` is the DecodeError. */
export class FramingError extends RSerPoolError {
  override readonly name = 'FramingError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_FRAMING', message, options);
  }
}

/** The outbound buffer would pass its hard limit; the message was not queued. */
export class BufferFullError extends RSerPoolError {
  override readonly name = 'BufferFullError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_BUFFER_FULL', message, options);
  }
}

/** A stream transport carries one ppid per connection; the message asked for another. */
export class PpidMismatchError extends RSerPoolError {
  override readonly name = 'PpidMismatchError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_PPID_MISMATCH', message, options);
  }
}

/** TLS could not authenticate the peer: bad or untrusted certificate, wrong PSK, missing client certificate, not TLS at all. */
export class TlsAuthError extends RSerPoolError {
  override readonly name = 'TlsAuthError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TLS_AUTH', message, options);
  }
}

/** A transport URL that does not parse or names no supported scheme. */
export class BadUrlError extends RSerPoolError {
  override readonly name = 'BadUrlError';
  readonly url: string;
  constructor(url: string, reason: string) {
    super('RSP_ERR_BAD_URL', `bad transport URL '${url}': ${reason}`);
    this.url = url;
  }
}

/** No transport is configured for the URL's scheme. */
export class UnsupportedSchemeError extends RSerPoolError {
  override readonly name = 'UnsupportedSchemeError';
  constructor(scheme: string) {
    super('RSP_ERR_UNSUPPORTED_SCHEME', `no transport configured for '${scheme}://'`);
  }
}

/** The listen address is taken. */
export class AddressInUseError extends RSerPoolError {
  override readonly name = 'AddressInUseError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_ADDRESS_IN_USE', message, options);
  }
}

/** Any other socket failure; `cause` holds the system error. */
export class TransportError extends RSerPoolError {
  override readonly name = 'TransportError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TRANSPORT', message, options);
  }
}

/** An inbound connection over the listener's or its source address's connection cap; it was reset at once. */
export class ConnectionLimitError extends RSerPoolError {
  override readonly name = 'ConnectionLimitError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_CONNECTION_LIMIT', message, options);
  }
}

/** An inbound connection sent no whole message in time (first message or idle timeout); it was reset. */
export class IdleTimeoutError extends RSerPoolError {
  override readonly name = 'IdleTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_IDLE_TIMEOUT', message, options);
  }
}

/** A stream peer began a message and did not finish it in time; the connection was reset. */
export class PartialMessageTimeoutError extends RSerPoolError {
  override readonly name = 'PartialMessageTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_PARTIAL_MESSAGE_TIMEOUT', message, options);
  }
}
