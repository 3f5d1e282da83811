import { unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { createLogger } from '../logger.js';
import { createTftpClient, type FailoverInfo, type TftpClientInit, type TftpGetResult } from '../tftp/client/index.js';
import { ProgressReporter, formatBytes } from './progress.js';
import { CliUsageError, type Command } from './command.js';
import { hex32 } from './format.js';
import { TLS_SPECS, duration, integer, list, parseOptions, rate, str, transportsFromOptions, type OptionSpec, type OptionValues } from './options.js';
import { untilSignal } from './process.js';

const common: Record<string, OptionSpec> = {
  registrar: { type: 'string', multiple: true, help: 'registrar ASAP URL, tried in order', default: 'tcp://127.0.0.1:3863' },
  blksize: { type: 'string', help: 'block size asked of the PE (8-65464)', default: '1468' },
  windowsize: { type: 'string', help: 'RFC 7440 window asked of the PE (1-65535)', default: '16' },
  timeout: { type: 'string', help: 'retransmit after this long without an answer', default: '200ms' },
  'resolve-timeout': {
    type: 'string',
    help: 'a registrar silent this long is passed over for the next (the first try of a resolution: 250 ms or 4 round trips at most)',
    default: '1s',
  },
  'dead-after': {
    type: 'string',
    help: 'a PE silent this long is dead: fail over (alone: a fixed wait; else the limit of the measured one; default 600ms)',
  },
  'min-dead-after': { type: 'string', help: 'the floor of the dead-PE wait, which follows the measured round trip (default 200ms)' },
  json: { type: 'boolean', help: 'print the result as one JSON line at the end (with --no-progress it is the only line)' },
  'no-progress': { type: 'boolean', help: 'no progress bar or progress lines' },
  'progress-interval': { type: 'string', help: 'time between progress lines when the output is not a terminal', default: '1s' },
  ...TLS_SPECS,
};

const getSpecs: Record<string, OptionSpec> = {
  output: { type: 'string', short: 'o', help: "file to write ('-' for stdout; default: the remote file's name)" },
  'cookie-interval': { type: 'string', help: 'blocks between state cookies (0: the PE decides)', default: '0' },
  'restart-on-refusal': { type: 'boolean', help: 'when a PE refuses the cookie, start the download over instead of failing' },
  'limit-rate': { type: 'string', help: 'at most this many bytes a second (k, M, G: x1024, as curl), at least one window (blksize x windowsize)' },
  ...common,
};

const putSpecs: Record<string, OptionSpec> = {
  input: { type: 'string', short: 'i', help: "local file to upload (default: the remote file's name)" },
  'cookie-interval': { type: 'string', help: 'blocks between state cookies, at least a few MiB apart (0: the PE decides)', default: '0' },
  ...common,
};

/** "files:/dir/a.bin" -> handle "files", path "dir/a.bin". */
export function parseRemote(text: string): { handle: string; path: string } {
  const at = text.indexOf(':');
  const handle = at > 0 ? text.slice(0, at) : '';
  const path = at > 0 ? text.slice(at + 1).replace(/^\/+/, '') : '';
  if (!handle || !path) throw new CliUsageError(`expected HANDLE:/PATH (e.g. files:/images/boot.img), not '${text}'`);
  return { handle, path };
}

function clientInit(values: OptionValues): TftpClientInit {
  const timeoutMs = duration('timeout', str(values, 'timeout'))!;
  const deadAfterMs = duration('dead-after', str(values, 'dead-after'));
  const minDeadAfterMs = duration('min-dead-after', str(values, 'min-dead-after'));
  if (timeoutMs < 1) throw new CliUsageError('--timeout must be at least 1ms');
  if (deadAfterMs !== undefined && deadAfterMs < timeoutMs) throw new CliUsageError('--dead-after must not be shorter than --timeout');
  if (minDeadAfterMs !== undefined && (minDeadAfterMs < 1 || minDeadAfterMs > (deadAfterMs ?? Math.max(600, timeoutMs)))) {
    throw new CliUsageError('--min-dead-after must be from 1ms to --dead-after');
  }
  return {
    registrars: list(values, 'registrar'),
    blksize: integer('blksize', str(values, 'blksize'), 8, 65_464)!,
    windowsize: integer('windowsize', str(values, 'windowsize'), 1, 65_535)!,
    timeoutMs,
    ...(deadAfterMs !== undefined ? { deadAfterMs } : {}),
    ...(minDeadAfterMs !== undefined ? { minDeadAfterMs } : {}),
    resolveTimeoutMs: duration('resolve-timeout', str(values, 'resolve-timeout'))!,
  };
}

/**
 * --limit-rate: the client holds its ACK until the rate allows, and a PE
 * waits only so long for one, so a window must take under a second.
 */
export function rateFor(values: OptionValues, init: { blksize?: number; windowsize?: number }): number | undefined {
  const r = rate('limit-rate', str(values, 'limit-rate'));
  const window = (init.blksize ?? 1468) * (init.windowsize ?? 16);
  if (r !== undefined && r < window) throw new CliUsageError(`--limit-rate must be at least one window a second (blksize x windowsize = ${window} bytes)`);
  return r;
}

function peName(id: number | undefined, fallback: string): string {
  return id === undefined ? fallback : hex32(id);
}

export function failoverLine(f: FailoverInfo): string {
  const from = peName(f.from.identifier, `${f.from.host}:${f.from.port}`);
  const to = peName(f.to.identifier, `${f.to.host}:${f.to.port}`);
  return `failover: PE ${from} -> ${to} at block ${f.atBlock}, stall ${Math.round(f.stallMs)} ms${f.cookieEchoed ? '' : ' (no cookie yet: started over)'}`;
}

function servedText(r: TftpGetResult): string {
  return r.servedBy.map((s) => `${peName(s.pe.identifier, `${s.pe.host}:${s.pe.port}`)} blocks ${s.fromBlock}-${s.toBlock}`).join(', ');
}

/** Stops the transfer on SIGINT/SIGTERM. */
function abortOnSignal(): AbortController {
  const ac = new AbortController();
  void untilSignal().then((sig) => ac.abort(new Error(`stopped by ${sig}`)));
  return ac;
}

export const tftpGetCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('tftp get HANDLE:/PATH [-o FILE] [options]', argv, getSpecs);
    if (values.help) return 0;
    if (positionals.length !== 1) throw new CliUsageError('tftp get takes exactly one HANDLE:/PATH');
    const { handle, path } = parseRemote(positionals[0]!);
    const output = str(values, 'output') ?? basename(path);
    const toStdout = output === '-';
    const init: TftpClientInit = {
      ...clientInit(values),
      cookieInterval: integer('cookie-interval', str(values, 'cookie-interval'), 0, 0xffffffff)!,
      restartOnRefusal: values['restart-on-refusal'] === true,
    };
    const limitRate = rateFor(values, init);
    const registrars = init.registrars ?? [];
    const say = toStdout ? process.stderr : process.stdout;
    const json = values.json === true;
    const showProgress = values['no-progress'] !== true;
    const lineEveryMs = duration('progress-interval', str(values, 'progress-interval'))!;
    const progress = new ProgressReporter(say, { label: basename(path), lineEveryMs });
    const client = createTftpClient(init, { logger: createLogger('tftp-client'), transports: transportsFromOptions(values, registrars, 'client') });
    const ac = abortOnSignal();
    try {
      const r = await client
        .get(handle, path, toStdout ? process.stdout : output, {
          signal: ac.signal,
          ...(limitRate !== undefined ? { limitRate } : {}),
          ...(showProgress ? { onProgress: (p) => progress.update(p), progressIntervalMs: Math.min(250, Math.max(10, lineEveryMs)) } : {}),
          onFailover: (f) => progress.line(failoverLine(f)),
          onRestart: (why) => progress.line(`restart: starting over from the beginning (${why})`),
        })
        .catch(async (err: unknown) => {
          // No half file left behind that looks like the real one.
          if (!toStdout) await unlink(output).catch(() => {});
          throw err;
        });
      progress.end();
      const servedBy = r.servedBy.map((s) => ({
        pe: peName(s.pe.identifier, ''),
        address: `${s.pe.host}:${s.pe.port}`,
        fromBlock: s.fromBlock,
        toBlock: s.toBlock,
      }));
      if (json) {
        progress.line(
          `${JSON.stringify({
            bytes: r.bytes,
            sha256: r.sha256,
            failovers: r.failovers,
            stallMs: Math.round(r.stallMs),
            servedBy,
            mbPerSec: Number(r.mbPerSec.toFixed(2)),
            elapsedMs: Math.round(r.elapsedMs),
            blksize: r.blksize,
            windowsize: r.windowsize,
            restarts: r.restarts,
            gapAcks: r.gapAcks,
            timeouts: r.timeouts,
          })}`,
        );
      } else {
        progress.line(
          `got ${handle}:/${path} -> ${toStdout ? 'stdout' : output}: ${r.bytes} bytes (${formatBytes(r.bytes)}) in ${(r.elapsedMs / 1000).toFixed(2)} s, ` +
            `${r.mbPerSec.toFixed(1)} MB/s, from ${servedText(r) || 'the pool'}; failovers ${r.failovers}, max stall ${Math.round(r.stallMs)} ms` +
            (r.sha256 ? `; sha256 ${r.sha256}` : ''),
        );
      }
      return 0;
    } finally {
      progress.end();
      await client.close();
    }
  },
};

