import { createRegistrar } from '../registrar/index.js';
import { createLogger } from '../logger.js';
import { startStatusServer } from '../status/http.js';
import { CliUsageError, type Command } from './command.js';
import { TLS_SPECS, duration, hostPort, integer, list, parseOptions, str, transportsFromOptions, type OptionSpec } from './options.js';
import { hex32, untilSignal } from './process.js';
import { transportText } from './format.js';
import type { PoolElementEntry } from '../handlespace/index.js';
import { poolHandleToString } from '../../protocols/parameters/index.js';

const specs: Record<string, OptionSpec> = {
  asap: { type: 'string', multiple: true, help: 'ASAP listen URL', default: 'tcp://127.0.0.1:3863' },
  id: { type: 'string', help: 'registrar id, 32-bit (decimal or 0x hex); random when absent' },
  http: { type: 'string', help: "status endpoint host:port ('off' to disable)", default: '127.0.0.1:3864' },
  announce: { type: 'string', help: "announce group:port on loopback ('off' to disable)", default: '239.0.0.50:3863' },
  'announce-interface': { type: 'string', help: 'interface address announces go out on', default: '127.0.0.1' },
  'keep-alive-interval': { type: 'string', help: 'endpoint keep-alive period', default: '5s' },
  'keep-alive-timeout': { type: 'string', help: 'keep-alive answer deadline', default: '5s' },
  'unreachable-threshold': { type: 'string', help: 'PU reports that remove a PE', default: '3' },
  'max-registration-life': { type: 'string', help: 'registration life is clamped to this', default: '1h' },
  'print-events': { type: 'boolean', help: 'print a line per PE registered, deregistered or removed' },
  ...TLS_SPECS,
};

export const registrarCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('registrar [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const asap = list(values, 'asap');
    const id = integer('id', str(values, 'id'), 1, 0xffffffff);
    const announce = announceOption(str(values, 'announce'), str(values, 'announce-interface')!);
    const logger = createLogger('registrar');
    const transports = transportsFromOptions(values, asap, 'server');
    const registrar = createRegistrar(
      {
        asap,
        ...(id !== undefined ? { id } : {}),
        announce,
        keepAliveIntervalMs: duration('keep-alive-interval', str(values, 'keep-alive-interval'))!,
        keepAliveTimeoutMs: duration('keep-alive-timeout', str(values, 'keep-alive-timeout'))!,
        unreachableThreshold: integer('unreachable-threshold', str(values, 'unreachable-threshold'), 1, 1_000_000)!,
        maxRegistrationLifeMs: duration('max-registration-life', str(values, 'max-registration-life'))!,
      },
      { logger, transports },
    );
    if (values['print-events']) {
      const say = (line: string): void => void process.stdout.write(`${line}\n`);
      const name = (e: PoolElementEntry): string => `${hex32(e.identifier)} ${poolHandleToString(e.handle) ?? Buffer.from(e.handle).toString('hex')}`;
      registrar.on('registered', (e, created) => say(`pe-${created ? 'registered' : 'reregistered'} ${name(e)} ${transportText(e.userTransport)}`));
      registrar.on('deregistered', (e) => say(`pe-deregistered ${name(e)}`));
      registrar.on('removed', (e, reason) => say(`pe-removed ${name(e)} ${reason}`));
    }
    await registrar.start();
    const http = str(values, 'http');
    const status = http && http !== 'off' ? await startStatusServer({ ...hostPort('http', http), status: () => registrar.status() }, { logger }) : undefined;
    process.stdout.write(
      `registrar ${hex32(registrar.id)} asap ${registrar.addresses.map((a) => a.href).join(' ')}${status ? ` status ${status.url}/status` : ''}\n`,
    );
    const sig = await untilSignal();
    logger.info({ signal: sig }, 'stopping');
    await status?.close();
    await registrar.stop();
    return 0;
  },
};

function announceOption(text: string | undefined, iface: string): { group: string; port: number; interface: string; ttl: number } | false {
  if (!text || text === 'off') return false;
  const { host, port } = hostPort('announce', text);
  return { group: host, port, interface: iface, ttl: 1 };
}

