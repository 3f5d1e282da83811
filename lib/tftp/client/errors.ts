import { RSerPoolError } from '../../errors.js';

export { NoPoolElementError } from '../../session/errors.js';

/** A PE (or plain TFTP server) ended the transfer with a TFTP ERROR; `tftpCode` is its error code. */
export class TftpRemoteError extends RSerPoolError {
  override readonly name: string = 'TftpRemoteError';
  readonly tftpCode: number;
  readonly remoteMessage: string;
  constructor(tftpCode: number, remoteMessage: string, options?: { cause?: unknown; code?: string; message?: string }) {
    super(options?.code ?? 'RSP_ERR_TFTP_REMOTE', options?.message ?? `TFTP error ${tftpCode}: ${remoteMessage}`, options);
    this.tftpCode = tftpCode;
    this.remoteMessage = remoteMessage;
  }
}

/**
 * A PE refused the state cookie it was handed at failover (another file
 * version, a bad signature, garbage); `reason` is the PE's text after the
 * prefix. Raised when the transfer may not (or cannot) start over.
 */
export class CookieRefusedError extends TftpRemoteError {
  override readonly name = 'CookieRefusedError';
  readonly reason: string;
  constructor(reason: string, detail = '') {
    super(0, reason, { code: 'RSP_ERR_TFTP_COOKIE_REFUSED', message: `the PE refused the state cookie: ${reason}${detail}` });
    this.reason = reason;
  }
}

/** The PE (or the whole pool, when failing over) stopped answering for longer than allowed. */
export class TransferTimeoutError extends RSerPoolError {
  override readonly name = 'TransferTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_TIMEOUT', message, options);
  }
}

/** The peer broke the TFTP protocol (an option it was not asked for, a block larger than agreed ...). */
export class TftpProtocolError extends RSerPoolError {
  override readonly name = 'TftpProtocolError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_PROTOCOL', message, options);
  }
}

/** The local file or stream could not be read or written. */
export class TftpLocalIoError extends RSerPoolError {
  override readonly name = 'TftpLocalIoError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_TFTP_LOCAL_IO', message, options);
  }
}
