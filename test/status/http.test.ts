/** The registrar's HTTP endpoint: bounded summary and pages, bearer token, read-only, the live feed. */
import { request } from 'node:http';
import { EventEmitter } from 'eventemitter3';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createHandlespace } from '../../lib/handlespace/index.js';
import { createRegistrarNode, type RegistrarNode } from '../../lib/registrar/index.js';
import type { RegistrarEvents } from '../../lib/registrar/types.js';
import { createEventFeed, MAX_PER_BATCH, type FeedEvent } from '../../lib/status/feed.js';
import { startStatusServer, type StatusServer } from '../../lib/status/http.js';
import { createStatusView, MAX_ELEMENTS, type PoolPage, type StatusSummary } from '../../lib/status/view.js';
import { PolicyType, type PoolElementParameter } from '../../protocols/parameters/types.js';

const pe = (identifier: number, home = 0x51): PoolElementParameter => ({
  identifier,
  homeRegistrarId: home,
  registrationLife: 60_000,
  userTransport: { protocol: 'udp', port: 7000, addresses: ['127.0.0.1'], transportUse: 0 },
  policy: { type: PolicyType.LeastUsed, load: 0x7fffffff },
});

let node: RegistrarNode | undefined;
let http: StatusServer | undefined;
afterEach(async () => {
  await http?.close();
  await node?.stop();
  node = undefined;
  http = undefined;
});

async function withPes(n: number): Promise<RegistrarNode> {
  node = createRegistrarNode({ asap: ['tcp://127.0.0.1:0'], announce: false, id: 0x51 });
  await node.start();
  // Registered backwards, so order by identifier is the view's doing.
  for (let i = n; i >= 1; i--) node.registrar.handlespace.register('big', pe(i), { ownerId: 0x51 });
  node.registrar.handlespace.register('small', pe(1), { ownerId: 0x51 });
  return node;
}

