/** A PE that listens for ASAP is reached by the registrar that took it over, and adopts it as home (RFC 5352 3.7). */
import { describe, expect, it } from 'vitest';
import { PolicyType } from '../../protocols/parameters/types.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { createTransports } from '../../lib/transport/index.js';
import { waitFor } from '../transport/util.js';

describe('pool element with asapListen', () => {
  it.each(['tcp', 'sctp+udp'] as const)(
    'registers its ASAP transport, and after a takeover is home at the new registrar without knowing it beforehand (%s)',
    async (scheme) => {
      const transports = () => createTransports(scheme === 'tcp' ? {} : { [scheme]: {} });
      const a = createRegistrar({ asap: [`${scheme}://127.0.0.1:0`], announce: false, id: 0xa }, { transports: transports() });
      const b = createRegistrar({ asap: [`${scheme}://127.0.0.1:0`], announce: false, id: 0xb }, { transports: transports() });
      await a.start();
      await b.start();
      // the PE knows only A: without the listener it could never reach B
      const pe = createPoolElement(
        {
          handle: 'listen',
          policy: { type: PolicyType.RoundRobin },
          userTransport: { protocol: 'tcp', port: 7100, addresses: ['127.0.0.1'], transportUse: 0 },
          registrars: [a.addresses[0]!.href],
          asapListen: `${scheme}://127.0.0.1:0`,
          identifier: 77,
          huntBackoffMs: { initial: 50, max: 200 },
        },
        { transports: transports() },
      );
      try {
        await pe.start();
        const entry = a.handlespace.get('listen', 77)!;
        expect(entry.asapTransport?.addresses).toEqual(['127.0.0.1']);
        expect(entry.asapTransport?.protocol).toBe(scheme === 'tcp' ? 'tcp' : 'sctp');
        expect(entry.asapTransport?.port).toBeGreaterThan(0);
        // what ENRP would have told B
        const foreign = {
          identifier: entry.identifier,
          homeRegistrarId: entry.homeRegistrarId,
          registrationLife: entry.registrationLife,
          userTransport: entry.userTransport,
          asapTransport: entry.asapTransport!,
          policy: entry.policy,
        };
        expect(b.applyForeign('listen', foreign, a.id)).toBe(true);

        const changed = waitFor(pe, 'registrar-changed', { timeoutMs: 10_000 });
        await a.stop();
        expect(await b.takeover(a.id)).toBe(1);
        await changed;
        expect(pe.registrarId).toBe(b.id);
        expect(pe.registered).toBe(true);
        expect(b.handlespace.get('listen', 77)?.homeRegistrarId).toBe(b.id);

        const gone = waitFor(pe, 'deregistered', { timeoutMs: 10_000 });
        await pe.stop();
        expect((await gone)[0]).toBe(true);
        expect(b.handlespace.get('listen', 77)).toBeUndefined();
      } finally {
        await pe.stop();
        await a.stop();
        await b.stop();
      }
    },
  );

  it('refuses a listen address that registrars could not connect to', async () => {
    const a = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await a.start();
    const pe = createPoolElement({
      handle: 'listen',
      policy: { type: PolicyType.RoundRobin },
      userTransport: { protocol: 'tcp', port: 7101, addresses: ['127.0.0.1'], transportUse: 0 },
      registrars: [a.addresses[0]!.href],
      asapListen: 'tcp://localhost:0',
    });
    try {
      await expect(pe.start()).rejects.toMatchObject({ code: 'RSP_ERR_INVALID_OPTION' });
      expect(a.handlespace.size).toBe(0);
    } finally {
      await a.stop();
    }
  });
});
