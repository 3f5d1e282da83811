export * from './types.js';
export { decodeAsapMessage, encodeAsapMessage, encodeAsapMessageInto } from './codec.js';
