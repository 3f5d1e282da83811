/** Checks an ASAP_REGISTRATION and fills in what the registrar decides (RFC 5352 3.1). */
import { isIP } from 'node:net';
import { ErrorCause, type PoolElementParameter, type TransportAddress } from '../../protocols/parameters/types.js';
import type { Endpoint } from '../transport/index.js';
import { checkPoolElementLimits, poolElementLimits, type PoolElementCheck, type PoolElementLimits } from '../handlespace/limits.js';
import type { HandlespaceInit } from '../handlespace/index.js';
import type { RegistrarInit } from './types.js';

export interface RegistrationRules {
  registrarId: number;
  limits: PoolElementLimits;
}

export type Checked = PoolElementCheck;

const UNSPECIFIED = new Set(['0.0.0.0', '::']);

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65_535;
}

/** The connection's source address, as a bare IP, or undefined (memory:// hosts are names). */
function sourceIp(remote: Endpoint): string | undefined {
  const host = remote.host.startsWith('::ffff:') && isIP(remote.host.slice(7)) === 4 ? remote.host.slice(7) : remote.host;
  return isIP(host) === 0 ? undefined : host;
}

/** 0.0.0.0 / :: mean "the address you see me on" (RSPLIB does the same). */
function fillAddresses(t: TransportAddress, remote: Endpoint): TransportAddress {
  if (!t.addresses.some((a) => UNSPECIFIED.has(a))) return t;
  const src = sourceIp(remote);
  if (src === undefined) return t;
  const family = isIP(src);
  const addresses = t.addresses.map((a) => ((a === '0.0.0.0' && family === 4) || (a === '::' && family === 6) ? src : a));
  return { ...t, addresses: [...new Set(addresses)] };
}

export function checkRegistration(handle: Uint8Array, pe: PoolElementParameter, remote: Endpoint, rules: RegistrationRules): Checked {
  // RSPLIB treats identifier 0 as "none".
  if (pe.identifier === 0) return { ok: false, cause: ErrorCause.InvalidValues, reason: 'PE identifier 0' };
  const ut = pe.userTransport;
  if (ut.addresses.length === 0) return { ok: false, cause: ErrorCause.InvalidValues, reason: 'user transport without addresses' };
  if (!validPort(ut.port)) return { ok: false, cause: ErrorCause.InvalidValues, reason: `user transport port ${ut.port}` };
  if (pe.asapTransport && pe.asapTransport.addresses.length === 0) {
    return { ok: false, cause: ErrorCause.InvalidValues, reason: 'ASAP transport without addresses' };
  }
  if ('unknown' in pe.policy) {
    return { ok: false, cause: ErrorCause.InconsistentPoolingPolicy, reason: `unknown policy type 0x${pe.policy.type.toString(16)}` };
  }
  if (pe.registrationLife === 0) return { ok: false, cause: ErrorCause.InvalidValues, reason: 'registration life 0' };
  // A life clamped here would end before the PE re-registers (it plans by the life it asked for), and it
  // would drop out for part of every cycle without knowing: refused, so it learns at once.
  const maxLife = rules.limits.maxRegistrationLifeMs;
  if (pe.registrationLife > maxLife) {
    return { ok: false, cause: ErrorCause.InvalidValues, reason: `registration life ${pe.registrationLife} ms above this registrar's limit of ${maxLife} ms` };
  }
  const out: PoolElementParameter = {
    identifier: pe.identifier,
    homeRegistrarId: rules.registrarId,
    registrationLife: pe.registrationLife,
    userTransport: fillAddresses(ut, remote),
    policy: pe.policy,
  };
  if (pe.asapTransport) out.asapTransport = fillAddresses(pe.asapTransport, remote);
  // The same bounds as a PE learned by ENRP (where a life above ours is clamped: a peer may allow more).
  return checkPoolElementLimits(handle, out, rules.limits);
}

/** The PE limits a registrar applies (ASAP and ENRP alike), from its init. */
export function registrarLimits(init: RegistrarInit): PoolElementLimits {
  return poolElementLimits({
    maxHandleLength: init.maxHandleLength,
    maxTransportAddresses: init.maxTransportAddresses,
    maxPoolElementBytes: init.maxPoolElementBytes,
    maxRegistrationLifeMs: init.maxRegistrationLifeMs,
  });
}

/** The handlespace caps from a registrar's init. */
export function handlespaceCaps(init: RegistrarInit): Pick<HandlespaceInit, 'maxPools' | 'maxRingPoints'> {
  return {
    ...(init.maxPools !== undefined ? { maxPools: init.maxPools } : {}),
    ...(init.maxRingPoints !== undefined ? { maxRingPoints: init.maxRingPoints } : {}),
  };
}
