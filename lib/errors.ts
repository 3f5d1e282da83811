/** Base of every error lib/ throws; callers match on `code`, never on text. */
export class RSerPoolError extends Error {
  override readonly name: string = 'RSerPoolError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A call the object's state does not allow: start() twice, use after stop(), an address before start(). */
export class StateError extends RSerPoolError {
  override readonly name: string = 'StateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_STATE', message, options);
  }
}

export class InvalidOptionError extends RSerPoolError {
  override readonly name = 'InvalidOptionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_INVALID_OPTION', message, options);
  }
}

export class AbortedError extends RSerPoolError {
  override readonly name = 'AbortedError';
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('RSP_ERR_ABORTED', message, options);
  }
}

export class TimeoutError extends RSerPoolError {
  override readonly name = 'TimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TIMEOUT', message, options);
  }
}
