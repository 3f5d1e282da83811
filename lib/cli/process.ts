/** Resolves on the first SIGINT or SIGTERM, so a long-running command can stop cleanly. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** EX_SOFTWARE (sysexits.h): an internal error. */
export const SAFETY_NET_EXIT_CODE = 70;

/**
 * The last resort: an exception or rejection nothing caught is a bug. It is
 * said on one line, with its code and where it came from, and the process
 * exits 70, so a crash is visible rather than silent or half-alive.
 */
export function installSafetyNet(command: string): void {
  const fail = (kind: string, err: unknown): void => {
    const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown; stack?: unknown };
    const code = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : 'no code';
    const message = (typeof e.message === 'string' ? e.message : String(err)).replace(/\s+/g, ' ');
    const at = typeof e.stack === 'string' ? /\n\s+at (.+)/.exec(e.stack)?.[1] : undefined;
    process.stderr.write(`rserpool ${command}: ${kind} (${code}): ${message}${at ? ` at ${at}` : ''}\n`);
    process.exit(SAFETY_NET_EXIT_CODE);
  };
  process.on('uncaughtException', (err) => fail('uncaught exception', err));
  process.on('unhandledRejection', (reason) => fail('unhandled rejection', reason));
}
