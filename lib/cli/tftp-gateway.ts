import { createLogger } from '../logger.js';
import { createTftpGateway } from '../tftp/gateway/index.js';
import { CliUsageError, type Command } from './command.js';
import { TLS_SPECS, duration, hostPort, integer, list, parseOptions, str, transportsFromOptions, type OptionSpec } from './options.js';
import { untilSignal } from './process.js';
import { hex32 } from './format.js';
import { failoverLine, rateFor } from './tftp-get.js';
import { HTTP_TOKEN_SPECS, httpToken, startHttp } from './http.js';

const specs: Record<string, OptionSpec> = {
  listen: { type: 'string', help: 'HOST:PORT the plain TFTP clients send to', default: '127.0.0.1:6969' },
  handle: { type: 'string', help: 'pool handle of the TFTP pool', default: 'files' },
  registrar: { type: 'string', multiple: true, help: 'registrar ASAP URL, tried in order', default: 'tcp://127.0.0.1:3863' },
  blksize: { type: 'string', help: "block size asked of the PEs (the client's when larger)", default: '1468' },
  windowsize: { type: 'string', help: 'RFC 7440 window asked of the PEs', default: '16' },
  timeout: { type: 'string', help: 'retransmit to a PE after this long without an answer', default: '200ms' },
  'dead-after': {
    type: 'string',
    help: 'a PE silent this long is dead: fail over (alone: a fixed wait; else the limit of the measured one; default 600ms)',
  },
  'min-dead-after': { type: 'string', help: 'the floor of the dead-PE wait, which follows the measured round trip (default 200ms)' },
  'client-timeout': { type: 'string', help: 'retransmit to a client that negotiated no timeout', default: '1s' },
  'max-transfers': { type: 'string', help: 'concurrent transfers; more are refused', default: '1000' },
  'limit-rate': {
    type: 'string',
    help: 'bytes a second each transfer reads from the pool, and so sends its client (k, M, G: x1024), at least one upstream window',
  },
  'buffer-bytes': { type: 'string', help: 'bytes a transfer reads ahead of its client', default: '16777216' },
  'total-buffer-bytes': { type: 'string', help: 'bytes all transfers together read ahead of their clients', default: '268435456' },
  handshake: { type: 'string', help: 'a client must answer the first packet within this long (nothing is resent before it does)', default: '3s' },
  'max-per-source': { type: 'string', help: 'transfers from one address still in their handshake; more are dropped', default: '8' },
  quiet: { type: 'boolean', help: 'no line per transfer' },
  'progress-interval': { type: 'string', help: 'print a progress line per active transfer this often (off when absent)' },
  http: { type: 'string', help: "/metrics and /status (this process's transfers) on HOST:PORT ('off': none)", default: 'off' },
  ...HTTP_TOKEN_SPECS,
  ...TLS_SPECS,
};

/** `rserpool tftp gateway`: a TFTP front for unmodified clients, failing over between PEs inside. */
export const tftpGatewayCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('tftp gateway [--listen HOST:PORT] [--handle H] [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const listen = hostPort('listen', str(values, 'listen')!);
    const handle = str(values, 'handle')!;
    const registrars = list(values, 'registrar');
    const timeoutMs = duration('timeout', str(values, 'timeout'))!;
    const deadAfterMs = duration('dead-after', str(values, 'dead-after'));
    const minDeadAfterMs = duration('min-dead-after', str(values, 'min-dead-after'));
    if (timeoutMs < 1) throw new CliUsageError('--timeout must be at least 1ms');
    if (deadAfterMs !== undefined && deadAfterMs < timeoutMs) throw new CliUsageError('--dead-after must not be shorter than --timeout');
    if (minDeadAfterMs !== undefined && (minDeadAfterMs < 1 || minDeadAfterMs > (deadAfterMs ?? Math.max(600, timeoutMs)))) {
      throw new CliUsageError('--min-dead-after must be from 1ms to --dead-after');
    }
    httpToken(values);
    const blksize = integer('blksize', str(values, 'blksize'), 8, 65_464)!;
    const windowsize = integer('windowsize', str(values, 'windowsize'), 1, 65_535)!;
    const limitRate = rateFor(values, { blksize, windowsize });
    const logger = createLogger('tftp-gateway');
    const gateway = createTftpGateway(
      {
        listen,
        handle,
        registrars,
        blksize,
        windowsize,
        ...(limitRate !== undefined ? { limitRate } : {}),
        timeoutMs,
        ...(deadAfterMs !== undefined ? { deadAfterMs } : {}),
        ...(minDeadAfterMs !== undefined ? { minDeadAfterMs } : {}),
        retransmitMs: duration('client-timeout', str(values, 'client-timeout'))!,
        maxTransfers: integer('max-transfers', str(values, 'max-transfers'), 1, 1_000_000)!,
        bufferBytes: integer('buffer-bytes', str(values, 'buffer-bytes'), 65_536, 2 ** 32)!,
        totalBufferBytes: integer('total-buffer-bytes', str(values, 'total-buffer-bytes'), 65_536, 2 ** 40)!,
        handshakeMs: Math.max(1, duration('handshake', str(values, 'handshake'))!),
        maxHandshakesPerSource: integer('max-per-source', str(values, 'max-per-source'), 1, 1_000_000)!,
      },
      { logger, transports: transportsFromOptions(values, registrars, 'client') },
    );
    const say = (line: string): void => void process.stdout.write(`${line}\n`);
    const quiet = values.quiet === true;
    gateway.on('failover', (f) => say(`${failoverLine(f)} (transfer ${f.id}, ${f.path} for ${f.client.address}:${f.client.port})`));
    if (!quiet) {
      gateway.on('transfer-start', (t) => say(`transfer ${t.id}: ${t.path} for ${t.client.address}:${t.client.port}`));
      gateway.on('transfer-end', (t) =>
        say(
          t.ok
            ? `transfer ${t.id} done: ${t.path}, ${t.bytes} bytes, failovers ${t.failovers}, max stall ${Math.round(t.stallMs)} ms`
            : `transfer ${t.id} failed: ${t.path}: ${t.error?.message ?? 'unknown error'}`,
        ),
      );
    }
    const progressMs = duration('progress-interval', str(values, 'progress-interval'));
    if (progressMs !== undefined && progressMs < 10) throw new CliUsageError('--progress-interval must be at least 10ms');
    await gateway.start();
    const metrics = str(values, 'http') !== 'off' ? (await import('../metrics.js')).createTftpGatewayMetrics(gateway, { labels: { handle } }) : undefined;
    const http = await startHttp(
      values,
      { status: () => ({ handle, transfers: gateway.transfers().slice(0, 1000) }), ...(metrics ? { metrics } : {}) },
      logger,
    );
    if (http) say(`http ${http.url}/metrics`);
    const progress =
      progressMs === undefined
        ? undefined
        : setInterval(() => {
            for (const t of gateway.transfers()) {
              const pe = t.pe ? (t.pe.identifier !== undefined ? `PE ${hex32(t.pe.identifier)}` : `${t.pe.host}:${t.pe.port}`) : 'failing over';
              say(`transfer ${t.id}: ${t.delivered} of ${t.total ?? '?'} bytes delivered, ${t.received} received from ${pe}`);
            }
          }, progressMs);
    const a = gateway.address;
    say(`gateway listening on ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port} for ${handle}`);
    const sig = await untilSignal();
    say(`stopping (${sig})`);
    if (progress) clearInterval(progress);
    await http?.close();
    metrics?.close();
    await gateway.close();
    return 0;
  },
};
