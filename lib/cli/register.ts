import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPoolElement, RegistrationRefusedError, type PoolElement } from '../pool-element/index.js';
import { ErrorCause } from '../../protocols/parameters/types.js';
import { createLogger } from '../logger.js';
import { CliUsageError, type Command } from './command.js';
import { hex32, transportText } from './format.js';
import {
  CONNECTION_LIMIT_SPECS,
  TLS_SPECS,
  connectionLimitOptions,
  duration,
  integer,
  list,
  parseOptions,
  policy,
  str,
  transportsFromOptions,
  userTransport,
  type OptionSpec,
} from './options.js';
import { untilSignal } from './process.js';

const specs: Record<string, OptionSpec> = {
  handle: { type: 'string', help: 'pool handle to register under (required)' },
  transport: { type: 'string', help: 'where PUs reach the server: udp://IP:PORT, tcp://IP:PORT ... (required)' },
  policy: { type: 'string', help: 'member selection policy, e.g. round-robin, weighted-random:5, least-used:0.2', default: 'round-robin' },
  registrar: { type: 'string', multiple: true, help: 'registrar ASAP URL (default: find one by its announces)' },
  identifier: { type: 'string', help: 'PE identifier (random when absent)' },
  life: { type: 'string', help: 'registration life', default: '30s' },
  'asap-listen': { type: 'string', help: 'listen for ASAP here (tcp:// or sctp+udp://IP:PORT, port 0 = any) so a registrar taking over can reach this PE' },
  'takeover-from': {
    type: 'string',
    multiple: true,
    help: "who may become this PE's home over --asap-listen: an address, a CIDR block, or id:NAME (a TLS identity); default loopback only",
  },
  'health-check': { type: 'string', help: "tcp://HOST:PORT (connects) or 'exec:COMMAND' (exit 0 = healthy)" },
  'health-interval': { type: 'string', help: 'time between health checks', default: '5s' },
  'health-timeout': { type: 'string', help: 'a check taking longer fails', default: '2s' },
  'health-failures': { type: 'string', help: 'failed checks in a row that deregister the server', default: '2' },
  ...CONNECTION_LIMIT_SPECS,
  ...TLS_SPECS,
};

type HealthCheck = (signal: AbortSignal) => Promise<boolean>;

/**
 * A sidecar: keeps an existing, unmodified server registered under a pool
 * handle while its health check passes, and deregisters it when it fails or
 * when the sidecar is stopped.
 */
