/** rserpool's public API. The wire codecs are under `rserpool/protocols`. */
export * from './errors.js';
export { systemClock, ManualClock, type Clock, type TimerHandle } from './clock.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export * from './handlespace/index.js';
export * from './transport/index.js';
