import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RSerPoolError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { EventFeed, FeedEvent } from './feed.js';
import type { StatusView } from './view.js';

export interface StatusServerInit {
  /** host:port to listen on (port 0 = any free port). Loopback by default: status is not for the world. */
  host?: string;
  port: number;
  /** Called per request for GET /status when no `view` is given; returns a JSON-serialisable snapshot. */
  status?: () => unknown;
  /** A registrar's bounded views: GET /status (summary, paged) and GET /status/pool. */
  view?: StatusView;
  /** GET /events: the live feed as Server-Sent Events. */
  feed?: EventFeed;
  /** GET /: the web page (static files built into dist/web). */
  page?: boolean;
  /** Served as GET /metrics (Prometheus text format) when given. */
  metrics?: { readonly contentType: string; text(): Promise<string> };
  /** Every data endpoint then needs `Authorization: Bearer <token>` (the page's static files do not: they hold no data). */
  token?: string;
  /** Most Server-Sent Events clients at once. Default 32. */
  maxEventClients?: number;
}

export interface StatusServer {
  /** http://host:port of the bound server. */
  readonly url: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A slow event client is dropped once this much is queued for it. */
const MAX_EVENT_BACKLOG = 1 << 20;
const HEARTBEAT_MS = 15_000;

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** dist/web beside dist/lib when installed; dist/web from lib/status when run from source, and from dist-bench/lib/status (benchmarks). */
function loadPage(): Map<string, Buffer> | undefined {
  for (const dir of ['../../web/', '../../dist/web/', '../../../dist/web/']) {
    try {
      const root = fileURLToPath(new URL(dir, import.meta.url));
      return new Map(Object.entries(STATIC).map(([path, { file }]) => [path, readFileSync(root + file)]));
    } catch {
      // not built there
    }
  }
  return undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Loopback-only servers accept only IP literals and localhost as Host: a DNS-rebinding page cannot read them. */
function hostAllowed(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const name = hostHeader.startsWith('[') ? hostHeader.slice(1, hostHeader.indexOf(']')) : hostHeader.replace(/:\d+$/, '');
  return name === 'localhost' || isIP(name) !== 0;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** `t0` is when the request came in: Server-Timing tells the time spent here, JSON included. */
const json = (res: ServerResponse, code: number, body: unknown, t0: number): void => {
  const text = JSON.stringify(body, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
  const dur = (performance.now() - t0).toFixed(2);
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store', 'server-timing': `app;dur=${dur}` }).end(`${text}\n`);
};
const text = (res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void =>
  void res.writeHead(code, { 'content-type': 'text/plain', ...headers }).end(`${body}\n`);

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  return v !== null && /^[0-9]{1,15}$/.test(v) ? Number(v) : undefined;
}

/**
 * Serves GET /status as JSON (what `rserpool status` reads), GET /status/pool
 * (pages of PEs), GET /events (the live feed), GET / (the web page) and
 * GET /metrics for Prometheus, as far as each is given. Read-only: any other
 * method is refused.
 */
export async function startStatusServer(init: StatusServerInit, components: { logger?: Logger } = {}): Promise<StatusServer> {
  const logger = (components.logger ?? silentLogger).child({ component: 'status-http' });
  const host = init.host ?? '127.0.0.1';
  const loopbackOnly = isLoopback(host);
  const token = init.token ? digest(init.token) : undefined;
  const page = init.page ? loadPage() : undefined;
  if (init.page && !page) logger.warn({}, 'the web page is not built (npm run build): GET / answers 503');
  if (!loopbackOnly && !token) logger.warn({ host }, 'HTTP status served beyond loopback without --http-token: anyone who reaches it reads the handlespace');
  const maxEventClients = init.maxEventClients ?? 32;
  const eventClients = new Set<ServerResponse>();

  const authorised = (req: IncomingMessage): boolean => {
    if (!token) return true;
    const h = req.headers.authorization;
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
    return timingSafeEqual(digest(h.slice(7)), token);
  };

  const events = (req: IncomingMessage, res: ServerResponse, feed: EventFeed): void => {
    if (eventClients.size >= maxEventClients) return text(res, 503, 'too many event clients', { 'retry-after': '10' });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const send = (batch: readonly FeedEvent[]): void => {
      if (batch.length === 0) return;
      if (res.writableLength > MAX_EVENT_BACKLOG) {
        logger.info({}, 'slow event client dropped');
        res.destroy();
        return;
      }
      res.write(`event: batch\ndata: ${JSON.stringify(batch)}\n\n`);
    };
    res.write('retry: 2000\n\n');
    send(feed.recent());
    const unsubscribe = feed.subscribe(send);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    eventClients.add(res);
    req.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      eventClients.delete(res);
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const t0 = performance.now();
    if (loopbackOnly && !hostAllowed(req.headers.host)) return text(res, 421, 'unexpected Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'read-only: GET only', { allow: 'GET, HEAD' });
    const url = new URL(req.url ?? '/', 'http://status.invalid');
    const path = url.pathname;
    const asset = page?.get(path);
    if (asset) {
      res
        .writeHead(200, {
          'content-type': STATIC[path]!.type,
          'cache-control': 'no-cache',
          'x-content-type-options': 'nosniff',
          'server-timing': `app;dur=${(performance.now() - t0).toFixed(2)}`,
        })
        .end(asset);
      return;
    }
    if (path === '/' && init.page) return text(res, 503, 'web page not built: npm run build');
    if (path === '/favicon.ico' && init.page) return void res.writeHead(204).end();
    if (!authorised(req)) return text(res, 401, 'bearer token required', { 'www-authenticate': 'Bearer' });
    const metrics = init.metrics;
    if (path === '/metrics' && metrics) {
      metrics.text().then(
        (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
        (err: unknown) => {
          logger.error({ err }, 'metrics failed');
          text(res, 500, 'metrics failed');
        },
      );
      return;
    }
    if (path === '/events' && init.feed) return events(req, res, init.feed);
    const q = url.searchParams;
    try {
      if (path === '/status' || path === '/') {
        if (init.view) {
          const summaryOnly = q.has('summary');
          return json(
            res,
            200,
            init.view.summary({
              poolOffset: intParam(q, 'pool-offset') ?? 0,
              pools: intParam(q, 'pools') ?? (summaryOnly ? 1000 : 100),
              elements: summaryOnly ? 0 : (intParam(q, 'limit') ?? 100),
            }),
            t0,
          );
        }
        if (init.status) return json(res, 200, init.status(), t0);
      }
      if (path === '/status/pool' && init.view) {
        const hex = q.get('hex');
        const name = q.get('handle');
        if (hex !== null && !/^(?:[0-9a-f]{2}){1,1024}$/i.test(hex)) return text(res, 400, 'hex: the handle as hex digits');
        const handle = hex !== null ? Buffer.from(hex, 'hex') : name !== null ? Buffer.from(name, 'latin1') : undefined;
        if (!handle) return text(res, 400, 'handle=TEXT or hex=HEX required');
        const p = init.view.pool(handle, { offset: intParam(q, 'offset') ?? 0, limit: intParam(q, 'limit') ?? 100 });
        return p ? json(res, 200, p, t0) : text(res, 404, 'no such pool');
      }
    } catch (err) {
      logger.error({ err }, 'status snapshot failed');
      return text(res, 500, 'status snapshot failed');
    }
    const known = [init.view || init.status ? 'GET /status' : '', init.view ? '/status/pool' : '', init.feed ? '/events' : '', metrics ? '/metrics' : '']
      .filter(Boolean)
      .join(', ');
    text(res, 404, `not found: ${known}`);
  };

  const server: Server = createServer(handle);
  // A malformed request or a reset socket: drop that connection, not the process.
  server.on('clientError', (err, socket) => {
    logger.debug({ err: err.message }, 'bad status request');
    socket.destroy();
  });
  // Slow or silent clients cannot hold sockets for long (events streams are exempt: they are answered at once).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void =>
      reject(new RSerPoolError('RSP_ERR_STATUS_LISTEN', `cannot serve status on ${host}:${init.port}: ${err.message}`, { cause: err }));
    server.once('error', failed);
    server.listen(init.port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  // Errors after listen (an accept that fails on EMFILE, ...) are logged; the server keeps listening.
  server.on('error', (err) => logger.warn({ err: err.message }, 'status server error'));
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const c of eventClients) c.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { url, close, [Symbol.asyncDispose]: close };
}
