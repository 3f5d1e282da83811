/**
 * Bounded views of a registrar node for HTTP: a summary (registrars, pools
 * with their sizes and load) and pages of one pool's PEs. Nothing here is
 * O(handlespace) per request except one pool's PEs for a page of it, and a
 * response never carries more than MAX_ELEMENTS PEs: at 10^6 PEs the old
 * single snapshot was hundreds of MB.
 */
import type { Clock } from '../clock.js';
import { policyName, type PoolElementEntry, type PoolInfo } from '../handlespace/index.js';
import type { RegistrarNode } from '../registrar/node.js';
import type { PoolElementStatus } from '../registrar/types.js';

/** Most PEs in one response, whatever is asked for. */
export const MAX_ELEMENTS = 10_000;
/** Most pools in one response. */
export const MAX_POOLS = 1_000;
/** Pools whose load is averaged for a summary are read whole; past this many PEs the load is left out. */
const LOAD_SCAN_LIMIT = 200_000;

export interface RegistrarSummaryRow {
  id: number;
  /** ENRP URL (the first one for ourselves). */
  url: string | undefined;
  /** 'self' for this registrar. */
  state: string;
  owned: number;
  /** ms since last heard; 0 for ourselves, null if never. */
  lastHeardMsAgo: number | null;
}

export interface PoolSummary {
  /** Text when printable, else hex. */
  handle: string;
  /** The handle's bytes as hex: what /status/pool takes. */
  hex: string;
  policyType: number;
  policy: string;
  size: number;
  /** Mean policy load of its PEs in [0, 1], for load policies; null otherwise. */
  load: number | null;
  /** The first PEs by identifier, when asked for with the summary. */
  elements?: PoolElementStatus[];
}

export interface StatusSummary {
  id: number;
  synchronised: boolean;
  asap: string[];
  enrp: string[];
  connections: number;
  poolElements: number;
  owned: number;
  /** All pools, of which `pools` holds the slice from `poolOffset`. */
  poolCount: number;
  poolOffset: number;
  pools: PoolSummary[];
  registrars: RegistrarSummaryRow[];
  /** The ENRP peers as before (compatibility with `rserpool status` of 0.2). */
  peers: { id: number; url: string | undefined; state: string; owned: number; lastHeardMsAgo: number | null }[];
}

export interface PoolPage {
  handle: string;
  hex: string;
  policyType: number;
  policy: string;
  size: number;
  offset: number;
  elements: PoolElementStatus[];
}

export interface StatusView {
  /** `elements` > 0 adds that many PEs of each pool (bounded by MAX_ELEMENTS in all). */
  summary(opts?: { poolOffset?: number; pools?: number; elements?: number }): StatusSummary;
  /** PEs of one pool ordered by identifier; undefined for an unknown handle. */
  pool(handle: Uint8Array, opts?: { offset?: number; limit?: number }): PoolPage | undefined;
}

export function printableHandle(handle: Uint8Array): string {
  for (const b of handle) if (b < 0x20 || b > 0x7e) return Buffer.from(handle).toString('hex');
  return Buffer.from(handle).toString('latin1');
}

const hexOf = (h: Uint8Array): string => Buffer.from(h).toString('hex');
const clampInt = (v: number | undefined, lo: number, hi: number, dflt: number): number =>
  v === undefined || !Number.isFinite(v) ? dflt : Math.max(lo, Math.min(hi, Math.floor(v)));

export function createStatusView(node: RegistrarNode, clock: Clock = node.registrar.handlespace.clock): StatusView {
  const r = node.registrar;
  const hs = r.handlespace;

  const element = (e: PoolElementEntry, now: number): PoolElementStatus => ({
    identifier: e.identifier >>> 0,
    homeRegistrarId: e.homeRegistrarId >>> 0,
    registrationLife: e.registrationLife,
    expiresInMs: e.expiresAt === Infinity ? null : Math.max(0, Math.round(e.expiresAt - now)),
    userTransport: e.userTransport,
    policy: e.policy,
    connection: r.connectionOf(e.handle, e.identifier),
  });

  const sorted = (info: PoolInfo): PoolElementEntry[] => hs.poolElements(info.handle).sort((a, b) => (a.identifier >>> 0) - (b.identifier >>> 0));

  const load = (info: PoolInfo): number | null => {
    if (info.size === 0 || info.size > LOAD_SCAN_LIMIT) return null;
    let sum = 0;
    let n = 0;
    for (const e of hs.poolElements(info.handle)) {
      const l = (e.policy as { load?: number }).load;
      if (l === undefined) return null;
      sum += l;
      n++;
    }
    // RFC 5356 loads are 32-bit fractions of 0xffffffff.
    return n === 0 ? null : sum / n / 0xffffffff;
  };

  const head = (info: PoolInfo): Omit<PoolSummary, 'load' | 'elements'> => ({
    handle: printableHandle(info.handle),
    hex: hexOf(info.handle),
    policyType: info.policyType,
    policy: policyName(info.policyType),
    size: info.size,
  });

  return {
    summary(opts = {}) {
      const now = clock.now();
      const poolOffset = clampInt(opts.poolOffset, 0, Number.MAX_SAFE_INTEGER, 0);
      const poolLimit = clampInt(opts.pools, 0, MAX_POOLS, MAX_POOLS);
      let perPool = clampInt(opts.elements, 0, MAX_ELEMENTS, 0);
      if (perPool * poolLimit > MAX_ELEMENTS) perPool = Math.floor(MAX_ELEMENTS / Math.max(1, poolLimit));
      const pools: PoolSummary[] = [];
      let i = 0;
      for (const info of hs.pools()) {
        if (i++ < poolOffset) continue;
        if (pools.length >= poolLimit) break;
        pools.push({
          ...head(info),
          load: load(info),
          ...(perPool > 0
            ? {
                elements: sorted(info)
                  .slice(0, perPool)
                  .map((e) => element(e, now)),
              }
            : {}),
        });
      }
      const peers = (node.enrp?.peers() ?? []).map((p) => ({
        id: p.id >>> 0,
        url: p.url,
        state: p.state,
        owned: p.ownedCount,
        lastHeardMsAgo: Number.isFinite(p.lastHeard) ? Math.max(0, Math.round(now - p.lastHeard)) : null,
      }));
      const enrp = [...(node.enrp?.listenUrls ?? [])];
      const owned = hs.ownedCount(r.id);
      return {
        id: r.id >>> 0,
        synchronised: r.synchronised,
        asap: r.addresses.map((u) => u.href),
        enrp,
        connections: r.connectionCount,
        poolElements: hs.size,
        owned,
        poolCount: hs.poolCount,
        poolOffset,
        pools,
        registrars: [{ id: r.id >>> 0, url: enrp[0] ?? r.addresses[0]?.href, state: 'self', owned, lastHeardMsAgo: 0 }, ...peers],
        peers,
      };
    },
    pool(handle, opts = {}) {
      const info = hs.pool(handle);
      if (!info) return undefined;
      const now = clock.now();
      const offset = clampInt(opts.offset, 0, Number.MAX_SAFE_INTEGER, 0);
      const limit = clampInt(opts.limit, 0, MAX_ELEMENTS, 100);
      return {
        ...head(info),
        offset,
        elements: sorted(info)
          .slice(offset, offset + limit)
          .map((e) => element(e, now)),
      };
    },
  };
}
