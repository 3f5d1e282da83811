/** A PE that listens for ASAP is reached by the registrar that took it over, and adopts it as home (RFC 5352 3.7). */
import { describe, expect, it } from 'vitest';
import { PolicyType } from '../../protocols/parameters/types.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { createTransports } from '../../lib/transport/index.js';
import { waitFor, withDeadline } from '../transport/util.js';
import type { Logger } from '../../lib/logger.js';

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

  it('ignores an H-bit keep-alive from a registrar outside takeoverFrom and stays with its home', async () => {
    const a = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false, id: 0xa });
    const b = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false, id: 0xb });
    await a.start();
    await b.start();
    let onWarn: (msg: string | undefined) => void = () => {};
    const recorder: Logger = { debug: () => {}, info: () => {}, warn: (_o, msg) => onWarn(msg), error: () => {}, child: () => recorder };
    const pe = createPoolElement(
      {
        handle: 'listen',
        policy: { type: PolicyType.RoundRobin },
        userTransport: { protocol: 'tcp', port: 7101, addresses: ['127.0.0.1'], transportUse: 0 },
        registrars: [a.addresses[0]!.href],
        asapListen: 'tcp://127.0.0.1:0',
        takeoverFrom: ['10.9.9.9/32'],
        identifier: 78,
      },
      { logger: recorder },
    );
    try {
      await pe.start();
      const entry = a.handlespace.get('listen', 78)!;
      const foreign = {
        identifier: entry.identifier,
        homeRegistrarId: entry.homeRegistrarId,
        registrationLife: entry.registrationLife,
        userTransport: entry.userTransport,
        asapTransport: entry.asapTransport!,
        policy: entry.policy,
      };
      expect(b.applyForeign('listen', foreign, a.id)).toBe(true);
      const ignored = new Promise<void>((resolve) => (onWarn = (msg) => msg === 'H-bit keep-alive from a stranger ignored' && resolve()));
      // B claims the PE while A is alive and well.
      expect(await b.sendHomeKeepAlive('listen', 78)).toBe(true);
      await withDeadline(ignored, 5_000, 'the PE to ignore the H-bit keep-alive');
      expect(pe.registrar).toBe(a.addresses[0]!.href);
      expect(a.handlespace.get('listen', 78)?.homeRegistrarId).toBe(a.id);
    } finally {
      await pe.stop();
      await a.stop();
      await b.stop();
    }
  });

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
