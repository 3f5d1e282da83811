import { readFileSync } from 'node:fs';
import { createTransports, DEFAULT_CONNECTION_LIMITS as LIM, type ConnectionLimits, type TransportSet, type TransportsInit } from '../transport/index.js';
import { MIN_PSK_BYTES, type TlsPsk } from '../transport/tls.js';
import { parseArgs } from 'node:util';
import { PolicyType, type MemberSelectionPolicy, type TransportAddress, type TransportProtocol } from '../../protocols/parameters/types.js';
import { CliUsageError } from './command.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** One line for --help. */
  help: string;
  default?: string | boolean;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/**
 * Flags, then RSERPOOL_<NAME> environment variables, then a JSON `--config`
 * file (keys as the long flag names), then defaults. Repeatable flags take a
 * comma-separated list from the environment.
 */
export function parseOptions(
  command: string,
  argv: string[],
  specs: Record<string, OptionSpec>,
  env: NodeJS.ProcessEnv = process.env,
): { values: OptionValues; positionals: string[] } {
  const all: Record<string, OptionSpec> = {
    ...specs,
    config: { type: 'string', help: 'JSON file with options (keys as the long flag names)' },
    help: { type: 'boolean', short: 'h', help: 'this help' },
  };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        Object.entries(all).map(([k, s]) => [k, { type: s.type, multiple: s.multiple ?? false, ...(s.short ? { short: s.short } : {}) }]),
      ),
    });
  } catch (err) {
    throw new CliUsageError(`${(err as Error).message}\n${usage(command, all)}`);
  }
  const values: OptionValues = { ...(parsed.values as OptionValues) };
  if (values.help) {
    process.stdout.write(`${usage(command, all)}\n`);
    return { values, positionals: parsed.positionals };
  }
  const configPath = (values.config as string | undefined) ?? env.RSERPOOL_CONFIG;
  const config = configPath ? readConfig(configPath, all) : {};
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] !== undefined) continue;
    const fromEnv = env[`RSERPOOL_${name.toUpperCase().replace(/-/g, '_')}`];
    if (fromEnv !== undefined && fromEnv !== '') {
      values[name] = coerce(name, spec, fromEnv, 'environment');
      continue;
    }
    if (config[name] !== undefined) {
      values[name] = config[name];
      continue;
    }
    if (spec.default !== undefined) values[name] = spec.multiple ? [String(spec.default)] : spec.default;
  }
  return { values, positionals: parsed.positionals };
}

function coerce(name: string, spec: OptionSpec, raw: string, where: string): string | boolean | string[] {
  if (spec.type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new CliUsageError(`${where}: --${name} takes true or false, not '${raw}'`);
  }
  return spec.multiple
    ? raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : raw;
}

function readConfig(path: string, specs: Record<string, OptionSpec>): Record<string, string | boolean | string[]> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliUsageError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new CliUsageError(`config file ${path}: expected a JSON object`);
  const out: Record<string, string | boolean | string[]> = {};
  for (const [key, v] of Object.entries(data)) {
    const spec = specs[key];
    if (!spec || key === 'config' || key === 'help') throw new CliUsageError(`config file ${path}: unknown option '${key}'`);
    if (spec.type === 'boolean' && typeof v === 'boolean') out[key] = v;
    else if (spec.multiple && Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) out[key] = v.map(String);
    else if (spec.type === 'string' && (typeof v === 'string' || typeof v === 'number')) out[key] = spec.multiple ? [String(v)] : String(v);
    else throw new CliUsageError(`config file ${path}: option '${key}' has the wrong type`);
  }
  return out;
}

