export type * from './types.js';
export { PPID } from './types.js';
export * from './errors.js';
export { parseTransportUrl, makeTransportUrl, isTransportScheme } from './url.js';
export { DEFAULT_CONNECTION_LIMITS, guardListener, listenGuarded, type ConnectionLimits } from './guard.js';
export { createTcpTransport, type TcpTransportInit } from './tcp.js';
export { createTlsTransport, type TlsTransportInit, type TlsPsk } from './tls.js';
export {
  createMemoryNetwork,
  type MemoryNetwork,
  type MemoryNetworkInit,
  type MemoryNetworkComponents,
  type MemoryTransportInit,
} from './memory.js';
export { createTransport, createTransports, type TransportsInit, type TransportSet } from './registry.js';
export type { SctpTransportInit } from './sctp.js';
export { SctpUnavailableError } from './sctp-errors.js';
