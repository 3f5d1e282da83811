export type * from './types.js';
export { createPoolUser } from './pool-user.js';
export { UnknownPoolHandleError, ResolutionError } from './errors.js';
export { NoRegistrarError, StoppedError } from '../asap-client/errors.js';
