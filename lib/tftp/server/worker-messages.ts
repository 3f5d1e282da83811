/** What the server and its transfer threads tell each other (structured-clone data only). */
import { COOKIE_ERROR_PREFIX, LEAVING_ERROR_PREFIX } from '../contract.js';
import {
  CookieError,
  TftpAccessError,
  TftpDiskFullError,
  TftpFileExistsError,
  TftpFileNotFoundError,
  TftpIllegalOperationError,
  TftpLeavingError,
  TftpOptionsRequiredError,
  TftpRequestError,
  TftpServerBusyError,
  type CookieRefusal,
} from './errors.js';
import type { Job, RunnerConfig } from './runner.js';
import type { LeaveNotice, TransferEnd } from './transfer.js';
import type { TransferInfo } from './types.js';

export interface WorkerInit {
  root: string;
  cfg: Omit<RunnerConfig, 'cookieKey'>;
  /** The cookie AEAD key's bytes. */
  key: Uint8Array;
}

export type ToWorker =
  | { t: 'run'; id: number; job: Job }
  | { t: 'abort'; id: number; notify: boolean; message: string; resumable: boolean }
  | { t: 'repeat'; id: number }
  | { t: 'leave'; id: number; notice: LeaveNotice }
  | { t: 'closing'; leaving: boolean }
  /** Exit once the transfers' last file handles are closed. */
  | { t: 'stop' };

/** `bytes`: the thread's transferBytes after the change. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'begin'; id: number; info: Omit<TransferInfo, 'id' | 'peer'>; wantsCookies: boolean; temp: string | undefined; bytes: number }
  | { t: 'failed'; id: number; error: ThreadError }
  /** The server was closing (not leaving): nothing started. */
  | { t: 'skipped'; id: number }
  | { t: 'underway'; id: number }
  | { t: 'cookie'; id: number; next: number }
  | { t: 'end'; id: number; end: Omit<TransferEnd, 'error'> & { error?: ThreadError }; bytes: number };

/** An error as it crosses threads: the TFTP error classes are rebuilt on the other side. */
export interface ThreadError {
  name: string;
  message: string;
  code?: string;
  tftpCode?: number;
  reason?: CookieRefusal;
}

export function toThreadError(err: unknown): ThreadError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Error & { code?: unknown; tftpCode?: unknown; reason?: unknown };
  return {
    name: e.name,
    message: e.message,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.tftpCode === 'number' ? { tftpCode: e.tftpCode } : {}),
    ...(err instanceof CookieError ? { reason: err.reason } : {}),
  };
}

const BY_NAME: Record<string, new (message: string) => TftpRequestError> = {
  TftpFileNotFoundError,
  TftpAccessError,
  TftpFileExistsError,
  TftpDiskFullError,
  TftpIllegalOperationError,
  TftpOptionsRequiredError,
  TftpServerBusyError,
};

export function fromThreadError(e: ThreadError): Error {
  const known = Object.hasOwn(BY_NAME, e.name) ? BY_NAME[e.name] : undefined;
  if (known) return new known(e.message);
  if (e.name === 'CookieError' && e.reason !== undefined) return new CookieError(e.reason, e.message.slice(`${COOKIE_ERROR_PREFIX}${e.reason}: `.length));
  if (e.name === 'TftpLeavingError') return new TftpLeavingError(e.message.slice(`${LEAVING_ERROR_PREFIX}: `.length));
  if (e.tftpCode !== undefined && e.code !== undefined) return new TftpRequestError(e.code, e.tftpCode, e.message);
  return Object.assign(new Error(e.message), e.code !== undefined ? { code: e.code } : {});
}
