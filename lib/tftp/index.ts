export * from './constants.js';
export type * from './server.js';
export { createTftpServer, createTftpPoolElement } from './server.js';
export {
  encodeCookie,
  verifyCookie,
  deriveCookieKey,
  randomCookieSecret,
  COOKIE_VERSION,
  DEFAULT_COOKIE_LIFETIME_MS,
  MIN_COOKIE_SECRET_BYTES,
  type CookieState,
  type OpenedCookie,
  type CookieSecret,
  type CookieKey,
} from './cookie.js';
export {
  TftpRequestError,
  TftpFileNotFoundError,
  TftpAccessError,
  TftpFileExistsError,
  TftpDiskFullError,
  TftpIllegalOperationError,
  TftpServerBusyError,
  CookieError,
  type CookieRefusal,
} from './errors.js';
export { normaliseRequestPath } from './files.js';
export {
  createTftpClient,
  type TftpClient,
  type TftpClientInit,
  type TftpClientComponents,
  type TftpGetResult,
  type TftpPutResult,
  type GetOptions,
  type PutOptions,
  type TransferProgress,
  type PeTarget,
  type PeFinder,
  type FailoverInfo,
  type ServedSpan,
  type Negotiated,
} from './client.js';
export { TftpRemoteError, CookieRefusedError, TransferTimeoutError, TftpProtocolError, TftpLocalIoError } from './client-errors.js';
export {
  createTftpGateway,
  TftpGatewayError,
  type TftpGateway,
  type TftpGatewayInit,
  type TftpGatewayComponents,
  type TftpGatewayEvents,
  type GatewayTransferStatus,
} from './gateway.js';
export type { BusyPoll } from './engine/poll.js';
