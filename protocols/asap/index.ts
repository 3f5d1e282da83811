export * from './types.js';
export { decodeAsapMessage, encodeAsapMessage } from './codec.js';
