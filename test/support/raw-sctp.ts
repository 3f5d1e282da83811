/**
 * sctp:// (SCTP on raw IP) needs root and the optional raw-socket module.
 * Suites for it always exist: without either they show up as skipped, with
 * the reason in their name, rather than not at all.
 */
import { createRequire } from 'node:module';
import { describe } from 'vitest';

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'raw SCTP needs root';
  try {
    createRequire(import.meta.url).resolve('raw-socket');
  } catch {
    return 'raw SCTP needs the optional raw-socket module';
  }
  return undefined;
}

/** Why sctp:// cannot run here; undefined when it can. */
export const rawSctpUnavailable: string | undefined = why();

/** `describe`, or for a raw-SCTP suite that cannot run here, a skipped one saying why. */
export function describeSctp(scheme: string, name: string, body: () => void): void {
  if (scheme === 'sctp' && rawSctpUnavailable !== undefined) describe.skip(`${name} (skipped: ${rawSctpUnavailable})`, body);
  else describe(name, body);
}
