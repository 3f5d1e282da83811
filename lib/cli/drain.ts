/**
 * `rserpool drain`: asks PEs of a pool to leave it, gently — each
 * deregisters, sends its clients on to the other PEs and exits (a TFTP PE as
 * on SIGTERM). ASAP has no "please leave" message: the request is an
 * ASAP_DEREGISTRATION naming the PE, sent to the ASAP listener it registered
 * (`--asap-listen`); the PE answers with an ASAP_DEREGISTRATION_RESPONSE once
 * it has deregistered, or with an error cause (security, unknown PE). A PE
 * takes such requests only from the addresses or TLS identities it allows
 * (`--drain-from`, loopback by default).
 */
import { AsapMessageType, type AsapDeregistrationResponse } from '../../protocols/asap/types.js';
import { ErrorCause, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { AsapChannel, handleBytes, sameBytes } from '../asap-client/channel.js';
import { systemClock } from '../clock.js';
import { createLogger } from '../logger.js';
import { createPoolUser } from '../pool-user/index.js';
import { CliUsageError, type Command } from './command.js';
import { hex32 } from './format.js';
import { TLS_SPECS, duration, integer, list, parseOptions, str, transportsFromOptions, type OptionSpec } from './options.js';

const specs: Record<string, OptionSpec> = {
  handle: { type: 'string', help: 'pool handle whose PEs are to leave (required)' },
  pe: { type: 'string', multiple: true, help: 'only this PE identifier (0x... or decimal; repeatable); default every PE of the pool' },
  registrar: { type: 'string', multiple: true, help: 'registrar ASAP URL to resolve the pool with, tried in order', default: 'tcp://127.0.0.1:3863' },
  scheme: { type: 'string', help: "how to reach a PE's ASAP listener registered as tcp (tcp or tls); sctp ones use sctp+udp", default: 'tcp' },
  timeout: { type: 'string', help: 'wait this long for each PE to answer', default: '5s' },
  json: { type: 'boolean', help: 'print one JSON line per PE' },
  ...TLS_SPECS,
};

/** PEs asked for in the resolution: the whole pool, as far as one answer goes. */
const MAX_ITEMS = 1_000;

interface Outcome {
  pe: string;
  left: boolean;
  why?: string;
}

const CAUSE_TEXT: Record<number, string> = {
  [ErrorCause.RejectionDueToSecurityConsiderations]: 'refused: this host may not ask it to leave (see tftp serve --drain-from)',
  [ErrorCause.UnknownPoolHandle]: 'refused: no such PE there',
  [ErrorCause.UnrecognizedMessage]: 'refused: the PE does not take leave requests',
};

export const drainCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('drain --handle H [--pe ID] [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const handle = str(values, 'handle');
    if (!handle) throw new CliUsageError('--handle is required');
    const only = list(values, 'pe').map((p) => integer('pe', p.startsWith('0x') ? String(parseInt(p, 16)) : p, 1, 0xffffffff)!);
    const scheme = str(values, 'scheme')!;
    if (scheme !== 'tcp' && scheme !== 'tls') throw new CliUsageError('--scheme must be tcp or tls');
    const timeoutMs = duration('timeout', str(values, 'timeout'))!;
    const registrars = list(values, 'registrar');
    const logger = createLogger('drain');
    const transports = transportsFromOptions(values, scheme === 'tls' ? [...registrars, 'tls://asap-listener:0'] : registrars, 'client');
    const pu = createPoolUser(
      { registrars, discovery: false, cacheTtlMs: 0, items: MAX_ITEMS, requestTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs },
      { logger, transports },
    );
    let pes: PoolElementParameter[];
    try {
      pes = await pu.resolve(handle, { signal: AbortSignal.timeout(timeoutMs) });
    } finally {
      await pu.close();
    }
    const chosen = only.length > 0 ? pes.filter((p) => only.includes(p.identifier)) : pes;
    for (const id of only) if (!pes.some((p) => p.identifier === id)) process.stderr.write(`PE ${hex32(id)} is not in pool ${handle}\n`);
    const say = (o: Outcome): void =>
      void process.stdout.write(values.json ? `${JSON.stringify(o)}\n` : `PE ${o.pe} ${o.left ? 'deregistered, leaving' : o.why}\n`);
    let failed = only.length - chosen.length;
    // One after another: the clients of each move to PEs that are not leaving yet.
    for (const pe of chosen) {
      const o = await askToLeave(pe, handle, scheme, timeoutMs, transports, logger);
      if (!o.left) failed++;
      say(o);
    }
    if (chosen.length === 0 && only.length === 0) process.stderr.write(`pool ${handle} has no PEs\n`);
    return failed === 0 && chosen.length > 0 ? 0 : 1;
  },
};

async function askToLeave(
  pe: PoolElementParameter,
  handle: string,
  scheme: string,
  timeoutMs: number,
  transports: ReturnType<typeof transportsFromOptions>,
  logger: ReturnType<typeof createLogger>,
): Promise<Outcome> {
  const name = hex32(pe.identifier);
  const t = pe.asapTransport;
  const host = t?.addresses[0];
  if (!t || host === undefined || (t.protocol !== 'tcp' && t.protocol !== 'sctp')) {
    return { pe: name, left: false, why: 'cannot be asked: it registered no ASAP listener (start it with --asap-listen)' };
  }
  const url = `${t.protocol === 'sctp' ? 'sctp+udp' : scheme}://${host.includes(':') ? `[${host}]` : host}:${t.port}`;
  let ch: AsapChannel | undefined;
  try {
    const conn = await transports.connect(url, { timeoutMs });
    ch = new AsapChannel(conn, url, systemClock, logger);
    const h = handleBytes(handle);
    const r = await ch.request(
      { type: AsapMessageType.Deregistration, handle: h, identifier: pe.identifier },
      (m): m is AsapDeregistrationResponse => m.type === AsapMessageType.DeregistrationResponse && m.identifier === pe.identifier && sameBytes(m.handle, h),
      { timeoutMs },
    );
    const cause = r.error?.[0];
    if (!cause) return { pe: name, left: true };
    return { pe: name, left: false, why: CAUSE_TEXT[cause.code] ?? `refused (cause 0x${cause.code.toString(16)})` };
  } catch (err) {
    return { pe: name, left: false, why: `no answer at ${url}: ${(err as Error).message}` };
  } finally {
    await ch?.close().catch(() => {});
  }
}