function usage(command: string, specs: Record<string, OptionSpec>): string {
  const rows = Object.entries(specs).map(([k, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : ''}--${k}${s.type === 'string' ? ' VALUE' : ''}${s.multiple ? ' (repeatable)' : ''}`;
    return `  ${flag.padEnd(36)} ${s.help}${s.default !== undefined ? ` (default ${String(s.default)})` : ''}`;
  });
  return `usage: rserpool ${command}\n\noptions (also RSERPOOL_<NAME> in the environment, or keys of a --config JSON file):\n${rows.join('\n')}`;
}

export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(values: OptionValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** "500", "500ms", "5s", "2m", "1h" -> milliseconds. */
export function duration(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new CliUsageError(`--${name} takes a duration such as 500ms, 5s, 2m or 1h, not '${text}'`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** "250000", "500k", "8M", "1.5G" -> bytes a second (as curl's --limit-rate: k = 1024). */
export function rate(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kmg])?$/i.exec(text.trim());
  const n = m ? Math.floor(Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g']) : Number.NaN;
  if (!(n >= 1) || !Number.isSafeInteger(n)) throw new CliUsageError(`--${name} takes bytes a second such as 250000, 500k, 8M or 1G, not '${text}'`);
  return n;
}

export function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new CliUsageError(`--${name} takes a whole number from ${min} to ${max}, not '${text}'`);
  return n;
}

const POLICY_NAMES: Record<string, { type: number; value?: 'weight' | 'priority' | 'load' }> = {
  'round-robin': { type: PolicyType.RoundRobin },
  random: { type: PolicyType.Random },
  'weighted-round-robin': { type: PolicyType.WeightedRoundRobin, value: 'weight' },
  'weighted-random': { type: PolicyType.WeightedRandom, value: 'weight' },
  priority: { type: PolicyType.Priority, value: 'priority' },
  'least-used': { type: PolicyType.LeastUsed, value: 'load' },
  'randomized-least-used': { type: PolicyType.RandomizedLeastUsed, value: 'load' },
};

/** "round-robin", "weighted-random:5", "least-used:0.25" (load as a fraction) ... */
export function policy(text: string): MemberSelectionPolicy {
  const [name = '', arg] = text.split(':', 2);
  const p = POLICY_NAMES[name];
  if (!p) throw new CliUsageError(`--policy takes one of ${Object.keys(POLICY_NAMES).join(', ')} (with :VALUE where it has one), not '${text}'`);
  if (!p.value) return { type: p.type } as MemberSelectionPolicy;
  if (p.value === 'load') {
    const f = arg === undefined ? 0 : Number(arg);
    if (!(f >= 0 && f <= 1)) throw new CliUsageError(`--policy ${name}:LOAD takes a load from 0 to 1, not '${arg}'`);
    return { type: p.type, load: Math.round(f * 0xffffffff) } as MemberSelectionPolicy;
  }
  const n = arg === undefined ? 1 : Number(arg);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new CliUsageError(`--policy ${name}:N takes a whole number, not '${arg}'`);
  return { type: p.type, [p.value]: n } as MemberSelectionPolicy;
}

const PROTOCOLS: Record<string, TransportProtocol> = { tcp: 'tcp', udp: 'udp', sctp: 'sctp', dccp: 'dccp', 'udp-lite': 'udp-lite', udplite: 'udp-lite' };

/** "udp://127.0.0.1:69", "tcp://[::1]:8080" -> a user transport parameter. */
export function userTransport(text: string, transportUse: 0 | 1 = 0): TransportAddress {
  const m = /^([a-z-]+):\/\/(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)$/.exec(text);
  const protocol = m ? PROTOCOLS[m[1]!] : undefined;
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !protocol || !(port >= 1 && port <= 65535)) {
    throw new CliUsageError(
      `--transport takes PROTOCOL://ADDRESS:PORT with protocol ${Object.keys(PROTOCOLS).join('/')}, an IP address and a port 1-65535, not '${text}'`,
    );
  }
  const host = m[2]!.replace(/^\[|\]$/g, '');
  return { protocol, port, addresses: [host], transportUse: protocol === 'tcp' || protocol === 'sctp' ? transportUse : 0 };
}

