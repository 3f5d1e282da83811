import { createPoolUser } from '../pool-user/index.js';
import { createLogger } from '../logger.js';
import { CliUsageError, type Command } from './command.js';
import { hex32, policyText, transportText } from './format.js';
import { TLS_SPECS, duration, integer, list, parseOptions, str, transportsFromOptions, type OptionSpec } from './options.js';

const specs: Record<string, OptionSpec> = {
  registrar: {
    type: 'string',
    multiple: true,
    help: 'registrar ASAP URL (tcp://, tls://, sctp+udp://, sctp://), tried in order',
    default: 'tcp://127.0.0.1:3863',
  },
  items: { type: 'string', help: 'PEs to ask for (1-128)', default: '3' },
  timeout: { type: 'string', help: 'give up after', default: '5s' },
  json: { type: 'boolean', help: 'print JSON' },
  ...TLS_SPECS,
};

export const resolveCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('resolve HANDLE [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length !== 1) throw new CliUsageError('resolve takes exactly one pool handle');
    const handle = positionals[0]!;
    const registrars = list(values, 'registrar');
    const items = integer('items', str(values, 'items'), 1, 128)!;
    const timeoutMs = duration('timeout', str(values, 'timeout'))!;
    const pu = createPoolUser(
      { registrars, discovery: false, cacheTtlMs: 0, items, requestTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs },
      { logger: createLogger('pool-user'), transports: transportsFromOptions(values, registrars, 'client') },
    );
    try {
      const pes = await pu.resolve(handle, { signal: AbortSignal.timeout(timeoutMs) });
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ handle, registrar: pu.registrar, elements: pes })}\n`);
      } else {
        for (const pe of pes) {
          process.stdout.write(`${hex32(pe.identifier)}  ${transportText(pe.userTransport)}  ${policyText(pe.policy)}  home ${hex32(pe.homeRegistrarId)}\n`);
        }
      }
      return 0;
    } finally {
      await pu.close();
    }
  },
};
