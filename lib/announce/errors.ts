import { RSerPoolError } from '../errors.js';

/** The server announce socket could not be set up. */
export class AnnounceError extends RSerPoolError {
  override readonly name = 'AnnounceError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_ANNOUNCE', message, options);
  }
}
