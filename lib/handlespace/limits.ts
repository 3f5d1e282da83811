/**
 * Bounds on one PE, applied where a PE enters the handlespace: an ASAP
 * registration and an ENRP handle update or handle table entry alike. They
 * are chosen so that every message derived from an accepted PE fits its
 * 16-bit length field: a HANDLE_UPDATE, a handle table page, a handle
 * resolution response (trimmed to fit, see fitPoolElements).
 */
import { bytesParameterSize, poolElementSize } from '../../protocols/parameters/codec.js';
import { ErrorCause, type PoolElementParameter, type TransportAddress } from '../../protocols/parameters/types.js';
import { InvalidOptionError } from '../errors.js';

export interface PoolElementLimits {
  /** Longest pool handle, in bytes. Default 1,024. */
  maxHandleLength: number;
  /** Addresses in one transport parameter (user or ASAP transport). Default 32. */
  maxTransportAddresses: number;
  /** Largest encoded Pool Element parameter, in bytes. Default 2,048. */
  maxPoolElementBytes: number;
  /** A registration life above this is clamped to it (ms); an infinite one too. Default 1 h. */
  maxRegistrationLifeMs: number;
}

export const DEFAULT_POOL_ELEMENT_LIMITS: Readonly<PoolElementLimits> = {
  maxHandleLength: 1024,
  maxTransportAddresses: 32,
  maxPoolElementBytes: 2048,
  maxRegistrationLifeMs: 3_600_000,
};

/** Largest ASAP/ENRP message: the 16-bit length field (which counts the final padding). */
export const MAX_MESSAGE_BYTES = 0xffff;
/** ENRP header (type, flags, length, sender, receiver) plus the HANDLE_UPDATE action word. */
const HANDLE_UPDATE_FIXED_BYTES = 16;
/** The ENRP server's page bound (DEFAULT_MAX_ENRP_MESSAGE_BYTES): one PE with its handle must fit a page. */
const PAGE_BYTES = 65_000;

/** Defaults filled in and checked: the largest PE with the longest handle must fit one ENRP message. */
export function poolElementLimits(partial: Partial<PoolElementLimits> = {}): PoolElementLimits {
  const l: PoolElementLimits = { ...DEFAULT_POOL_ELEMENT_LIMITS };
  for (const [k, v] of Object.entries(partial) as [keyof PoolElementLimits, number | undefined][]) if (v !== undefined) l[k] = v;
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(`${k} must be a whole number of at least 1, not ${v}`);
  }
  const worst = HANDLE_UPDATE_FIXED_BYTES + bytesParameterSize(new Uint8Array(l.maxHandleLength)) + l.maxPoolElementBytes;
  if (worst > PAGE_BYTES) {
    throw new InvalidOptionError(
      `a ${l.maxHandleLength}-byte handle with a ${l.maxPoolElementBytes}-byte PE makes a ${worst}-byte HANDLE_UPDATE (at most ${PAGE_BYTES})`,
    );
  }
  return l;
}

export type PoolElementCheck = { ok: true; pe: PoolElementParameter } | { ok: false; cause: ErrorCause; reason: string };

function transportProblem(what: string, t: TransportAddress, max: number): string | undefined {
  const n = t.addresses.length;
  if (n === 0) return `${what} without addresses`;
  if (n > max) return `${what} with ${n} addresses (at most ${max})`;
  return undefined;
}

/**
 * Checks one PE against the limits; on success returns it with its
 * registration life clamped (the same PE object when nothing changed).
 * Refusals carry RFC 5352's Invalid Values cause.
 */
export function checkPoolElementLimits(handle: Uint8Array, pe: PoolElementParameter, limits: PoolElementLimits): PoolElementCheck {
  const refuse = (reason: string): PoolElementCheck => ({ ok: false, cause: ErrorCause.InvalidValues, reason });
  if (handle.length < 1 || handle.length > limits.maxHandleLength) return refuse(`pool handle of ${handle.length} bytes (1..${limits.maxHandleLength})`);
  const problem =
    transportProblem('user transport', pe.userTransport, limits.maxTransportAddresses) ??
    (pe.asapTransport ? transportProblem('ASAP transport', pe.asapTransport, limits.maxTransportAddresses) : undefined);
  if (problem !== undefined) return refuse(problem);
  const size = poolElementSize(pe);
  if (size > limits.maxPoolElementBytes) return refuse(`pool element of ${size} bytes (at most ${limits.maxPoolElementBytes})`);
  if (pe.registrationLife <= limits.maxRegistrationLifeMs) return { ok: true, pe };
  return { ok: true, pe: { ...pe, registrationLife: limits.maxRegistrationLifeMs } };
}

/**
 * How many of `elements` (in order) fit in a message of `fixedBytes` plus
 * their Pool Element parameters, within `max` bytes: a handle resolution
 * response gives fewer PEs rather than none.
 */
export function fitPoolElements(fixedBytes: number, elements: readonly PoolElementParameter[], max: number = MAX_MESSAGE_BYTES): number {
  let size = fixedBytes;
  for (let i = 0; i < elements.length; i++) {
    size += poolElementSize(elements[i]!);
    if (size > max) return i;
  }
  return elements.length;
}
