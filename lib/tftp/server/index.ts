/** The TFTP server and pool element: their types and constructors. */
export type * from './types.js';
export { createTftpServer, createTftpPoolElement } from './server.js';
