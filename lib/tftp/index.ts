export * from './constants.js';
export type * from './server.js';
export { createTftpServer, createTftpPoolElement } from './server.js';
export { encodeCookie, verifyCookie, defaultCookieSecret, COOKIE_VERSION, type CookieState, type CookieSecret } from './cookie.js';
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