export function hostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new CliUsageError(`--${flag} takes HOST:PORT, not '${text}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export const TLS_SPECS: Record<string, OptionSpec> = {
  'tls-cert': { type: 'string', help: 'PEM certificate of this side (a client certificate when connecting)' },
  'tls-key': { type: 'string', help: 'PEM private key of --tls-cert' },
  'tls-ca': { type: 'string', help: 'PEM CA: verifies the server, or (registrar) required of every client' },
  'tls-psk': { type: 'string', help: 'TLS pre-shared key IDENTITY:HEXKEY (RFC 5355), at least 16 bytes' },
  'tls-psk-file': { type: 'string', help: "listener: the clients' pre-shared keys, one IDENTITY:HEXKEY per line (# comments)" },
};

export const CONNECTION_LIMIT_SPECS: Record<string, OptionSpec> = {
  'max-connections': { type: 'string', help: 'inbound connections per listener', default: String(LIM.maxConnections) },
  'max-connections-per-host': { type: 'string', help: 'inbound connections per source address', default: String(LIM.maxConnectionsPerHost) },
  'first-message-timeout': {
    type: 'string',
    help: "a connection silent this long after connecting is closed ('0' never)",
    default: `${LIM.firstMessageTimeoutMs}ms`,
  },
  'idle-timeout': { type: 'string', help: "a connection silent this long is closed ('0' never)", default: `${LIM.idleTimeoutMs}` },
  'partial-message-timeout': {
    type: 'string',
    help: "a message begun and not finished this long closes the connection ('0' never)",
    default: `${LIM.partialMessageTimeoutMs}ms`,
  },
};

export function connectionLimitOptions(values: OptionValues): ConnectionLimits {
  return {
    maxConnections: integer('max-connections', str(values, 'max-connections'), 1, 1_000_000)!,
    maxConnectionsPerHost: integer('max-connections-per-host', str(values, 'max-connections-per-host'), 1, 1_000_000)!,
    firstMessageTimeoutMs: duration('first-message-timeout', str(values, 'first-message-timeout'))!,
    idleTimeoutMs: duration('idle-timeout', str(values, 'idle-timeout'))!,
    partialMessageTimeoutMs: duration('partial-message-timeout', str(values, 'partial-message-timeout'))!,
  };
}

/** `where` names the flag (and file line) in errors; the key itself is never printed. */
function parsePsk(where: string, text: string): { identity: string; key: Buffer } {
  const m = /^([^:\s]+):([0-9a-fA-F]{2,})$/.exec(text);
  if (!m || m[2]!.length % 2 !== 0) throw new CliUsageError(`${where} takes IDENTITY:HEXKEY`);
  const key = Buffer.from(m[2]!, 'hex');
  if (key.length < MIN_PSK_BYTES) throw new CliUsageError(`${where}: the key of '${m[1]}' has ${key.length} bytes; use at least ${MIN_PSK_BYTES}`);
  return { identity: m[1]!, key };
}

/** One IDENTITY:HEXKEY per line; blank lines and # comments skipped; an identity twice is a mistake. */
export function parsePskTable(text: string, file: string): Map<string, Buffer> {
  const table = new Map<string, Buffer>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const { identity, key } = parsePsk(`--tls-psk-file ${file}:${i + 1}`, line);
    if (table.has(identity)) throw new CliUsageError(`--tls-psk-file ${file}:${i + 1}: '${identity}' is listed twice`);
    table.set(identity, key);
  });
  if (table.size === 0) throw new CliUsageError(`--tls-psk-file ${file}: no IDENTITY:HEXKEY line`);
  return table;
}

/** sctp:// and sctp+udp:// when a URL asks for them (they take no options). */
function sctpTransports(urls: string[]): TransportsInit {
  const init: TransportsInit = {};
  if (urls.some((u) => u.toLowerCase().startsWith('sctp://'))) init.sctp = {};
  if (urls.some((u) => u.toLowerCase().startsWith('sctp+udp://'))) init['sctp+udp'] = {};
  return init;
}

/** tcp always; tls when a URL asks for it, from the --tls-* options; sctp and sctp+udp when a URL asks for them. */
export function transportsFromOptions(values: OptionValues, urls: string[], role: 'server' | 'client'): TransportSet {
  const cert = str(values, 'tls-cert');
  const key = str(values, 'tls-key');
  const ca = str(values, 'tls-ca');
  const psk = str(values, 'tls-psk');
  const pskFile = str(values, 'tls-psk-file');
  const wantsTls = urls.some((u) => u.startsWith('tls://'));
  if (!wantsTls) {
    if (cert || key || ca || psk || pskFile) throw new CliUsageError('--tls-* options given but no tls:// URL');
    return createTransports(sctpTransports(urls));
  }
  if ((cert === undefined) !== (key === undefined)) throw new CliUsageError('--tls-cert and --tls-key go together');
  if (role === 'server' && !psk && !pskFile && !cert) throw new CliUsageError('a tls:// listener needs --tls-cert and --tls-key, --tls-psk or --tls-psk-file');
  if (role === 'client' && pskFile) throw new CliUsageError('--tls-psk-file is for listeners; a client presents one --tls-psk');
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new CliUsageError(`--${flag}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const pskInit: TlsPsk | undefined =
    psk || pskFile
      ? { ...(psk ? parsePsk('--tls-psk', psk) : {}), ...(pskFile ? { table: parsePskTable(read('tls-psk-file', pskFile).toString('utf8'), pskFile) } : {}) }
      : undefined;
  return createTransports({
    ...sctpTransports(urls),
    tls: {
      ...(cert && key ? { cert: read('tls-cert', cert), key: read('tls-key', key) } : {}),
      ...(ca ? { ca: read('tls-ca', ca), ...(role === 'server' ? { requireClientCert: true } : {}) } : {}),
      ...(pskInit ? { psk: pskInit } : {}),
    },
  });
}
