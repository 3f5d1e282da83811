/** The --http endpoint every long-running command can serve: options and start-up. */
import { readFileSync } from 'node:fs';
import type { Logger } from '../logger.js';
import { startStatusServer, type StatusServer, type StatusServerInit } from '../status/http.js';
import { CliUsageError } from './command.js';
import { hostPort, str, type OptionSpec, type OptionValues } from './options.js';

export const HTTP_TOKEN_SPECS: Record<string, OptionSpec> = {
  'http-token': {
    type: 'string',
    help: 'require Authorization: Bearer TOKEN on the HTTP data endpoints (visible in ps: prefer RSERPOOL_HTTP_TOKEN or --http-token-file)',
  },
  'http-token-file': { type: 'string', help: 'file holding the --http-token' },
};

/** The bearer token, if one is configured; at least 16 characters (it is the only lock when bound beyond loopback). */
export function httpToken(values: OptionValues): string | undefined {
  const file = str(values, 'http-token-file');
  let token = str(values, 'http-token');
  if (file) {
    if (token) throw new CliUsageError('--http-token and --http-token-file: give one');
    try {
      token = readFileSync(file, 'utf8').slice(0, 4096).trim();
    } catch (err) {
      throw new CliUsageError(`--http-token-file: ${(err as Error).message}`);
    }
  }
  if (token !== undefined && token.length < 16) throw new CliUsageError('--http-token must be at least 16 characters (e.g. openssl rand -hex 16)');
  return token;
}

/** Starts the HTTP endpoint named by --http (undefined for 'off' or none). */
export async function startHttp(
  values: OptionValues,
  init: Omit<StatusServerInit, 'host' | 'port' | 'token'>,
  logger: Logger,
): Promise<StatusServer | undefined> {
  const http = str(values, 'http');
  if (!http || http === 'off') return undefined;
  const token = httpToken(values);
  return startStatusServer({ ...hostPort('http', http), ...init, ...(token ? { token } : {}) }, { logger });
}
