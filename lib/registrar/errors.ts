import { StateError } from '../errors.js';

/** start() on a registrar that is already running or was stopped. */
export class RegistrarStateError extends StateError {
  override readonly name: string = 'RegistrarStateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
