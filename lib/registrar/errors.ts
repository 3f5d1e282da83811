import { RSerPoolError } from '../errors.js';

/** start() on a registrar that is already running or was stopped. */
export class RegistrarStateError extends RSerPoolError {
  override readonly name = 'RegistrarStateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_REGISTRAR_STATE', message, options);
  }
}
