export * from './types.js';
export { decodeEnrpMessage, encodeEnrpMessage, encodeEnrpMessageInto } from './codec.js';
