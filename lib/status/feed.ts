/**
 * The registrar's live event feed for the web page: PEs registered,
 * re-registered and removed (with the reason), ENRP peers up and down,
 * takeovers. Events are batched on a timer; a batch keeps at most
 * MAX_PER_BATCH of them and counts the rest by type, so a registration storm
 * of 100,000 PEs costs the page a few lines a second, not 100,000.
 */
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { PoolElementEntry, RemoveReason } from '../handlespace/index.js';
import type { RegistrarNode } from '../registrar/node.js';
import type { RemovalReason } from '../registrar/types.js';
import { printableHandle } from './view.js';

export type RemovedBecause =
  | RemovalReason
  /** The PE deregistered with us (its home). */
  | 'deregistered'
  /** An ENRP update from its home registrar (which knows why). */
  | 'removed-by-home'
  /** Its registration life ran out here. */
  | 'expired';

interface PeRef {
  handle: string;
  identifier: number;
  home: number;
}

export type FeedEvent = { seq: number; at: number } & (
  | { type: 'registered' | 're-registered'; pe: PeRef; transport: string }
  | { type: 'removed'; pe: PeRef; reason: RemovedBecause }
  | { type: 'peer-up'; peer: number; url: string | undefined }
  | { type: 'peer-down'; peer: number; reason: string }
  | { type: 'takeover'; from: number; to: number; count: number }
  | { type: 'synchronised' }
  /** Events of a batch past MAX_PER_BATCH, counted by type. */
  | { type: 'suppressed'; counts: Record<string, number> }
);

type Draft = FeedEvent extends infer T ? (T extends FeedEvent ? Omit<T, 'seq' | 'at'> : never) : never;

export interface EventFeedInit {
  /** Events kept for a page that connects later. Default 200. */
  history?: number;
  /** Batch period. Default 250 ms. */
  batchMs?: number;
}

export interface EventFeed {
  /** The latest events, oldest first. */
  recent(): readonly FeedEvent[];
  /** Called with each batch; returns the unsubscribe. */
  subscribe(fn: (batch: readonly FeedEvent[]) => void): () => void;
  stop(): void;
}

/** Per batch: this many events go out as they are, the rest are counted. */
export const MAX_PER_BATCH = 50;
/** Of those, at most this many re-registrations (they are routine). */
const MAX_REREGISTRATIONS = 10;

export function createEventFeed(node: RegistrarNode, init: EventFeedInit = {}, components: { clock?: Clock } = {}): EventFeed {
  const clock = components.clock ?? systemClock;
  const historyMax = init.history ?? 200;
  const batchMs = init.batchMs ?? 250;
  const hs = node.registrar.handlespace;
  const self = node.registrar.id;
  const history: FeedEvent[] = [];
  const subscribers = new Set<(batch: readonly FeedEvent[]) => void>();
  let pending: Draft[] = [];
  let kept = 0;
  let rereg = 0;
  let suppressed: Record<string, number> = {};
  // The removal just seen from the handlespace, so the registrar's reason that follows it in the same call can refine it.
  let lastRemoval: { entry: PoolElementEntry; draft: { reason: RemovedBecause } } | undefined;
  let seq = 0;
  let timer: TimerHandle | undefined;

  const ref = (e: PoolElementEntry): PeRef => ({ handle: printableHandle(e.handle), identifier: e.identifier >>> 0, home: e.homeRegistrarId >>> 0 });
  const transport = (e: PoolElementEntry): string => `${e.userTransport.protocol}://${e.userTransport.addresses.join(',')}:${e.userTransport.port}`;

  const flush = (): void => {
    timer = undefined;
    const at = Date.now();
    const batch: FeedEvent[] = pending.map((d) => ({ ...d, seq: ++seq, at }) as FeedEvent);
    if (Object.keys(suppressed).length > 0) batch.push({ type: 'suppressed', counts: suppressed, seq: ++seq, at });
    pending = [];
    kept = 0;
    rereg = 0;
    suppressed = {};
    lastRemoval = undefined;
    history.push(...batch);
    if (history.length > historyMax) history.splice(0, history.length - historyMax);
    for (const fn of subscribers) {
      try {
        fn(batch);
      } catch {
        // A subscriber's trouble is its own (the HTTP side drops its client).
      }
    }
  };

  const add = (d: Draft): boolean => {
    const isRereg = d.type === 're-registered';
    if (kept >= MAX_PER_BATCH || (isRereg && rereg >= MAX_REREGISTRATIONS)) {
      suppressed[d.type] = (suppressed[d.type] ?? 0) + 1;
      return false;
    }
    kept++;
    if (isRereg) rereg++;
    pending.push(d);
    timer ??= clock.setTimeout(flush, batchMs);
    return true;
  };

  const onAdded = (e: PoolElementEntry): void => void add({ type: 'registered', pe: ref(e), transport: transport(e) });
  const onUpdated = (e: PoolElementEntry): void => void add({ type: 're-registered', pe: ref(e), transport: transport(e) });
  const onRemoved = (e: PoolElementEntry, why: RemoveReason): void => {
    const draft = {
      type: 'removed' as const,
      pe: ref(e),
      reason: (why === 'deregistered' && e.homeRegistrarId !== self ? 'removed-by-home' : why) as RemovedBecause,
    };
    lastRemoval = add(draft) ? { entry: e, draft } : undefined;
  };
  // The registrar removes a PE through the handlespace, then says why: refine the event just added.
  const onRegistrarRemoved = (e: PoolElementEntry, reason: RemovalReason): void => {
    if (lastRemoval?.entry.identifier === e.identifier && lastRemoval.entry.poolKey === e.poolKey) lastRemoval.draft.reason = reason;
  };
  const onTakeover = (from: number, to: number, entries: readonly PoolElementEntry[]): void =>
    void add({ type: 'takeover', from: from >>> 0, to: to >>> 0, count: entries.length });

  hs.events.on('added', onAdded);
  hs.events.on('updated', onUpdated);
  hs.events.on('removed', onRemoved);
  hs.events.on('takeover', onTakeover);
  node.registrar.on('removed', onRegistrarRemoved);
  const enrp = node.enrp;
  const onPeerUp = (p: { id: number; url: string | undefined }): void => void add({ type: 'peer-up', peer: p.id >>> 0, url: p.url });
  const onPeerDown = (p: { id: number }, reason: string): void => void add({ type: 'peer-down', peer: p.id >>> 0, reason });
  const onSynchronised = (): void => void add({ type: 'synchronised' });
  enrp?.events.on('peer-up', onPeerUp);
  enrp?.events.on('peer-down', onPeerDown);
  enrp?.events.on('synchronised', onSynchronised);

  return {
    recent: () => history,
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
    stop() {
      hs.events.off('added', onAdded);
      hs.events.off('updated', onUpdated);
      hs.events.off('removed', onRemoved);
      hs.events.off('takeover', onTakeover);
      node.registrar.off('removed', onRegistrarRemoved);
      enrp?.events.off('peer-up', onPeerUp);
      enrp?.events.off('peer-down', onPeerDown);
      enrp?.events.off('synchronised', onSynchronised);
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      subscribers.clear();
    },
  };
}
