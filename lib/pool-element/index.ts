export type * from './types.js';
export { createPoolElement } from './pool-element.js';
export { RegistrationRefusedError, DeregistrationRefusedError } from './errors.js';
export { NoRegistrarError, StoppedError } from '../asap-client/errors.js';
