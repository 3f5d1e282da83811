import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RSerPoolError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';

export interface StatusServerInit {
  /** host:port to listen on (port 0 = any free port). Loopback by default: status is not for the world. */
  host?: string;
  port: number;
  /** Called per request; returns a JSON-serialisable snapshot. */
  status: () => unknown;
  /** Served as GET /metrics (Prometheus text format) when given. */
  metrics?: { readonly contentType: string; text(): Promise<string> };
}

export interface StatusServer {
  /** http://host:port of the bound server. */
  readonly url: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Serves GET /status as JSON (what `rserpool status` reads) and, when given, GET /metrics for Prometheus. */
export async function startStatusServer(init: StatusServerInit, components: { logger?: Logger } = {}): Promise<StatusServer> {
  const logger = (components.logger ?? silentLogger).child({ component: 'status-http' });
  const server: Server = createServer((req, res) => {
    const metrics = init.metrics;
    if (req.method === 'GET' && req.url === '/metrics' && metrics) {
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (err: unknown) => {
          logger.error({ err }, 'metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n');
        },
      );
      return;
    }
    if (req.method !== 'GET' || (req.url !== '/status' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: GET /status${metrics ? ' or /metrics' : ''}\n`);
      return;
    }
    try {
      const body = JSON.stringify(init.status(), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
    } catch (err) {
      logger.error({ err }, 'status snapshot failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end('status snapshot failed\n');
    }
  });
  const host = init.host ?? '127.0.0.1';
  // A malformed request or a reset socket: drop that connection, not the process.
  server.on('clientError', (err, socket) => {
    logger.debug({ err: err.message }, 'bad status request');
    socket.destroy();
  });
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
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { url, close, [Symbol.asyncDispose]: close };
}
