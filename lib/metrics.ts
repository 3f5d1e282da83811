/**
 * Prometheus metrics (prom-client) of a registrar node, a TFTP pool element
 * and a TFTP gateway: what they hold and what they did. Gauges are read at
 * scrape time, counters follow events; nothing runs between scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { EnrpMessageType } from '../protocols/enrp/types.js';
import type { RegistrarNode } from './registrar/node.js';
import type { RegistrarEvents } from './registrar/types.js';
import type { TftpServer, TftpServerEvents } from './tftp/server/types.js';
import type { TftpGateway, TftpGatewayEvents } from './tftp/gateway/index.js';
import { CookieError } from './tftp/server/errors.js';

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
    "Unreachable reports ignored: over their reporter's rate, or of a PE not in the handlespace",
    () => r.counters.unreachableReportsIgnored,
  );
  totalCounter(
    registry,
    'rserpool_refused_by_acl_total',
    'Registrations and resolutions refused for security: by the ACL, or a PE identifier owned by another identity',
    () => r.counters.refusedByAcl,
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
  const keepAliveTimeouts = new Counter({
    name: 'rserpool_keep_alive_timeouts_total',
    help: 'Pool elements owned here that did not answer an endpoint keep-alive in time',
    registers,
  });
  registrations.inc({ kind: 'new' }, 0);
  registrations.inc({ kind: 'renewal' }, 0);
  keepAliveTimeouts.inc(0);

  const onRegistered: RegistrarEvents['registered'] = (_e, created) => registrations.inc({ kind: created ? 'new' : 'renewal' });
  const onDeregistered: RegistrarEvents['deregistered'] = () => deregistrations.inc();
  const onRemoved: RegistrarEvents['removed'] = (_e, reason) => {
    removals.inc({ reason });
    if (reason === 'keep-alive-timeout') keepAliveTimeouts.inc();
  };
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
    totalCounter(
      registry,
      'rserpool_enrp_unreachable_forwarded_total',
      "Unreachable reports forwarded to a PE's home registrar",
      () => c().unreachableForwarded,
    );
    totalCounter(
      registry,
      'rserpool_enrp_unreachable_received_total',
      'Unreachable reports peers forwarded about PEs homed here',
      () => c().unreachableReceived,
    );
    const typeName = new Map<number, string>(
      Object.entries(EnrpMessageType).map(([k, v]) => [v, k.replace(/[A-Z]/g, (m, i: number) => (i ? '_' : '') + m.toLowerCase())]),
    );
    const byType = (name: string, help: string, read: () => Record<number, number>): void => {
      const last = new Map<number, number>();
      new Counter({
        name,
        help,
        labelNames: ['type'],
        registers,
        collect() {
          for (const [t, n] of Object.entries(read())) {
            const type = Number(t);
            const before = last.get(type) ?? 0;
            if (n > before) this.inc({ type: typeName.get(type) ?? `0x${type.toString(16)}` }, n - before);
            last.set(type, n);
          }
        },
      });
    };
    byType('rserpool_enrp_messages_sent_by_type_total', 'ENRP messages sent, by type', () => c().sentByType);
    byType('rserpool_enrp_messages_received_by_type_total', 'ENRP messages received and decoded, by type', () => c().receivedByType);
    // From creation to the handlespace downloaded from a mentor (or mentor discovery running out alone).
    const syncSeconds = new Gauge({
      name: 'rserpool_enrp_handle_table_sync_seconds',
      help: 'Time from start to a synchronised handlespace (handle table from the mentor, or mentor discovery running out)',
      registers,
    });
    if (!enrp.synchronised) {
      const t0 = performance.now();
      enrp.events.once('synchronised', () => syncSeconds.set((performance.now() - t0) / 1000));
    }
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

export interface TftpMetrics {
  readonly registry: Registry;
  text(): Promise<string>;
  readonly contentType: string;
  /** Stops following the server's events. */
  close(): void;
}

/**
 * A TFTP server's (pool element's) transfers, bytes and state cookies.
 * Subscribes to its events only: the server knows nothing of metrics.
 */
