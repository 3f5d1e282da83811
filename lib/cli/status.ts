import type { RegistrarStatus } from '../registrar/index.js';
import { RSerPoolError } from '../errors.js';
import { CliUsageError, type Command } from './command.js';
import { hex32, policyText, transportText } from './format.js';
import { duration, hostPort, parseOptions, str, type OptionSpec } from './options.js';

const specs: Record<string, OptionSpec> = {
  registrar: { type: 'string', help: "the registrar's status endpoint, http://HOST:PORT or HOST:PORT", default: 'http://127.0.0.1:3864' },
  timeout: { type: 'string', help: 'give up after', default: '5s' },
  json: { type: 'boolean', help: 'print the raw JSON snapshot' },
};

export const statusCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('status [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const target = str(values, 'registrar')!;
    const base = target.startsWith('http://') ? target.replace(/\/(status)?$/, '') : (hostPort('registrar', target), `http://${target}`);
    const timeoutMs = duration('timeout', str(values, 'timeout'))!;
    let body: string;
    try {
      const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.text();
    } catch (err) {
      throw new RSerPoolError('RSP_ERR_STATUS_UNREACHABLE', `cannot read ${base}/status: ${(err as Error).message}`, { cause: err });
    }
    if (values.json) {
      process.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
      return 0;
    }
    const s = JSON.parse(body) as RegistrarStatus & { peers?: { id: number; url?: string; state: string; owned?: number }[] };
    const out: string[] = [
      `registrar ${hex32(s.id)}  ${s.synchronised ? 'synchronised' : 'NOT synchronised'}  asap ${s.asap.join(' ')}`,
      `${s.poolElements} pool elements (${s.owned} owned here) in ${s.pools.length} pools, ${s.connections} ASAP connections`,
    ];
    for (const p of s.peers ?? []) out.push(`peer ${hex32(p.id)}  ${p.state}${p.url ? `  ${p.url}` : ''}${p.owned !== undefined ? `  owns ${p.owned}` : ''}`);
    for (const pool of s.pools) {
      out.push(`pool ${pool.handle}  (${pool.elements.length} PEs)`);
      for (const pe of pool.elements) {
        out.push(
          `  ${hex32(pe.identifier)}  ${transportText(pe.userTransport)}  ${policyText(pe.policy)}  home ${hex32(pe.homeRegistrarId)}` +
            `${pe.expiresInMs === null ? '' : `  expires in ${(pe.expiresInMs / 1000).toFixed(1)}s`}`,
        );
      }
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
