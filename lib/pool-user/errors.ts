import { RSerPoolError } from '../errors.js';

/** The registrar knows no PE under the handle (Unknown Pool Handle): an empty pool is this error, never an empty list. */
export class UnknownPoolHandleError extends RSerPoolError {
  override readonly name = 'UnknownPoolHandleError';
  readonly handle: Uint8Array;
  constructor(handle: Uint8Array, message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_UNKNOWN_POOL_HANDLE', message, options);
    this.handle = handle;
  }
}

/** The registrar answered a handle resolution with another error cause (`errorCause`). */
export class ResolutionError extends RSerPoolError {
  override readonly name = 'ResolutionError';
  readonly errorCause: number;
  constructor(errorCause: number, message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_RESOLUTION', message, options);
    this.errorCause = errorCause;
  }
}
