/**
 * One lifecycle (start/stop/asyncDispose) and one typed error for state
 * misuse across the long-lived objects of the library.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StateError } from '../../lib/errors.js';
import { createHandlespace } from '../../lib/handlespace/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import { listenAnnounces } from '../../lib/announce/index.js';
import { createTftpClient } from '../../lib/tftp/client/index.js';
import { createTftpGateway } from '../../lib/tftp/gateway/index.js';
import { createTftpServer } from '../../lib/tftp/server/index.js';

const root = mkdtempSync(join(tmpdir(), 'rserpool-lifecycle-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const isStateError = (err: unknown): boolean => err instanceof StateError && (err as StateError).code === 'RSP_ERR_STATE';

describe('lifecycle', () => {
  it('every long-lived object has start(), stop() and Symbol.asyncDispose', async () => {
    const objects = [
      createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false }),
      createTftpServer({ root, port: 0, host: '127.0.0.1' }),
      createTftpGateway({ listen: { host: '127.0.0.1', port: 0 }, handle: 'files', registrars: ['tcp://127.0.0.1:1'] }),
      createPoolUser({ registrars: ['tcp://127.0.0.1:1'] }),
      createTftpClient({ registrars: ['tcp://127.0.0.1:1'] }),
      await listenAnnounces({ port: 0 }),
    ];
    for (const o of objects) {
      expect(typeof o.start).toBe('function');
      expect(typeof o.stop).toBe('function');
      expect(typeof o[Symbol.asyncDispose]).toBe('function');
      await o.start();
      await o.stop();
    }
  });

  it('misuse of state is one typed error, StateError (RSP_ERR_STATE)', async () => {
    const reg = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await reg.start();
    await expect(reg.start()).rejects.toSatisfy(isStateError);
    await reg.stop();

    const server = createTftpServer({ root, port: 0, host: '127.0.0.1' });
    await server.start();
    await expect(server.start()).rejects.toSatisfy(isStateError);
    await server.stop();

    const gw = createTftpGateway({ listen: { host: '127.0.0.1', port: 0 }, handle: 'files', registrars: ['tcp://127.0.0.1:1'] });
    expect(() => gw.address).toThrow(StateError);
    await gw.start();
    await expect(gw.start()).rejects.toSatisfy(isStateError);
    await gw.stop();

    const pu = createPoolUser({ registrars: ['tcp://127.0.0.1:1'] });
    await pu.stop();
    await expect(pu.start()).rejects.toSatisfy(isStateError);
    await expect(pu.resolve('files')).rejects.toSatisfy(isStateError);

    const client = createTftpClient({ registrars: ['tcp://127.0.0.1:1'] });
    await client.stop();
    await expect(client.start()).rejects.toSatisfy(isStateError);
    await expect(client.get('files', 'a.bin', join(root, 'out.bin'))).rejects.toSatisfy(isStateError);
  });

  it("a handlespace's events can be subscribed to, not emitted from outside", () => {
    const hs = createHandlespace();
    let added = 0;
    hs.events.on('added', () => added++);
    // @ts-expect-error emitting is the handlespace's own business (typecheck fails if `emit` is exposed)
    void hs.events.emit;
    hs.register(
      'h',
      {
        identifier: 1,
        homeRegistrarId: 0,
        registrationLife: 1000,
        userTransport: { protocol: 'tcp', port: 1, addresses: ['127.0.0.1'], transportUse: 0 },
        policy: { type: 1 },
      } as never,
      { ownerId: 0 },
    );
    expect(added).toBe(1);
  });
});
