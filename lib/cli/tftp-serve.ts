import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { createTftpPoolElement } from '../tftp/server/index.js';
import { DEFAULT_TFTP_PORT } from '../tftp/contract.js';
import { createLogger } from '../logger.js';
import { CliUsageError, type Command } from './command.js';
import { loadCookieSecret } from './cookie-secret.js';
import { TLS_SPECS, duration, integer, list, parseOptions, str, transportsFromOptions, type OptionSpec } from './options.js';
import { hex32, untilSignal } from './process.js';
import { HTTP_TOKEN_SPECS, httpToken, startHttp } from './http.js';

const specs: Record<string, OptionSpec> = {
  root: { type: 'string', help: 'directory to serve (required)' },
  handle: { type: 'string', help: 'pool handle to register under', default: 'files' },
  registrar: { type: 'string', multiple: true, help: 'registrar ASAP URL', default: 'tcp://127.0.0.1:3863' },
  host: { type: 'string', help: 'address to serve TFTP on', default: '127.0.0.1' },
  port: { type: 'string', help: 'UDP port (0: any free one)', default: String(DEFAULT_TFTP_PORT) },
  advertise: { type: 'string', help: 'address registered for clients (default --host; 0.0.0.0 lets the registrar fill in)' },
  'cookie-secret-file': { type: 'string', help: "file holding the pool's cookie secret (>= 16 bytes, e.g. openssl rand -hex 32), the same on every PE" },
  secret: {
    type: 'string',
    help: 'the cookie secret itself (>= 16 bytes; visible in ps: prefer the file or RSERPOOL_COOKIE_SECRET). None: a random one, cookies resume only at this PE',
  },
  'cookie-lifetime': { type: 'string', help: 'how long a state cookie is taken after it is issued', default: '10m' },
  writable: { type: 'boolean', help: 'take uploads (WRQ)' },
  overwrite: { type: 'boolean', help: 'let an upload replace an existing file' },
  'cookie-interval': { type: 'string', help: 'blocks between state cookies when the client leaves it to the PE', default: '256' },
  identifier: { type: 'string', help: 'PE identifier (random when absent)' },
  'max-transfers': { type: 'string', help: 'concurrent transfers; the load reported is active / this', default: '1000' },
  'max-window': { type: 'string', help: 'largest RFC 7440 windowsize granted', default: '64' },
  retransmit: { type: 'string', help: 'longest wait for an ACK before resending (a timeout the client negotiates replaces it)', default: '1s' },
  'min-retransmit': { type: 'string', help: 'shortest such wait; in between it follows the measured round trip', default: '5ms' },
  'max-retries': { type: 'string', help: 'a transfer without progress for (this + 1) x --retransmit is dropped', default: '5' },
  handshake: { type: 'string', help: 'a client must answer the first packet within this long (nothing is resent before it does)', default: '3s' },
  'require-options': { type: 'boolean', help: 'refuse read requests without options (no 516-byte answer to a 16-byte spoofed RRQ)' },
  'max-per-source': { type: 'string', help: 'transfers from one address still in their handshake; more are dropped', default: '8' },
  'read-ahead': {
    type: 'string',
    help: 'MiB of file contents all transfers together may read ahead of their clients (shared out among --workers)',
    default: '256',
  },
  'cache-size': { type: 'string', help: 'MiB of file contents held in memory (shared out among --workers: each thread caches its own)', default: '256' },
  workers: { type: 'string', help: 'threads that run the transfers (default: the core count); 0: all in the main thread' },
  life: { type: 'string', help: 'registration life', default: '30s' },
  'asap-listen': {
    type: 'string',
    help: "listen for ASAP here (tcp://IP:PORT, port 0 = any): registrars taking this PE over, and rserpool drain asking it to leave; default tcp://HOST:0 with tcp:// registrars, 'off': none",
  },
  'drain-from': {
    type: 'string',
    multiple: true,
    help: 'who may ask this PE to leave over --asap-listen: an address, a CIDR block, or id:NAME (a TLS identity); default loopback only',
  },
  'takeover-from': {
    type: 'string',
    multiple: true,
    help: "who may become this PE's home over --asap-listen (a registrar taking it over): an address, a CIDR block, or id:NAME; default loopback only",
  },
  drain: { type: 'string', help: 'on SIGTERM/SIGINT clients with cookies are sent to other PEs at once; the others get this long to finish', default: '0s' },
  http: { type: 'string', help: "/metrics and /status (this process's transfers) on HOST:PORT ('off': none)", default: 'off' },
  ...HTTP_TOKEN_SPECS,
  ...TLS_SPECS,
};

/**
 * Like an RSPLIB PE's ASAP endpoint, a listener by default: a registrar that
 * takes this PE over (its home frozen or dead) re-homes and supervises it at
 * once, instead of leaving it to find out at its next re-registration.
 * TLS registrars would need a TLS listener: only when asked for then.
 */
function asapListenUrl(given: string | undefined, host: string, registrars: string[]): string | undefined {
  if (given === 'off') return undefined;
  if (given !== undefined) return given;
  if (isIP(host) === 0 || registrars.length === 0 || !registrars.every((u) => u.startsWith('tcp://'))) return undefined;
  return `tcp://${isIP(host) === 6 ? `[${host}]` : host}:0`;
}