export const registerCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('register --handle H --transport URL [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const handle = str(values, 'handle');
    const transportUrl = str(values, 'transport');
    if (!handle) throw new CliUsageError('--handle is required');
    if (!transportUrl) throw new CliUsageError('--transport is required');
    const registrars = list(values, 'registrar');
    const init = {
      handle,
      policy: policy(str(values, 'policy')!),
      userTransport: userTransport(transportUrl),
      registrars,
      ...(registrars.length === 0 ? {} : { discovery: false as const }),
      registrationLifeMs: duration('life', str(values, 'life'))!,
      startTimeoutMs: 5_000,
      ...optionalId(str(values, 'identifier')),
      ...(str(values, 'asap-listen') ? { asapListen: str(values, 'asap-listen')!, asapListenLimits: connectionLimitOptions(values) } : {}),
      ...(values['takeover-from'] !== undefined ? { takeoverFrom: list(values, 'takeover-from') } : {}),
    };
    const check = healthCheck(str(values, 'health-check'));
    const intervalMs = duration('health-interval', str(values, 'health-interval'))!;
    const timeoutMs = duration('health-timeout', str(values, 'health-timeout'))!;
    const failuresToDrop = integer('health-failures', str(values, 'health-failures'), 1, 1000)!;
    const logger = createLogger('register');
    const asapListen = str(values, 'asap-listen');
    const transports = transportsFromOptions(values, asapListen ? [...registrars, asapListen] : registrars, 'client');
    const say = (line: string): void => void process.stdout.write(`${line}\n`);

    let pe: PoolElement | undefined;
    let refusal: RegistrationRefusedError | undefined;
    const stopping = new AbortController();
    const where = registrars.length > 0 ? registrars.join(', ') : 'announced registrars';
    // Keeps trying until a registrar accepts (a sidecar may start before its registrar) or the sidecar stops.
    const up = async (): Promise<void> => {
      for (let attempt = 0; !stopping.signal.aborted; attempt++) {
        const next = createPoolElement(init, { logger, transports });
        next.on('registrar-changed', (url) => say(`home registrar now ${url}`));
        next.on('error', (err) => logger.warn({ err }, 'pool element trouble'));
        try {
          await next.start({ signal: stopping.signal });
        } catch (err) {
          if (stopping.signal.aborted) return;
          // Not allowed is not "not up yet": retrying cannot help, and a supervisor should see the failure.
          if (err instanceof RegistrationRefusedError && err.errorCause === ErrorCause.RejectionDueToSecurityConsiderations) {
            refusal = err;
            stopping.abort();
            return;
          }
          say(`no registrar accepted the registration yet (${where}): ${(err as Error).message}; still trying`);
          await sleep(Math.min(1000 * 2 ** attempt, 10_000), undefined, { signal: stopping.signal }).catch(() => {});
          continue;
        }
        pe = next;
        say(`registered ${hex32(next.identifier)} under ${handle} for ${transportText(init.userTransport)} at ${next.registrar ?? '?'}`);
        return;
      }
    };
    const down = async (why: string): Promise<void> => {
      const old = pe;
      pe = undefined;
      if (!old) return;
      await old.stop();
      say(`deregistered ${hex32(old.identifier)} (${why})`);
    };

    // The PE's timers do not hold the process open; the sidecar runs until stopped.
    const hold = setInterval(() => {}, 1 << 30);
    const loop = (async () => {
      let failures = 0;
      if (!check || (await check(AbortSignal.timeout(timeoutMs)))) await up();
      else failures = 1;
      while (!stopping.signal.aborted) {
        await sleep(intervalMs, undefined, { signal: stopping.signal }).catch(() => {});
        if (stopping.signal.aborted || !check) continue;
        const ok = await check(AbortSignal.timeout(timeoutMs));
        if (ok) {
          failures = 0;
          if (!pe) {
            say('health check passes again');
            await up().catch((err: unknown) => logger.warn({ err }, 'registration failed'));
          }
        } else if (++failures >= failuresToDrop && pe) {
          await down(`health check failed ${failures} times`);
        }
      }
    })();
    const sig = await Promise.race([untilSignal(), loop.then(() => 'done' as const)]);
    stopping.abort();
    await loop.catch(() => {});
    clearInterval(hold);
    await down(`stopped by ${sig}`);
    if (refusal) {
      process.stderr.write(`rserpool register: ${refusal.code}: ${refusal.message}\n`);
      return 1;
    }
    return 0;
  },
};

function optionalId(text: string | undefined): { identifier?: number } {
  const id = integer('identifier', text, 1, 0xffffffff);
  return id === undefined ? {} : { identifier: id };
}

function healthCheck(text: string | undefined): HealthCheck | undefined {
  if (!text) return undefined;
  if (text.startsWith('exec:')) {
    const command = text.slice(5);
    if (!command.trim()) throw new CliUsageError('--health-check exec: needs a command');
    return (signal) =>
      new Promise((resolve) => {
        const child = spawn('sh', ['-c', command], { stdio: 'ignore', signal });
        child.on('error', () => resolve(false));
        child.on('exit', (code) => resolve(code === 0));
      });
  }
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)$/.exec(text);
  if (!m) throw new CliUsageError(`--health-check takes tcp://HOST:PORT or exec:COMMAND, not '${text}'`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  return (signal) =>
    new Promise((resolve) => {
      const socket = connect({ host, port, signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
}
