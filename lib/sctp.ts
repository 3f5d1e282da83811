/**
 * `rserpool/sctp`: the SCTP transports by themselves. The core entry point
 * does not load them (nor the `sctp` package); `createTransports` loads them
 * when an sctp:// or sctp+udp:// URL is first used.
 */
export { createSctpTransport, createSctpUdpTransport, type SctpScheme, type SctpTransportInit } from './transport/sctp.js';
export { SctpUnavailableError } from './transport/sctp-errors.js';
