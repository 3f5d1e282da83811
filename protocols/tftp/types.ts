/**
 * TFTP packets as plain values: RFC 1350, with option negotiation
 * (RFC 2347 OACK and error 8) and the options of RFC 2348, 2349 and 7440.
 */

export const TftpOpcode = {
  Rrq: 1,
  Wrq: 2,
  Data: 3,
  Ack: 4,
  Error: 5,
  /** RFC 2347 option acknowledgment. */
  Oack: 6,
} as const;
export type TftpOpcode = (typeof TftpOpcode)[keyof typeof TftpOpcode];

export const TftpErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTransferId: 5,
  FileAlreadyExists: 6,
  NoSuchUser: 7,
  /** RFC 2347: the client (or server) terminates the transfer over the options. */
  OptionNegotiationRefused: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

/** Transfer modes, lower-cased (the wire compares them case-insensitively). */
export type TftpMode = 'netascii' | 'octet' | 'mail';
export const TFTP_MODES: readonly TftpMode[] = ['netascii', 'octet', 'mail'];

/**
 * Options as [name, value] pairs in order of appearance. Names are
 * lower-cased on decode (RFC 2347: case-insensitive); duplicates are kept,
 * parseTftpOptions decides what they mean.
 */
export type TftpOptionList = ReadonlyArray<readonly [name: string, value: string]>;

export interface TftpReadRequest {
  opcode: typeof TftpOpcode.Rrq;
  filename: string;
  mode: TftpMode;
  options: TftpOptionList;
}

export interface TftpWriteRequest {
  opcode: typeof TftpOpcode.Wrq;
  filename: string;
  mode: TftpMode;
  options: TftpOptionList;
}

export interface TftpData {
  opcode: typeof TftpOpcode.Data;
  /** 0..65535; wraps around on long transfers. */
  block: number;
  /** A view into the decoded buffer, not a copy. */
  data: Uint8Array;
}

export interface TftpAck {
  opcode: typeof TftpOpcode.Ack;
  block: number;
}

export interface TftpError {
  opcode: typeof TftpOpcode.Error;
  /** Usually a TftpErrorCode; other 16-bit values are kept as received. */
  code: number;
  message: string;
}

export interface TftpOptionAck {
  opcode: typeof TftpOpcode.Oack;
  options: TftpOptionList;
}

export type TftpRequest = TftpReadRequest | TftpWriteRequest;
export type TftpPacket = TftpReadRequest | TftpWriteRequest | TftpData | TftpAck | TftpError | TftpOptionAck;

/** RFC 1350 block size, used when no blksize option is agreed. */
export const TFTP_DEFAULT_BLOCK_SIZE = 512;
/** RFC 2348 bounds. */
export const TFTP_MIN_BLOCK_SIZE = 8;
export const TFTP_MAX_BLOCK_SIZE = 65_464;
/** The largest TFTP packet: a DATA header and a block of the largest size. */
export const TFTP_MAX_PACKET_SIZE = 4 + TFTP_MAX_BLOCK_SIZE;
/** RFC 2349 bounds, in seconds. */
export const TFTP_MIN_TIMEOUT = 1;
export const TFTP_MAX_TIMEOUT = 255;
/** RFC 7440 bounds. */
export const TFTP_MIN_WINDOW_SIZE = 1;
export const TFTP_MAX_WINDOW_SIZE = 65_535;

/** Why parseTftpOptions set a recognized option aside. */
export type TftpOptionProblem = 'not-a-number' | 'out-of-range' | 'duplicate';

export interface TftpRejectedOption {
  name: string;
  value: string;
  problem: TftpOptionProblem;
}

/**
 * Options with the known ones typed and range-checked. A known option with a
 * bad value lands in `rejected`, not in its field: RFC 2347 lets the server
 * leave it out of the OACK (or refuse with error 8), the caller chooses.
 */
export interface ParsedTftpOptions {
  /** RFC 2348, 8..65464. */
  blksize?: number;
  /** RFC 2349, 1..255 seconds. */
  timeout?: number;
  /** RFC 2349, transfer size in octets (0 in an RRQ asks the server for it). */
  tsize?: number;
  /** RFC 7440, 1..65535. */
  windowsize?: number;
  /** Options this codec does not know, in order, names lower-cased. */
  other: Array<[name: string, value: string]>;
  rejected: TftpRejectedOption[];
}
