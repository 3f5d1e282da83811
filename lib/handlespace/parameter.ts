/** A handlespace entry as the wire's Pool Element parameter (ASAP answers, ENRP updates and lists). */
import type { PoolElementParameter } from '../../protocols/parameters/types.js';
import type { PoolElementEntry } from './types.js';

export function toParameter(e: PoolElementEntry): PoolElementParameter {
  const pe: PoolElementParameter = {
    identifier: e.identifier,
    homeRegistrarId: e.homeRegistrarId,
    registrationLife: e.registrationLife,
    userTransport: e.userTransport,
    policy: e.policy,
  };
  if (e.asapTransport) pe.asapTransport = e.asapTransport;
  return pe;
}
