export * from './contract.js';
export type * from './server/index.js';
export { createTftpServer, createTftpPoolElement } from './server/index.js';
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
} from './server/cookie.js';
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
} from './server/errors.js';
export { normaliseRequestPath } from './server/files.js';
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
} from './client/index.js';
export { TftpRemoteError, CookieRefusedError, TransferTimeoutError, TftpProtocolError, TftpLocalIoError } from './client/errors.js';
export {
  createTftpGateway,
  TftpGatewayError,
  type TftpGateway,
  type TftpGatewayInit,
  type TftpGatewayComponents,
  type TftpGatewayEvents,
  type GatewayTransferStatus,
} from './gateway/index.js';
export type { BusyPoll } from './engine/poll.js';
