export * from './types.js';
export { decodeTftpPacket, encodeTftpPacket, isTftpPacket, parseTftpOptions, peerError } from './codec.js';
export {
  absoluteBlock,
  ackPacket,
  blocksAhead,
  dataHeader,
  dataPacket,
  errorPacket,
  NetasciiDecoder,
  TFTP_MAX_ERROR_TEXT,
  toNetascii,
  wireBlock,
  writeDataHeader,
} from './packets.js';
