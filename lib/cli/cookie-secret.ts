/**
 * The TFTP pool's cookie secret as `rserpool tftp serve` takes it: a file
 * (--cookie-secret-file), the environment (RSERPOOL_COOKIE_SECRET) or
 * --secret. Every PE of a pool needs the same one for a download to resume at
 * another PE; without one a PE makes a random secret of its own.
 */
import { open } from 'node:fs/promises';
import { MIN_COOKIE_SECRET_BYTES } from '../tftp/server/cookie.js';
import { CliUsageError } from './command.js';

/** A secret file holds a line of key material, not a document. */
const MAX_SECRET_FILE_BYTES = 4096;

export interface CookieSecretSources {
  /** --secret (on the command line, where `ps` shows it). */
  secret?: string | undefined;
  /** --cookie-secret-file. */
  file?: string | undefined;
  /** RSERPOOL_COOKIE_SECRET. */
  env?: string | undefined;
}

export interface LoadedCookieSecret {
  secret: Uint8Array | undefined;
  /** Something the operator should hear about (a secret file others can read). */
  warning?: string;
}

function checkLength(where: string, secret: Uint8Array): Uint8Array {
  if (secret.length < MIN_COOKIE_SECRET_BYTES) {
    throw new CliUsageError(
      `${where}: the cookie secret is ${secret.length} bytes; it needs at least ${MIN_COOKIE_SECRET_BYTES} (anyone who guesses it forges cookies). ` +
        'Make one with: openssl rand -hex 32 > FILE && chmod 600 FILE, and pass --cookie-secret-file FILE to every PE of the pool',
    );
  }
  return secret;
}

/** One of the sources, or none (undefined: the PE makes a random secret). */
export async function loadCookieSecret(src: CookieSecretSources): Promise<LoadedCookieSecret> {
  if (src.secret !== undefined && src.file !== undefined) throw new CliUsageError('give --secret or --cookie-secret-file, not both');
  if (src.file !== undefined) return readSecretFile(src.file);
  if (src.secret !== undefined) return { secret: checkLength('--secret', Buffer.from(src.secret, 'utf8')) };
  if (src.env !== undefined && src.env !== '') return { secret: checkLength('RSERPOOL_COOKIE_SECRET', Buffer.from(src.env, 'utf8')) };
  return { secret: undefined };
}

async function readSecretFile(path: string): Promise<LoadedCookieSecret> {
  const where = `--cookie-secret-file ${path}`;
  let bytes: Buffer;
  let mode: number;
  try {
    const h = await open(path, 'r');
    try {
      const st = await h.stat();
      if (!st.isFile()) throw new CliUsageError(`${where}: not a regular file`);
      mode = st.mode;
      const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
      const { bytesRead } = await h.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_SECRET_FILE_BYTES) throw new CliUsageError(`${where}: over ${MAX_SECRET_FILE_BYTES} bytes; a secret file holds one line`);
      bytes = buf.subarray(0, bytesRead);
    } finally {
      await h.close();
    }
  } catch (err) {
    if (err instanceof CliUsageError) throw err;
    throw new CliUsageError(`${where}: ${(err as Error).message}`);
  }
  // `openssl rand -hex 32 > FILE` and editors end the file with a newline; it is no part of the secret.
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  const secret = checkLength(where, new Uint8Array(bytes.subarray(0, end)));
  return (mode & 0o077) !== 0 ? { secret, warning: `${path} can be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it` } : { secret };
}
