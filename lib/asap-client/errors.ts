import { RSerPoolError, StateError } from '../errors.js';

/** No registrar could be reached (none configured or announced, or all failed). */
export class NoRegistrarError extends RSerPoolError {
  override readonly name = 'NoRegistrarError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_NO_REGISTRAR', message, options);
  }
}

/** An operation on a pool element or pool user that was stopped. */
export class StoppedError extends StateError {
  override readonly name: string = 'StoppedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
