import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** The logging surface lib/ uses; pino satisfies it, tests can pass a recorder. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: { component: string } & Record<string, unknown>): Logger;
}

/** Logs to stderr (stdout belongs to the CLI's output); level from RSERPOOL_LOG_LEVEL, default warn. */
export function createLogger(
  component = 'rserpool',
  level = process.env.RSERPOOL_LOG_LEVEL ?? 'warn',
  destination: DestinationStream = pino.destination(2),
): Logger {
  return bound(pino({ level, base: null }, destination), { component });
}

/** Children are made from the root with merged bindings: pino's own children repeat a rebound key (two "component" fields). */
function bound(root: PinoLogger, bindings: Record<string, unknown>): Logger {
  const p = root.child(bindings);
  return {
    debug: p.debug.bind(p),
    info: p.info.bind(p),
    warn: p.warn.bind(p),
    error: p.error.bind(p),
    child: (more) => bound(root, { ...bindings, ...more }),
  };
}

const noop = (): void => {};
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
