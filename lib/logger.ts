import { pino, type Logger as PinoLogger } from 'pino';

/** The logging surface lib/ uses; pino satisfies it, tests can pass a recorder. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: { component: string } & Record<string, unknown>): Logger;
}

/** Logs to stderr (stdout belongs to the CLI's output); level from RSERPOOL_LOG_LEVEL, default warn. */
export function createLogger(component = 'rserpool', level = process.env.RSERPOOL_LOG_LEVEL ?? 'warn'): Logger {
  const root: PinoLogger = pino({ level, base: { component } }, pino.destination(2));
  return root as unknown as Logger;
}

const noop = (): void => {};
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
