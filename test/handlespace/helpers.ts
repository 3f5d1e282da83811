import { PolicyType, type MemberSelectionPolicy, type PoolElementParameter, type TransportProtocol } from '../../protocols/parameters/types.js';

export function pe(
  identifier: number,
  policy: MemberSelectionPolicy = { type: PolicyType.RoundRobin },
  extra: { owner?: number; life?: number; protocol?: TransportProtocol; port?: number } = {},
): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: extra.owner ?? 1,
    registrationLife: extra.life ?? 30_000,
    userTransport: {
      protocol: extra.protocol ?? 'tcp',
      port: extra.port ?? 7000,
      addresses: [`192.0.2.${identifier & 255}`],
      transportUse: 0,
    },
    policy,
  };
}

/** Chi-square statistic of observed counts against expected probabilities. */
export function chiSquare(observed: number[], probabilities: number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  return observed.reduce((s, o, i) => {
    const e = n * probabilities[i]!;
    return s + ((o - e) * (o - e)) / e;
  }, 0);
}

/** Critical values of chi-square at p = 0.001 by degrees of freedom. */
export const CHI2_P001: Record<number, number> = { 1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 9: 27.877 };
