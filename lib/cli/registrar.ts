import { createRegistrarNode, type RegistrarNodeInit } from '../registrar/index.js';
import { createLogger } from '../logger.js';
import { createStatusView } from '../status/view.js';
import { createEventFeed } from '../status/feed.js';
import { HTTP_TOKEN_SPECS, httpToken, startHttp } from './http.js';
import { CliUsageError, type Command } from './command.js';
import {
  CONNECTION_LIMIT_SPECS,
  TLS_SPECS,
  connectionLimitOptions,
  duration,
  hostPort,
  integer,
  list,
  parseOptions,
  str,
  transportsFromOptions,
  type OptionSpec,
  type OptionValues,
} from './options.js';
import { hex32, untilSignal } from './process.js';
import { handleText, transportText } from './format.js';
import type { PoolElementEntry } from '../handlespace/index.js';
import { loadAcl, type Acl } from '../registrar/acl.js';
import { parseTransportUrl } from '../transport/index.js';
import type { Logger } from '../logger.js';

/** Bounds on each PE (ASAP and ENRP alike) and on the state peers can make us hold. */
const STATE_LIMIT_SPECS: Record<string, OptionSpec> = {
  'max-handle-length': { type: 'string', help: 'longest pool handle, bytes', default: '1024' },
  'max-transport-addresses': { type: 'string', help: 'addresses per transport parameter of a PE', default: '32' },
  'max-pe-bytes': { type: 'string', help: 'largest encoded pool element parameter, bytes', default: '2048' },
  'max-peer-pes': { type: 'string', help: 'PEs learned from ENRP peers held at most', default: '1000000' },
  'max-pools': { type: 'string', help: 'pools held at most', default: '100000' },
  'max-ring-points': { type: 'string', help: 'consistent-hash ring points held at most', default: '4194304' },
};

const specs: Record<string, OptionSpec> = {
  asap: { type: 'string', multiple: true, help: 'ASAP listen URL: tcp://, tls://, sctp+udp:// or sctp:// (root)', default: 'tcp://127.0.0.1:3863' },
  id: { type: 'string', help: 'registrar id, 32-bit (decimal or 0x hex); random when absent' },
  http: { type: 'string', help: "web page, /status, /events and /metrics on host:port ('off' to disable)", default: '127.0.0.1:3864' },
  ...HTTP_TOKEN_SPECS,
  announce: { type: 'string', help: "announce group:port on loopback ('off' to disable)", default: '239.0.0.50:3863' },
  'announce-interface': { type: 'string', help: 'interface address announces go out on', default: '127.0.0.1' },
  'keep-alive-interval': { type: 'string', help: 'endpoint keep-alive period', default: '5s' },
  'keep-alive-timeout': { type: 'string', help: 'keep-alive answer deadline', default: '5s' },
  'unreachable-threshold': { type: 'string', help: 'distinct reporters (hosts or identities) whose reports make the registrar probe a PE', default: '3' },
  'startup-grace': {
    type: 'string',
    help: 'without ENRP: for this long after start, an unknown handle is answered "try again" (Lack of Resources), not "unknown" (its PEs may not have registered again yet)',
    default: '10s',
  },
  'max-registration-life': {
    type: 'string',
    help: 'longest registration life: a PE asking for more is refused (one learned from a peer is clamped)',
    default: '1h',
  },
  enrp: { type: 'string', multiple: true, help: 'ENRP listen URL (enables ENRP), e.g. tcp://127.0.0.2:9901' },
  peer: { type: 'string', multiple: true, help: 'ENRP URL of a peer registrar' },
  'enrp-multicast': { type: 'string', help: 'ENRP presence group:port on loopback, hints at peers to dial (e.g. 239.0.0.51:9901)', default: 'off' },
  'peer-heartbeat': { type: 'string', help: 'ENRP presence period', default: '2444ms' },
  'max-last-heard': { type: 'string', help: 'a peer silent this long is probed', default: '5s' },
  'max-no-response': { type: 'string', help: 'a probed peer silent this long is taken over', default: '5s' },
  'takeover-expiry': { type: 'string', help: 'wait this long for takeover acknowledgements', default: '5s' },
  'mentor-discovery': { type: 'string', help: 'with no peer answering this long, start alone', default: '5s' },
  'print-events': { type: 'boolean', help: 'print a line per PE registered, deregistered or removed' },
  acl: { type: 'string', help: 'who may register, resolve and peer: JSON or YAML policy file (see README)' },
  insecure: { type: 'boolean', help: 'allow a plain tcp:// ENRP listener on a non-loopback address' },
  ...STATE_LIMIT_SPECS,
  ...CONNECTION_LIMIT_SPECS,
  ...TLS_SPECS,
};