export const tftpPutCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('tftp put [FILE] HANDLE:/PATH [options]', argv, putSpecs);
    if (values.help) return 0;
    if (positionals.length < 1 || positionals.length > 2) throw new CliUsageError('tftp put takes [FILE] HANDLE:/PATH');
    const { handle, path } = parseRemote(positionals[positionals.length - 1]!);
    const input = positionals.length === 2 ? positionals[0]! : (str(values, 'input') ?? basename(path));
    const init: TftpClientInit = { ...clientInit(values), cookieInterval: integer('cookie-interval', str(values, 'cookie-interval'), 0, 0xffffffff)! };
    const json = values.json === true;
    const lineEveryMs = duration('progress-interval', str(values, 'progress-interval'))!;
    const progress = new ProgressReporter(process.stdout, { label: basename(path), lineEveryMs });
    const showProgress = values['no-progress'] !== true;
    const client = createTftpClient(init, { logger: createLogger('tftp-client'), transports: transportsFromOptions(values, init.registrars ?? [], 'client') });
    const ac = abortOnSignal();
    try {
      const r = await client.put(handle, path, input, {
        signal: ac.signal,
        ...(showProgress ? { onProgress: (p) => progress.update(p), progressIntervalMs: Math.min(250, Math.max(10, lineEveryMs)) } : {}),
        onFailover: (f) => progress.line(failoverLine(f)),
        onRestart: (why) => progress.line(`restart: starting over from the beginning (${why})`),
      });
      progress.end();
      const pe = peName(r.pe.identifier, `${r.pe.host}:${r.pe.port}`);
      if (json) {
        progress.line(
          JSON.stringify({
            bytes: r.bytes,
            pe,
            failovers: r.failovers,
            stallMs: Math.round(r.stallMs),
            restarts: r.restarts,
            mbPerSec: Number(r.mbPerSec.toFixed(2)),
            elapsedMs: Math.round(r.elapsedMs),
          }),
        );
      } else {
        progress.line(
          `put ${input} -> ${handle}:/${path}: ${r.bytes} bytes in ${(r.elapsedMs / 1000).toFixed(2)} s, ${r.mbPerSec.toFixed(1)} MB/s, to PE ${pe}; failovers ${r.failovers}, max stall ${Math.round(r.stallMs)} ms`,
        );
      }
      return 0;
    } finally {
      progress.end();
      await client.close();
    }
  },
};
