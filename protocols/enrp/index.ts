export * from './types.js';
export { decodeEnrpMessage, encodeEnrpMessage } from './codec.js';
