import { RSerPoolError } from '../../errors.js';
import { TftpErrorCode } from '../../../protocols/tftp/types.js';
import { COOKIE_ERROR_PREFIX, LEAVING_ERROR_PREFIX } from '../contract.js';

/**
 * A request or transfer the TFTP server refuses. `tftpCode` and `message`
 * go to the peer as a TFTP ERROR packet, so the message says what was wrong.
 */
export class TftpRequestError extends RSerPoolError {
  override readonly name: string = 'TftpRequestError';
  readonly tftpCode: number;
  constructor(code: string, tftpCode: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.tftpCode = tftpCode;
  }
}

/** The file does not exist under the root. */
export class TftpFileNotFoundError extends TftpRequestError {
  override readonly name = 'TftpFileNotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_NOT_FOUND', TftpErrorCode.FileNotFound, message, options);
  }
}

/** A path that leaves the root (`..`, a symlink pointing out), a non-regular file, a write to a read-only server, a permission error. */
export class TftpAccessError extends TftpRequestError {
  override readonly name = 'TftpAccessError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_ACCESS', TftpErrorCode.AccessViolation, message, options);
  }
}

/** An upload onto an existing file when overwriting is off. */
export class TftpFileExistsError extends TftpRequestError {
  override readonly name = 'TftpFileExistsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_EXISTS', TftpErrorCode.FileAlreadyExists, message, options);
  }
}

/** An upload larger than the server takes, or the disk is full. */
export class TftpDiskFullError extends TftpRequestError {
  override readonly name = 'TftpDiskFullError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_DISK_FULL', TftpErrorCode.DiskFull, message, options);
  }
}

/** A malformed packet, an unknown opcode, a packet that makes no sense in the transfer's state. */
export class TftpIllegalOperationError extends TftpRequestError {
  override readonly name = 'TftpIllegalOperationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_ILLEGAL', TftpErrorCode.IllegalOperation, message, options);
  }
}

/** A request without options where the server asks for them (RFC 2347 code 8). */
export class TftpOptionsRequiredError extends TftpRequestError {
  override readonly name = 'TftpOptionsRequiredError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_OPTIONS_REQUIRED', TftpErrorCode.OptionNegotiationRefused, message, options);
  }
}

/** Busy, shutting down, a read error: TFTP's "not defined" code 0. */
export class TftpServerBusyError extends TftpRequestError {
  override readonly name = 'TftpServerBusyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_BUSY', TftpErrorCode.NotDefined, message, options);
  }
}

/** A transfer's disk took nothing for the transfer's give-up time: code 0, and the client fails over. */
export class TftpDiskTimeoutError extends TftpRequestError {
  override readonly name = 'TftpDiskTimeoutError';
  constructor(idleMs: number) {
    super('RSP_ERR_TFTP_DISK_TIMEOUT', TftpErrorCode.NotDefined, `the server's disk did not answer for ${Math.round(idleMs)} ms`);
  }
}

export type CookieRefusal =
  /** Not a cookie this format knows: too short, unknown version byte, CBOR that is not the state map. */
  | 'malformed'
  /** The cookie does not open (AEAD): forged, altered, or sealed with another pool's secret. */
  | 'bad-signature'
  /** Past the expiry time sealed in it. */
  | 'expired'
  /** The echo comes from another client address than the one the cookie was issued to. */
  | 'address'
  /** The file changed (size or modification time) since the cookie was made. */
  | 'stale'
  /** The file is gone, or the cookie's path is not servable here. */
  | 'missing'
  /** The cookie's options or block number do not fit the file or this server. */
  | 'invalid';

/**
 * A state cookie the PE will not resume from. On the wire it is a TFTP
 * ERROR with code 0 and a message starting with COOKIE_ERROR_PREFIX.
 */
export class CookieError extends TftpRequestError {
  override readonly name = 'CookieError';
  readonly reason: CookieRefusal;
  constructor(reason: CookieRefusal, message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_COOKIE', TftpErrorCode.NotDefined, `${COOKIE_ERROR_PREFIX}${reason}: ${message}`, options);
    this.reason = reason;
  }
}

/**
 * The PE is leaving the pool: go to another PE now. On the wire a TFTP ERROR
 * with code 0 and a message starting with LEAVING_ERROR_PREFIX.
 */
export class TftpLeavingError extends TftpRequestError {
  override readonly name = 'TftpLeavingError';
  constructor(message = 'resume at another PE of the pool', options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_LEAVING', TftpErrorCode.NotDefined, `${LEAVING_ERROR_PREFIX}: ${message}`, options);
  }
}
