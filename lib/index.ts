/** rserpool's public API. The wire codecs are under `rserpool/protocols`. */
export * from './errors.js';
export { systemClock, ManualClock, type Clock, type TimerHandle } from './clock.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export * from './handlespace/index.js';
export * from './transport/index.js';
export * from './announce/index.js';
export * from './registrar/index.js';
export * from './enrp/index.js';
export * from './pool-element/index.js';
export {
  createPoolUser,
  UnknownPoolHandleError,
  ResolutionError,
  type PoolUser,
  type PoolUserInit,
  type PoolUserComponents,
  type PoolUserEvents,
  type ResolveOptions as PoolUserResolveOptions,
  type PoolUserConnectOptions,
} from './pool-user/index.js';
export * from './session/index.js';
export { startStatusServer, type StatusServer, type StatusServerInit } from './status/http.js';
export {
  PolicyType,
  TransportUse,
  ErrorCause,
  LOAD_MAX,
  type MemberSelectionPolicy,
  type PoolElementParameter,
  type TransportAddress,
} from '../protocols/parameters/types.js';
export * from './tftp/index.js';
