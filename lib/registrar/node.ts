import { systemClock } from '../clock.js';
import { silentLogger } from '../logger.js';
import { createHandlespace } from '../handlespace/index.js';
import { createTransports } from '../transport/index.js';
import { createEnrpServer, type EnrpServer, type EnrpServerInit, type PeerInfo } from '../enrp/index.js';
import { createRegistrar } from './registrar.js';
import { handlespaceCaps, registrarLimits } from './registration.js';
import type { Registrar, RegistrarComponents, RegistrarInit, RegistrarStatus } from './types.js';

export interface RegistrarNodeInit extends RegistrarInit {
  /** ENRP with peers; absent for a registrar that works alone. */
  enrp?: Omit<EnrpServerInit, 'id' | 'handlespace'>;
}

export interface RegistrarNodeStatus extends RegistrarStatus {
  enrp: string[];
  peers: (Omit<PeerInfo, 'lastHeard'> & { lastHeardMsAgo: number | null; owned: number })[];
}

/** A registrar as deployed: ASAP for PEs and PUs, and (optionally) ENRP with its peers, over one handlespace. */
export interface RegistrarNode {
  readonly id: number;
  readonly registrar: Registrar;
  readonly enrp: EnrpServer | undefined;
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  stop(): Promise<void>;
  status(): RegistrarNodeStatus;
  [Symbol.asyncDispose](): Promise<void>;
}

export function createRegistrarNode(init: RegistrarNodeInit, components: RegistrarComponents = {}): RegistrarNode {
  const clock = components.clock ?? systemClock;
  const logger = (components.logger ?? silentLogger).child({ component: 'registrar-node' });
  const random = components.random ?? Math.random;
  const transports = components.transports ?? createTransports({});
  const handlespace = components.handlespace ?? createHandlespace({ clock, random, ...handlespaceCaps(init) });
  const { enrp: enrpInit, ...asapInit } = init;
  // Until ENRP has the handlespace from a mentor, resolutions would answer from a partial copy.
  const registrar = createRegistrar({ ...asapInit, ...(enrpInit ? { synchronised: false } : {}) }, { ...components, clock, random, transports, handlespace });
  const enrp = enrpInit
    ? createEnrpServer(
        // A PE a peer sends is held to the same limits as one registered here.
        {
          limits: registrarLimits(asapInit),
          // An audit gives a PE we own to a peer that claims it unless its ASAP association with us is live.
          holdsPoolElement: (handle, identifier) => registrar.connectionOf(handle, identifier) !== null,
          ...(asapInit.acl ? { authorizePeer: (identity, serverId) => asapInit.acl!.allows(identity, 'registrar', undefined, serverId) } : {}),
          ...enrpInit,
          id: registrar.id,
          handlespace,
        },
        { clock, logger: components.logger ?? silentLogger, random, transportFor: (u) => transports.transportFor(u) },
      )
    : undefined;
  if (enrp) {
    enrp.events.on('synchronised', () => registrar.setSynchronised(true));
    registrar.setIsolationCheck(() => enrp.uncertain);
    // Unreachable reports reach the PE's home, which alone can probe it.
    registrar.on('foreign-unreachable', (e) => {
      if (!enrp.forwardUnreachable(e.handle, e.identifier, e.homeRegistrarId))
        logger.debug({ home: e.homeRegistrarId }, 'unreachable reports not forwarded: home not connected');
    });
    enrp.events.on('unreachable-report', (peerId, handle, identifier) => registrar.reportedUnreachableByPeer(handle, identifier, peerId));
    // Taken-over PEs learn their new home from a keep-alive with the H bit where we can reach them, and
    // are supervised from then on; the others re-register on their own when they notice their home is gone.
    enrp.events.on('takeover', (from, entries) => {
      logger.info({ from, count: entries.length }, 'took over the PEs of a registrar');
      registrar.adopt(entries).catch((err: unknown) => logger.debug({ err }, 'taken-over PEs not adopted'));
    });
  }

  return {
    id: registrar.id,
    registrar,
    enrp,
    async start(opts) {
      await registrar.start(opts);
      if (enrp) {
        await enrp.start();
        if (enrp.synchronised) registrar.setSynchronised(true);
      }
    },
    async stop() {
      await enrp?.stop();
      await registrar.stop();
    },
    status() {
      const now = clock.now();
      return {
        ...registrar.status(),
        enrp: [...(enrp?.listenUrls ?? [])],
        peers: (enrp?.peers() ?? []).map(({ lastHeard, ...p }) => ({
          ...p,
          owned: p.ownedCount,
          lastHeardMsAgo: Number.isFinite(lastHeard) ? Math.round(now - lastHeard) : null,
        })),
      };
    },
    async [Symbol.asyncDispose]() {
      await this.stop();
    },
  };
}
