/**
 * The registrar's web page: registrars, pools, a page of the selected pool's
 * PEs, and the live event feed. Preact renders, htm writes the templates,
 * the eventsource package reads the feed (it can send the bearer token,
 * which the browser's own EventSource cannot). The page asks only for
 * summaries and pages: never the whole handlespace.
 */
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { EventSource } from 'eventsource';
import type { FeedEvent } from '../../lib/status/feed.js';
import type { PoolPage, StatusSummary } from '../../lib/status/view.js';

/** A token is passed as #token=... : the fragment never reaches a server or its logs. */
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
const PAGE = 50;
const FEED_MAX = 200;
/** Data is read again at most this often while events arrive. */
const REFRESH_MS = 1000;

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: auth, cache: 'no-store' });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

const hex32 = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const seconds = (ms: number | null): string => (ms === null ? '∞' : `${(ms / 1000).toFixed(1)} s`);

function eventText(e: FeedEvent): string {
  switch (e.type) {
    case 'registered':
      return `registered ${hex32(e.pe.identifier)} in ${e.pe.handle} ${e.transport} (home ${hex32(e.pe.home)})`;
    case 're-registered':
      return `re-registered ${hex32(e.pe.identifier)} in ${e.pe.handle}`;
    case 'removed':
      return `removed ${hex32(e.pe.identifier)} from ${e.pe.handle}: ${e.reason}`;
    case 'peer-up':
      return `peer ${hex32(e.peer)} up${e.url ? ` (${e.url})` : ''}`;
    case 'peer-down':
      return `peer ${hex32(e.peer)} down: ${e.reason}`;
    case 'takeover':
      return `takeover: ${e.count} PEs of ${hex32(e.from)} now homed at ${hex32(e.to)}`;
    case 'synchronised':
      return 'handlespace synchronised';
    case 'suppressed':
      return `… and ${Object.entries(e.counts)
        .map(([t, n]) => `${n} ${t}`)
        .join(', ')} not listed`;
  }
}

/** The policy's values (weight, load, ...) but not its type, which the pool shows. */
function policyValues(policy: object): string {
  const values = Object.entries(policy).filter(([k]) => k !== 'type');
  return values.length === 0 ? '–' : values.map(([k, v]) => `${k} ${String(v)}`).join(', ');
}

function stateClass(state: string): string {
  return state === 'self' || state === 'up' ? 'ok' : state === 'down' || state === 'taking-over' ? 'bad' : 'warn';
}

