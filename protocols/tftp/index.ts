export * from './types.js';
export { decodeTftpPacket, encodeTftpPacket, isTftpPacket, parseTftpOptions } from './codec.js';