/** `rserpool tftp serve`: a TFTP pool element. */
export const tftpServeCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('tftp serve --root DIR [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const root = str(values, 'root');
    if (!root) throw new CliUsageError('--root is required');
    const handle = str(values, 'handle')!;
    const registrars = list(values, 'registrar');
    const host = str(values, 'host')!;
    const cookies = await loadCookieSecret({ secret: str(values, 'secret'), file: str(values, 'cookie-secret-file'), env: process.env.RSERPOOL_COOKIE_SECRET });
    const cookieLifetimeMs = duration('cookie-lifetime', str(values, 'cookie-lifetime'))!;
    if (cookieLifetimeMs < 1000) throw new CliUsageError('--cookie-lifetime must be at least 1s');
    const advertise = str(values, 'advertise');
    const identifier = integer('identifier', str(values, 'identifier'), 1, 0xffffffff);
    const asapListen = asapListenUrl(str(values, 'asap-listen'), host, registrars);
    const logger = createLogger('tftp-serve');
    if (cookies.warning) logger.warn({}, cookies.warning);
    const pe = createTftpPoolElement(
      {
        root,
        handle,
        registrars,
        ...(registrars.length > 0 ? { discovery: false as const } : {}),
        host,
        port: integer('port', str(values, 'port'), 0, 65535)!,
        ...(advertise ? { advertiseHost: advertise } : {}),
        ...(cookies.secret ? { secret: cookies.secret } : {}),
        cookieLifetimeMs,
        writable: values.writable === true,
        overwrite: values.overwrite === true,
        cookieInterval: integer('cookie-interval', str(values, 'cookie-interval'), 1, 1_000_000_000)!,
        ...(identifier !== undefined ? { identifier } : {}),
        maxTransfers: integer('max-transfers', str(values, 'max-transfers'), 1, 1_000_000)!,
        maxWindowSize: integer('max-window', str(values, 'max-window'), 1, 65535)!,
        retransmitMs: Math.max(1, duration('retransmit', str(values, 'retransmit'))!),
        minRetransmitMs: duration('min-retransmit', str(values, 'min-retransmit'))!,
        maxRetries: integer('max-retries', str(values, 'max-retries'), 0, 1000)!,
        handshakeMs: Math.max(1, duration('handshake', str(values, 'handshake'))!),
        maxHandshakesPerSource: integer('max-per-source', str(values, 'max-per-source'), 1, 1_000_000)!,
        requireOptions: values['require-options'] === true,
        readAheadBytes: integer('read-ahead', str(values, 'read-ahead'), 0, 1 << 20)! * 2 ** 20,
        cacheBytes: integer('cache-size', str(values, 'cache-size'), 0, 1 << 20)! * 2 ** 20,
        workers: integer('workers', str(values, 'workers'), 0, 1024) ?? availableParallelism(),
        registrationLifeMs: duration('life', str(values, 'life'))!,
        ...(asapListen ? { asapListen } : {}),
        ...(values['drain-from'] !== undefined ? { leaveRequestsFrom: list(values, 'drain-from') } : {}),
        ...(values['takeover-from'] !== undefined ? { takeoverFrom: list(values, 'takeover-from') } : {}),
      },
      { logger, transports: transportsFromOptions(values, asapListen ? [...registrars, asapListen] : registrars, 'client') },
    );
    pe.on('error', (err) => logger.warn({ err: err.message }, 'pool element trouble'));
    httpToken(values);
    const metrics = str(values, 'http') !== 'off' ? (await import('../metrics.js')).createTftpServerMetrics(pe.server, { labels: { handle } }) : undefined;
    // SIGTERM/SIGINT, or an allowed peer asking the PE to leave (rserpool drain): the same way out.
    const stopping = new Promise<string>((resolve) => {
      void untilSignal().then(resolve);
      pe.on('leave-requested', (from) => resolve(`drain request from ${from}`));
    });
    const started = pe.start().then(() => 'started' as const);
    // A signal during registration stops it; a failed start is reported through the race.
    started.catch(() => {});
    let http: Awaited<ReturnType<typeof startHttp>>;
    const first = await Promise.race([started, stopping]);
    if (first === 'started') {
      const a = pe.address;
      process.stdout.write(`serving ${root} on ${a.address}:${a.port} as PE ${hex32(pe.identifier)} under ${handle}\n`);
      const status = () => ({ identifier: pe.identifier >>> 0, handle, activeTransfers: pe.activeTransfers, workers: pe.server.workers });
      http = await startHttp(values, { status, ...(metrics ? { metrics } : {}) }, logger);
      if (http) process.stdout.write(`http ${http.url}/metrics\n`);
    }
    const sig = first === 'started' ? await stopping : first;
    logger.info({ signal: sig }, 'stopping');
    await http?.close();
    metrics?.close();
    await pe.stop({ drainMs: duration('drain', str(values, 'drain'))! });
    process.stdout.write(`stopped PE ${hex32(pe.identifier)} (${sig})\n`);
    return 0;
  },
};
