import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AsapFlags, AsapMessageType } from '../../protocols/asap/types.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { ErrorCause, PolicyType, TransportUse, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { createLab, element, RawClient, te, type Lab } from '../registrar/helpers.js';

let lab: Lab;
beforeEach(() => {
  lab = createLab();
});
afterEach(async () => {
  await lab.teardown();
});

/** A PE whose SCTP user transport (and ASAP transport, when asked) lists `n` addresses. */
function wide(identifier: number, n: number, { v6 = false, asap = false } = {}): PoolElementParameter {
  const addresses = Array.from({ length: n }, (_, i) => (v6 ? `2001:db8::${identifier.toString(16)}:${i.toString(16)}` : `10.0.${identifier & 0xff}.${i}`));
  const t = { protocol: 'sctp' as const, port: 7000, addresses, transportUse: TransportUse.DataPlusControl };
  return {
    identifier,
    homeRegistrarId: 0,
    registrationLife: 30_000,
    userTransport: t,
    policy: { type: PolicyType.RoundRobin },
    ...(asap ? { asapTransport: t } : {}),
  };
}

async function register(c: RawClient, handle: string, pe: PoolElementParameter) {
  c.send({ type: AsapMessageType.Registration, handle: te(handle), element: pe });
  return c.next(AsapMessageType.RegistrationResponse, (m) => m.identifier === pe.identifier);
}

describe('registrar - bounds on what one ASAP registration may hold', () => {
  it('refuses more addresses per transport parameter than the limit with Invalid Values (default 32)', async () => {
    const reg = await lab.registrar('r1');
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    expect((await register(c, 'p', wide(1, 32))).flags ?? 0).toBe(0);
    for (const pe of [wide(2, 33), { ...wide(3, 1), asapTransport: wide(3, 33).userTransport }]) {
      const res = await register(c, 'p', pe);
      expect((res.flags ?? 0) & AsapFlags.Reject).toBe(AsapFlags.Reject);
      expect(res.error?.[0]?.code).toBe(ErrorCause.InvalidValues);
    }
    expect(reg.handlespace.poolElements('p').map((e) => e.identifier)).toEqual([1]);
  });

  it('refuses a Pool Element parameter larger than maxPoolElementBytes with Invalid Values', async () => {
    const reg = await lab.registrar('r1', { maxPoolElementBytes: 256 });
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    // 16 + (8 + 8 x 28) + 8 = 256 bytes fits; one more address does not.
    expect((await register(c, 'p', wide(1, 28))).flags ?? 0).toBe(0);
    const res = await register(c, 'p', wide(2, 29));
    expect(res.error?.[0]?.code).toBe(ErrorCause.InvalidValues);
    expect(reg.handlespace.has('p', 2)).toBe(false);
  });

  it('a handle resolution of many large PEs is trimmed to fit one message instead of being dropped', async () => {
    await lab.registrar('r1');
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    // 128 PEs of 16 + 2 x (8 + 20 x 32) + 8 = 1,320 bytes: 169 kB if all were sent.
    for (let i = 1; i <= 128; i++) expect((await register(c, 'wide', wide(i, 32, { v6: true, asap: true }))).flags ?? 0).toBe(0);
    c.send({ type: AsapMessageType.HandleResolution, handle: te('wide'), items: 128 });
    const res = await c.next(AsapMessageType.HandleResolutionResponse);
    expect(res.error).toBeUndefined();
    expect(res.elements.length).toBe(Math.floor((0xffff - 4 - 8) / 1320));
    expect(encodeAsapMessage(res).length).toBeLessThanOrEqual(0xffff);
  });

  it('a handle resolution for a 40,000-byte handle is answered with Unknown Pool Handle (the answer fits)', async () => {
    await lab.registrar('r1');
    const c = await RawClient.connect(lab.host('pu1'), 'memory://r1');
    c.send({ type: AsapMessageType.HandleResolution, handle: new Uint8Array(40_000).fill(0x61) });
    const res = await c.next(AsapMessageType.HandleResolutionResponse);
    expect(res.error?.[0]?.code).toBe(ErrorCause.UnknownPoolHandle);
  });

  it('a registration with the largest handle a message can carry is answered with its refusal', async () => {
    await lab.registrar('r1');
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    // 4 + (4 + 65,484) + 40 = 65,532 bytes.
    const handle = new Uint8Array(65_484).fill(0x61);
    expect(encodeAsapMessage({ type: AsapMessageType.Registration, handle, element: element(9) }).length).toBe(65_532);
    c.send({ type: AsapMessageType.Registration, handle, element: element(9) });
    const res = await c.next(AsapMessageType.RegistrationResponse);
    expect(res.error?.[0]?.code).toBe(ErrorCause.InvalidValues);
  });
});