/** GET with a raw Host header (fetch will not send a foreign one). */
function rawGet(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('status HTTP - bounded views', () => {
  it('/status?summary carries pool sizes and mean load but no PEs; /status/pool pages PEs by identifier', async () => {
    const n = await withPes(2_500);
    http = await startStatusServer({ port: 0, view: createStatusView(n) });
    const res = await fetch(`${http.url}/status?summary`);
    expect(res.headers.get('server-timing')).toMatch(/^app;dur=[0-9.]+$/);
    const s = (await res.json()) as StatusSummary;
    expect(s.poolElements).toBe(2_501);
    expect(s.poolCount).toBe(2);
    expect(s.pools.map((p) => [p.handle, p.size, p.elements])).toEqual([
      ['big', 2_500, undefined],
      ['small', 1, undefined],
    ]);
    expect(s.pools[0]!.load).toBeCloseTo(0.5, 3);
    expect(s.pools[0]!.policy).toBe('least-used');
    expect(s.registrars[0]).toMatchObject({ id: 0x51, state: 'self', owned: 2_501 });

    const page = (await (await fetch(`${http.url}/status/pool?handle=big&offset=1000&limit=3`)).json()) as PoolPage;
    expect(page.size).toBe(2_500);
    expect(page.elements.map((e) => e.identifier)).toEqual([1001, 1002, 1003]);
    const byHex = (await (await fetch(`${http.url}/status/pool?hex=${Buffer.from('big').toString('hex')}&offset=2499`)).json()) as PoolPage;
    expect(byHex.elements.map((e) => e.identifier)).toEqual([2500]);
    expect((await fetch(`${http.url}/status/pool?handle=nope`)).status).toBe(404);
    expect((await fetch(`${http.url}/status/pool?hex=zz`)).status).toBe(400);
  });

  it('no response holds more than MAX_ELEMENTS PEs, whatever is asked', async () => {
    const n = await withPes(MAX_ELEMENTS + 10);
    http = await startStatusServer({ port: 0, view: createStatusView(n) });
    const page = (await (await fetch(`${http.url}/status/pool?handle=big&limit=999999999`)).json()) as PoolPage;
    expect(page.elements).toHaveLength(MAX_ELEMENTS);
    // The default /status keeps the 0.2 shape (pools with elements) but pages each pool.
    const s = (await (await fetch(`${http.url}/status`)).json()) as StatusSummary;
    expect(s.pools[0]!.elements).toHaveLength(100);
    const wide = (await (await fetch(`${http.url}/status?limit=10000&pools=1000`)).json()) as StatusSummary;
    expect(wide.pools.reduce((k, p) => k + p.elements!.length, 0)).toBeLessThanOrEqual(MAX_ELEMENTS);
  });
});

describe('status HTTP - safe by default', () => {
  it('binds to loopback, refuses anything but GET, and a Host header that is not an address (DNS rebinding)', async () => {
    http = await startStatusServer({ port: 0, status: () => ({ ok: true }) });
    expect(http.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    const post = await fetch(`${http.url}/status`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await rawGet(`${http.url}/status`, { host: 'evil.example:80' })).toBe(421);
    expect(await rawGet(`${http.url}/status`, { host: 'localhost:1' })).toBe(200);
  });

  it('with a token, data needs the bearer token; the static page does not', async () => {
    const n = await withPes(1);
    const token = 'a-token-of-enough-length';
    http = await startStatusServer({
      port: 0,
      view: createStatusView(n),
      token,
      page: true,
      metrics: { contentType: 'text/plain', text: async () => 'm 1\n' },
    });
    for (const path of ['/status', '/status/pool?handle=big', '/metrics', '/events']) {
      expect((await fetch(`${http.url}${path}`)).status, path).toBe(401);
      expect((await fetch(`${http.url}${path}`, { headers: { authorization: 'Bearer wrong' } })).status, path).toBe(401);
    }
    const ok = await fetch(`${http.url}/status`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as StatusSummary).poolElements).toBe(2);
    const metrics = await fetch(`${http.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(await metrics.text()).toBe('m 1\n');
    const pageRes = await fetch(`${http.url}/`);
    // Built by npm run build (npm ci runs it); the page itself holds no data.
    expect([200, 503]).toContain(pageRes.status);
  });
});

describe('event feed', () => {
  /** A registrar node as far as the feed uses it. */
  function fakeNode(clock: ManualClock) {
    const hs = createHandlespace({ clock, autoExpire: false });
    const registrar = Object.assign(new EventEmitter<RegistrarEvents>(), { id: 0x51, handlespace: hs });
    return { node: { registrar, enrp: undefined } as unknown as RegistrarNode, hs, registrar };
  }

  it('tells registrations, re-registrations and removals with the registrar’s reason, in batches', () => {
    const clock = new ManualClock();
    const { node: n, hs, registrar } = fakeNode(clock);
    const feed = createEventFeed(n, { batchMs: 100 }, { clock });
    const batches: FeedEvent[][] = [];
    feed.subscribe((b) => batches.push([...b]));
    hs.register('p', pe(1), { ownerId: 0x51 });
    hs.register('p', pe(2, 0x99), { ownerId: 0x99 });
    hs.register('p', pe(1), { ownerId: 0x51 });
    const gone = hs.deregister('p', 1)!;
    registrar.emit('removed', gone, 'keep-alive-timeout');
    hs.deregister('p', 2); // a peer's ENRP update
    expect(batches).toHaveLength(0);
    clock.advance(100);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((e) => [e.type, 'pe' in e ? e.pe.identifier : 0, 'reason' in e ? e.reason : ''])).toEqual([
      ['registered', 1, ''],
      ['registered', 2, ''],
      ['re-registered', 1, ''],
      ['removed', 1, 'keep-alive-timeout'],
      ['removed', 2, 'removed-by-home'],
    ]);
    expect(feed.recent()).toHaveLength(5);
    feed.stop();
  });

  it('a registration storm is counted, not streamed: a batch holds at most MAX_PER_BATCH events', () => {
    const clock = new ManualClock();
    const { node: n, hs } = fakeNode(clock);
    const feed = createEventFeed(n, { batchMs: 100, history: 100 }, { clock });
    const batches: FeedEvent[][] = [];
    feed.subscribe((b) => batches.push([...b]));
    for (let i = 1; i <= 10_000; i++) hs.register('storm', pe(i), { ownerId: 0x51 });
    clock.advance(100);
    const batch = batches[0]!;
    expect(batch).toHaveLength(MAX_PER_BATCH + 1);
    expect(batch.at(-1)).toMatchObject({ type: 'suppressed', counts: { registered: 10_000 - MAX_PER_BATCH } });
    expect(feed.recent().length).toBeLessThanOrEqual(100);
    feed.stop();
  });

  it('GET /events streams the history, then each batch, as Server-Sent Events', async () => {
    const n = await withPes(0);
    const feed = createEventFeed(n, { batchMs: 10 });
    http = await startStatusServer({ port: 0, view: createStatusView(n), feed });
    const ac = new AbortController();
    const res = await fetch(`${http.url}/events`, { signal: ac.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    n.registrar.handlespace.register('live', pe(42), { ownerId: 0x51 });
    let got = '';
    while (!got.includes('"identifier":42')) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    expect(got).toMatch(/event: batch\ndata: \[.*"type":"registered".*"identifier":42/);
    ac.abort();
    feed.stop();
  });
});
