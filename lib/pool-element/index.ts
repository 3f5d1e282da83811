export type * from './types.js';
export { createPoolElement } from './pool-element.js';
export { RegistrationRefusedError, DeregistrationRefusedError, NoRegistrarError, StoppedError } from './errors.js';
