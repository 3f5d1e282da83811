/**
 * Prometheus metrics of a registrar node (prom-client): what the handlespace
 * holds, what ASAP and ENRP did. Gauges are read at scrape time, counters
 * follow the registrar's and ENRP's events; nothing runs between scrapes.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RegistrarNode } from './registrar/node.js';
import type { RegistrarEvents } from './registrar/types.js';

export interface RegistrarMetricsInit {
  /** Registry to register in (default: a new one). */
  registry?: Registry;
  /** Also the process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
}

export interface RegistrarMetrics {
  readonly registry: Registry;
  /** The text exposition format. */
  text(): Promise<string>;
  readonly contentType: string;
  /** Stops following the node's events. */
  close(): void;
}

/** Counters kept elsewhere as running totals, exposed as Prometheus counters. */
function totalCounter(registry: Registry, name: string, help: string, read: () => number): void {
  let last = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      if (now > last) this.inc(now - last);
      last = now;
    },
  });
}

export function createRegistrarMetrics(node: RegistrarNode, init: RegistrarMetricsInit = {}): RegistrarMetrics {
  const registry = init.registry ?? new Registry();
  const r = node.registrar;
  const hs = r.handlespace;
  const registers = [registry];
  if (init.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  registry.setDefaultLabels({ registrar: `0x${(node.id >>> 0).toString(16).padStart(8, '0')}` });

  new Gauge({
    name: 'rserpool_pools',
    help: 'Pools in the handlespace',
    registers,
    collect() {
      this.set(hs.poolCount);
    },
  });
  new Gauge({
    name: 'rserpool_pool_elements',
    help: 'Pool elements in the handlespace (all owners)',
    registers,
    collect() {
      this.set(hs.size);
    },
  });
  new Gauge({
    name: 'rserpool_pool_elements_owned',
    help: 'Pool elements this registrar is home for',
    registers,
    collect() {
      this.set(hs.ownedCount(r.id));
    },
  });
  new Gauge({
    name: 'rserpool_asap_connections',
    help: 'Open ASAP connections',
    registers,
    collect() {
      this.set(r.connectionCount);
    },
  });
  new Gauge({
    name: 'rserpool_synchronised',
    help: '1 once the handlespace is synchronised (resolutions are answered)',
    registers,
    collect() {
      this.set(r.synchronised ? 1 : 0);
    },
  });
  totalCounter(registry, 'rserpool_handle_resolutions_total', 'Handle resolutions answered', () => r.counters.resolutions);
  totalCounter(
    registry,
    'rserpool_handle_resolutions_unknown_total',
    'Handle resolutions for a handle with no pool element',
    () => r.counters.resolutionsUnknown,
  );
  totalCounter(registry, 'rserpool_unreachable_reports_total', 'ASAP_ENDPOINT_UNREACHABLE reports received', () => r.counters.unreachableReports);
  totalCounter(
    registry,
    'rserpool_unreachable_reports_ignored_total',
    "Unreachable reports ignored: over their reporter's rate",
    () => r.counters.unreachableReportsIgnored,
  );
  totalCounter(registry, 'rserpool_unreachable_probes_total', 'Keep-alives sent to check a PE reported unreachable', () => r.counters.unreachableProbes);

  const registrations = new Counter({ name: 'rserpool_registrations_total', help: 'Registrations accepted, new or renewed', labelNames: ['kind'], registers });
  const deregistrations = new Counter({ name: 'rserpool_deregistrations_total', help: 'Deregistrations of pool elements owned here', registers });
  const removals = new Counter({
    name: 'rserpool_pool_element_removals_total',
    help: 'Pool elements removed by this registrar',
    labelNames: ['reason'],
    registers,
  });
  const refusals = new Counter({ name: 'rserpool_registrations_refused_total', help: 'Registrations refused', labelNames: ['cause'], registers });
  const badMessages = new Counter({
    name: 'rserpool_asap_bad_messages_total',
    help: 'ASAP messages that could not be decoded or were not expected',
    registers,
  });
  registrations.inc({ kind: 'new' }, 0);
  registrations.inc({ kind: 'renewal' }, 0);

  const onRegistered: RegistrarEvents['registered'] = (_e, created) => registrations.inc({ kind: created ? 'new' : 'renewal' });
  const onDeregistered: RegistrarEvents['deregistered'] = () => deregistrations.inc();
  const onRemoved: RegistrarEvents['removed'] = (_e, reason) => removals.inc({ reason });
  const onRefused: RegistrarEvents['refused'] = (_h, _id, cause) => refusals.inc({ cause: `0x${cause.toString(16)}` });
  const onBad: RegistrarEvents['bad-message'] = () => badMessages.inc();
  r.on('registered', onRegistered);
  r.on('deregistered', onDeregistered);
  r.on('removed', onRemoved);
  r.on('refused', onRefused);
  r.on('bad-message', onBad);

  const enrp = node.enrp;
  if (enrp) {
    new Gauge({
      name: 'rserpool_enrp_peers',
      help: 'ENRP peers by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const p of enrp.status().peers) this.inc({ state: p.state });
      },
    });
    const c = (): ReturnType<typeof enrp.status>['counters'] => enrp.status().counters;
    totalCounter(registry, 'rserpool_enrp_messages_sent_total', 'ENRP messages sent', () => c().messagesSent);
    totalCounter(registry, 'rserpool_enrp_messages_received_total', 'ENRP messages received', () => c().messagesReceived);
    totalCounter(registry, 'rserpool_enrp_bytes_sent_total', 'ENRP bytes sent', () => c().bytesSent);
    totalCounter(registry, 'rserpool_enrp_bytes_received_total', 'ENRP bytes received', () => c().bytesReceived);
    totalCounter(registry, 'rserpool_enrp_refused_total', 'ENRP messages refused (unknown sender, wrong owner, live peer...)', () => c().refused);
    totalCounter(registry, 'rserpool_enrp_audits_total', 'ENRP audits run', () => c().audits);
    totalCounter(registry, 'rserpool_enrp_takeovers_total', "Takeovers of a dead peer's pool elements by this registrar", () => c().takeovers);
  }

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close() {
      r.off('registered', onRegistered);
      r.off('deregistered', onDeregistered);
      r.off('removed', onRemoved);
      r.off('refused', onRefused);
      r.off('bad-message', onBad);
    },
  };
}