/**
 * RFC 5355: ENRP carries the whole handlespace, so anyone who reaches a plain
 * tcp:// listener can rewrite it. Off loopback that takes an explicit --insecure.
 */
function checkEnrpSecurity(urls: string[], insecure: boolean, logger: Logger): void {
  for (const u of urls) {
    let url;
    try {
      url = parseTransportUrl(u);
    } catch {
      continue; // reported where the URL is used
    }
    if (url.scheme !== 'tcp') continue;
    const loopback = url.host === 'localhost' || url.host === '::1' || url.host.startsWith('127.');
    if (loopback) logger.warn({ url: url.href }, 'ENRP over plain tcp:// (loopback): any local process can join the cluster; use tls:// with an ACL');
    else if (!insecure)
      throw new CliUsageError(`--enrp ${url.href}: plain tcp:// off loopback lets anyone who reaches it rewrite the pools; use tls:// (or --insecure)`);
    else logger.warn({ url: url.href }, 'ENRP over plain tcp:// off loopback (--insecure)');
  }
}

export const registrarCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('registrar [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const asap = list(values, 'asap');
    const id = integer('id', str(values, 'id'), 1, 0xffffffff);
    const announce = multicastGroup(str(values, 'announce'), str(values, 'announce-interface')!);
    const logger = createLogger('registrar');
    const enrpUrls = list(values, 'enrp');
    const peers = list(values, 'peer');
    if (peers.length > 0 && enrpUrls.length === 0) throw new CliUsageError("--peer needs --enrp (this registrar's own ENRP address)");
    checkEnrpSecurity(enrpUrls, values.insecure === true, logger);
    const aclFile = str(values, 'acl');
    let acl: Acl | undefined;
    try {
      acl = aclFile !== undefined ? loadAcl(aclFile) : undefined;
    } catch (err) {
      throw new CliUsageError(`--acl: ${(err as Error).message}`);
    }
    const node = createRegistrarNode(
      {
        ...(enrpUrls.length > 0
          ? {
              enrp: {
                listen: enrpUrls,
                peers,
                connectionLimits: connectionLimitOptions(values),
                maxPeerPoolElements: integer('max-peer-pes', str(values, 'max-peer-pes'), 0, 1e9)!,
                multicast: multicastGroup(str(values, 'enrp-multicast'), str(values, 'announce-interface')!),
                timers: {
                  peerHeartbeatCycleMs: duration('peer-heartbeat', str(values, 'peer-heartbeat'))!,
                  maxTimeLastHeardMs: duration('max-last-heard', str(values, 'max-last-heard'))!,
                  maxTimeNoResponseMs: duration('max-no-response', str(values, 'max-no-response'))!,
                  takeoverExpiryMs: duration('takeover-expiry', str(values, 'takeover-expiry'))!,
                  mentorDiscoveryMs: duration('mentor-discovery', str(values, 'mentor-discovery'))!,
                },
              },
            }
          : {}),
        asap,
        connectionLimits: connectionLimitOptions(values),
        ...(id !== undefined ? { id } : {}),
        announce,
        keepAliveIntervalMs: duration('keep-alive-interval', str(values, 'keep-alive-interval'))!,
        keepAliveTimeoutMs: duration('keep-alive-timeout', str(values, 'keep-alive-timeout'))!,
        unreachableThreshold: integer('unreachable-threshold', str(values, 'unreachable-threshold'), 1, 1_000_000)!,
        maxRegistrationLifeMs: duration('max-registration-life', str(values, 'max-registration-life'))!,
        ...(enrpUrls.length === 0 ? { startupGraceMs: duration('startup-grace', str(values, 'startup-grace'))! } : {}),
        ...stateLimitOptions(values),
        ...(acl ? { acl } : {}),
      },
      { logger, transports: transportsFromOptions(values, [...asap, ...enrpUrls, ...peers], 'server') },
    );
    const registrar = node.registrar;
    if (values['print-events']) {
      const say = (line: string): void => void process.stdout.write(`${line}\n`);
      const name = (e: PoolElementEntry): string => `${hex32(e.identifier)} ${handleText(e.handle)}`;
      registrar.on('registered', (e, created) => say(`pe-${created ? 'registered' : 'reregistered'} ${name(e)} ${transportText(e.userTransport)}`));
      registrar.on('deregistered', (e) => say(`pe-deregistered ${name(e)}`));
      registrar.on('removed', (e, reason) => say(`pe-removed ${name(e)} ${reason}`));
      registrar.on('refused', (handle, id, cause, reason, peer) =>
        say(`pe-refused ${hex32(id)} ${handleText(handle)} cause 0x${cause.toString(16)} ${JSON.stringify(reason)} by ${JSON.stringify(peer)}`),
      );
      registrar.on('acl-refused', (peer, role, handle) => say(`acl-refused ${role} ${handleText(handle)} by ${JSON.stringify(peer)}`));
    }
    if (node.enrp && values['print-events']) {
      const say = (line: string): void => void process.stdout.write(`${line}\n`);
      node.enrp.events.on('peer-up', (p) => say(`peer-up ${hex32(p.id)}`));
      node.enrp.events.on('peer-down', (p, why) => say(`peer-down ${hex32(p.id)} ${why}`));
      node.enrp.events.on('takeover', (from, entries) => say(`takeover ${hex32(from)} ${entries.length} PEs`));
      node.enrp.events.on('synchronised', () => say('synchronised'));
    }
    httpToken(values); // a bad token is a usage error before anything starts
    // Subscribed before start, so the feed has the first registrations too.
    const httpOn = str(values, 'http') !== undefined && str(values, 'http') !== 'off';
    const feed = httpOn ? createEventFeed(node) : undefined;
    await node.start();
    // prom-client is loaded only when metrics are served.
    const metrics = httpOn ? (await import('../metrics.js')).createRegistrarMetrics(node) : undefined;
    const status = await startHttp(values, { view: createStatusView(node), ...(feed ? { feed } : {}), page: true, ...(metrics ? { metrics } : {}) }, logger);
    process.stdout.write(
      `registrar ${hex32(registrar.id)} asap ${registrar.addresses.map((a) => a.href).join(' ')}` +
        `${node.enrp ? ` enrp ${node.enrp.listenUrls.join(' ')}` : ''}${status ? ` status ${status.url}/status` : ''}\n`,
    );
    const sig = await untilSignal();
    logger.info({ signal: sig }, 'stopping');
    await status?.close();
    feed?.stop();
    metrics?.close();
    await node.stop();
    return 0;
  },
};

function stateLimitOptions(
  values: OptionValues,
): Pick<RegistrarNodeInit, 'maxHandleLength' | 'maxTransportAddresses' | 'maxPoolElementBytes' | 'maxPools' | 'maxRingPoints'> {
  return {
    maxHandleLength: integer('max-handle-length', str(values, 'max-handle-length'), 1, 60_000)!,
    maxTransportAddresses: integer('max-transport-addresses', str(values, 'max-transport-addresses'), 1, 8_000)!,
    maxPoolElementBytes: integer('max-pe-bytes', str(values, 'max-pe-bytes'), 32, 64_000)!,
    maxPools: integer('max-pools', str(values, 'max-pools'), 1, 1e9)!,
    maxRingPoints: integer('max-ring-points', str(values, 'max-ring-points'), 0, 1e9)!,
  };
}

function multicastGroup(text: string | undefined, iface: string): { group: string; port: number; interface: string; ttl: number } | false {
  if (!text || text === 'off') return false;
  const { host, port } = hostPort('announce', text);
  return { group: host, port, interface: iface, ttl: 1 };
}
