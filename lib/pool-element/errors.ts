import { RSerPoolError } from '../errors.js';

/** The registrar refused a registration (R bit); `errorCause` is the RFC 5354 cause code. */
export class RegistrationRefusedError extends RSerPoolError {
  override readonly name = 'RegistrationRefusedError';
  readonly errorCause: number;
  constructor(errorCause: number, message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_REGISTRATION_REFUSED', message, options);
    this.errorCause = errorCause;
  }
}

/** The registrar refused a deregistration; `errorCause` is the RFC 5354 cause code. */
export class DeregistrationRefusedError extends RSerPoolError {
  override readonly name = 'DeregistrationRefusedError';
  readonly errorCause: number;
  constructor(errorCause: number, message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_DEREGISTRATION_REFUSED', message, options);
    this.errorCause = errorCause;
  }
}