function App() {
  const [summary, setSummary] = useState<StatusSummary | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [selected, setSelected] = useState<string | undefined>();
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<PoolPage | undefined>();
  const [events, setEvents] = useState<FeedEvent[]>([]);
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    getJson<StatusSummary>('/status?summary').then(
      (s) => {
        setSummary(s);
        setError(undefined);
        const known = s.pools.some((p) => p.hex === selected);
        if (!known) {
          setSelected(s.pools[0]?.hex);
          setOffset(0);
        }
      },
      (err: unknown) => setError(String(err)),
    );
  }, [tick]);

  useEffect(() => {
    if (selected === undefined) return setPage(undefined);
    getJson<PoolPage>(`/status/pool?hex=${selected}&offset=${offset}&limit=${PAGE}`).then(setPage, () => setPage(undefined));
  }, [selected, offset, tick]);

  useEffect(() => {
    let lastSeq = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last = 0;
    const refresh = (): void => {
      if (timer !== undefined) return;
      timer = setTimeout(
        () => {
          timer = undefined;
          last = Date.now();
          setTick((t) => t + 1);
        },
        Math.max(0, REFRESH_MS - (Date.now() - last)),
      );
    };
    const es = new EventSource('/events', { fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, ...auth } }) });
    es.addEventListener('open', () => setLive(true));
    es.addEventListener('error', () => setLive(false));
    es.addEventListener('batch', (ev) => {
      // History comes again after a reconnect: keep what is new.
      const fresh = (JSON.parse(ev.data) as FeedEvent[]).filter((e) => e.seq > lastSeq);
      if (fresh.length === 0) return;
      lastSeq = fresh[fresh.length - 1]!.seq;
      setEvents((old) => [...fresh.reverse(), ...old].slice(0, FEED_MAX));
      refresh();
    });
    return () => {
      es.close();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, []);

  if (!summary) return html`<p class="muted">${error ?? 'Loading…'}</p>`;
  const s = summary;
  return html`
    <header>
      <h1>registrar ${hex32(s.id)}</h1>
      <span class=${`badge ${s.synchronised ? 'ok' : 'warn'}`}>${s.synchronised ? 'synchronised' : 'synchronising'}</span>
      <span>${s.poolElements} PEs (${s.owned} homed here) in ${s.poolCount} pools</span>
      <span>${s.connections} ASAP connections</span>
      <span class=${`badge ${live ? 'ok' : 'bad'}`} id="live">${live ? 'live' : 'reconnecting'}</span>
      ${error ? html`<span class="badge bad">${error}</span>` : null}
    </header>
    <div class="side">
      <section>
        <h2>Registrars</h2>
        <table id="registrars">
          <thead>
            <tr>
              <th>id</th>
              <th>URL</th>
              <th>state</th>
              <th>PEs owned</th>
              <th>last heard</th>
            </tr>
          </thead>
          <tbody>
            ${s.registrars.map(
              (r) =>
                html`<tr data-registrar=${hex32(r.id)}>
                  <td>${hex32(r.id)}</td>
                  <td>${r.url ?? ''}</td>
                  <td><span class=${`badge ${stateClass(r.state)}`}>${r.state}</span></td>
                  <td>${r.owned}</td>
                  <td>${r.lastHeardMsAgo === null ? 'never' : r.state === 'self' ? '' : `${seconds(r.lastHeardMsAgo)} ago`}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      <section>
        <h2>Pools</h2>
        <table id="pools">
          <thead>
            <tr>
              <th>handle</th>
              <th>policy</th>
              <th>PEs</th>
              <th>load</th>
            </tr>
          </thead>
          <tbody>
            ${s.pools.map(
              (p) =>
                html`<tr
                  class=${`clickable${p.hex === selected ? ' selected' : ''}`}
                  data-pool=${p.handle}
                  onClick=${() => {
                    setSelected(p.hex);
                    setOffset(0);
                  }}
                >
                  <td>${p.handle}</td>
                  <td>${p.policy}</td>
                  <td>${p.size}</td>
                  <td>${p.load === null ? '' : `${(p.load * 100).toFixed(0)} %`}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${s.poolCount > s.pools.length ? html`<p class="muted">${s.poolCount - s.pools.length} more pools not shown</p>` : null}
      </section>
      <section>
        <h2>Pool elements${page ? ` of ${page.handle} (${page.size})` : ''}</h2>
        ${
          page
            ? html`<table id="pes">
                  <thead>
                    <tr>
                      <th>identifier</th>
                      <th>user transport</th>
                      <th>policy</th>
                      <th>home</th>
                      <th>expires in</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${page.elements.map(
                      (e) =>
                        html`<tr data-pe=${hex32(e.identifier)}>
                          <td>${hex32(e.identifier)}</td>
                          <td>${e.userTransport.protocol}://${e.userTransport.addresses.join(',')}:${e.userTransport.port}</td>
                          <td>${policyValues(e.policy)}</td>
                          <td>${hex32(e.homeRegistrarId)}</td>
                          <td>${seconds(e.expiresInMs)}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
                <p class="pager">
                  <button disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>previous</button>
                  <button disabled=${offset + PAGE >= page.size} onClick=${() => setOffset(offset + PAGE)}>next</button>
                  <span class="muted">${page.size === 0 ? 'empty' : `${offset + 1}–${Math.min(offset + PAGE, page.size)} of ${page.size}`}</span>
                </p>`
            : html`<p class="muted">no pool</p>`
        }
      </section>
    </div>
    <section>
      <h2>Events</h2>
      <ul class="feed" id="feed">
        ${events.map(
          (e) =>
            html`<li key=${e.seq} class=${e.type} data-type=${e.type}><span class="muted">${new Date(e.at).toLocaleTimeString()}</span> ${eventText(e)}</li>`,
        )}
      </ul>
    </section>
  `;
}

render(html`<${App} />`, document.getElementById('app')!);