export function createTftpServerMetrics(server: TftpServer, init: RegistrarMetricsInit & { labels?: Record<string, string> } = {}): TftpMetrics {
  const registry = init.registry ?? new Registry();
  const registers = [registry];
  if (init.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  if (init.labels) registry.setDefaultLabels(init.labels);
  new Gauge({
    name: 'rserpool_tftp_transfers_active',
    help: 'Transfers in progress',
    registers,
    collect() {
      this.set(server.activeTransfers);
    },
  });
  const started = new Counter({
    name: 'rserpool_tftp_transfers_started_total',
    help: 'Transfers started, by kind (read, write)',
    labelNames: ['kind'],
    registers,
  });
  const finished = new Counter({
    name: 'rserpool_tftp_transfers_finished_total',
    help: 'Transfers ended, by kind and outcome (done, timeout, peer-error, peer-gone, error, closed, ...)',
    labelNames: ['kind', 'outcome'],
    registers,
  });
  const sent = new Counter({ name: 'rserpool_tftp_sent_bytes_total', help: 'File bytes sent and acknowledged (downloads)', registers });
  const received = new Counter({ name: 'rserpool_tftp_received_bytes_total', help: 'File bytes received and stored (uploads)', registers });
  const issued = new Counter({ name: 'rserpool_tftp_cookies_issued_total', help: 'State cookies sent to clients', registers });
  const accepted = new Counter({ name: 'rserpool_tftp_cookies_accepted_total', help: 'Cookie echoes accepted (a transfer resumed from them)', registers });
  const refusedCookies = new Counter({
    name: 'rserpool_tftp_cookies_refused_total',
    help: 'Cookie echoes refused, by reason (malformed, bad-signature, expired, address, stale, ...)',
    labelNames: ['reason'],
    registers,
  });
  const resumed = new Counter({
    name: 'rserpool_tftp_transfers_resumed_total',
    help: 'Downloads resumed from a state cookie another (or this) PE issued',
    registers,
  });
  const refused = new Counter({
    name: 'rserpool_tftp_requests_refused_total',
    help: 'Requests and packets refused, by error code',
    labelNames: ['code'],
    registers,
  });
  for (const kind of ['read', 'write']) started.inc({ kind }, 0);
  for (const c of [sent, received, issued, accepted, resumed]) c.inc(0);

  const onStart: TftpServerEvents['transfer-start'] = (t) => {
    started.inc({ kind: t.kind });
    if (t.resumedAt !== undefined) {
      accepted.inc();
      resumed.inc();
    }
  };
  const onEnd: TftpServerEvents['transfer-end'] = (t, r) => {
    finished.inc({ kind: t.kind, outcome: r.reason });
    (t.kind === 'read' ? sent : received).inc(r.bytes);
  };
  const onRefused: TftpServerEvents['refused'] = (err) => {
    if (err instanceof CookieError) refusedCookies.inc({ reason: err.reason });
    else refused.inc({ code: err.code });
  };
  const onCookie = (): void => issued.inc();
  server.on('transfer-start', onStart);
  server.on('transfer-end', onEnd);
  server.on('refused', onRefused);
  server.on('cookie-issued', onCookie);
  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close() {
      server.off('transfer-start', onStart);
      server.off('transfer-end', onEnd);
      server.off('refused', onRefused);
      server.off('cookie-issued', onCookie);
    },
  };
}

/** A TFTP gateway's client transfers, failovers and the stalls they cost. */
export function createTftpGatewayMetrics(gateway: TftpGateway, init: RegistrarMetricsInit & { labels?: Record<string, string> } = {}): TftpMetrics {
  const registry = init.registry ?? new Registry();
  const registers = [registry];
  if (init.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  if (init.labels) registry.setDefaultLabels(init.labels);
  new Gauge({
    name: 'rserpool_tftp_gateway_transfers_active',
    help: 'Client transfers in progress',
    registers,
    collect() {
      this.set(gateway.activeTransfers);
    },
  });
  const started = new Counter({ name: 'rserpool_tftp_gateway_transfers_started_total', help: 'Client transfers started', registers });
  const finished = new Counter({
    name: 'rserpool_tftp_gateway_transfers_finished_total',
    help: 'Client transfers ended, by outcome (ok, failed)',
    labelNames: ['outcome'],
    registers,
  });
  const bytes = new Counter({ name: 'rserpool_tftp_gateway_sent_bytes_total', help: 'File bytes delivered to clients', registers });
  const failovers = new Counter({
    name: 'rserpool_tftp_gateway_failovers_total',
    help: 'Moves of a transfer to another PE, by whether a cookie was echoed (resume) or not (restart)',
    labelNames: ['resumed'],
    registers,
  });
  const stall = new Histogram({
    name: 'rserpool_tftp_gateway_stall_seconds',
    help: 'From the last block of the old PE to the first of the new one, per failover',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16],
    registers,
  });
  started.inc(0);
  for (const outcome of ['ok', 'failed']) finished.inc({ outcome }, 0);
  for (const resumed of ['true', 'false']) failovers.inc({ resumed }, 0);
  bytes.inc(0);
  const onStart = (): void => started.inc();
  const onEnd: TftpGatewayEvents['transfer-end'] = (e) => {
    finished.inc({ outcome: e.ok ? 'ok' : 'failed' });
    bytes.inc(e.bytes);
  };
  const onFailover: TftpGatewayEvents['failover'] = (f) => {
    failovers.inc({ resumed: String(f.cookieEchoed) });
    stall.observe(f.stallMs / 1000);
  };
  gateway.on('transfer-start', onStart);
  gateway.on('transfer-end', onEnd);
  gateway.on('failover', onFailover);
  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close() {
      gateway.off('transfer-start', onStart);
      gateway.off('transfer-end', onEnd);
      gateway.off('failover', onFailover);
    },
  };
}
