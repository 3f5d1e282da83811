import { RSerPoolError } from '../errors.js';

/**
 * Raw-IP sctp:// cannot run here: no raw-socket module (a native build), no
 * permission to open a raw socket (needs root or CAP_NET_RAW), or an IPv6
 * address (raw mode is IPv4 only). sctp+udp:// needs none of these.
 */
export class SctpUnavailableError extends RSerPoolError {
  override readonly name = 'SctpUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_SCTP_UNAVAILABLE', message, options);
  }
}
