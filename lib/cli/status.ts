import type { PoolPage, StatusSummary } from '../status/view.js';
import { RSerPoolError } from '../errors.js';
import { CliUsageError, type Command } from './command.js';
import { hex32, policyText, transportText } from './format.js';
import { duration, hostPort, integer, parseOptions, str, type OptionSpec } from './options.js';
import { HTTP_TOKEN_SPECS, httpToken } from './http.js';

const specs: Record<string, OptionSpec> = {
  registrar: { type: 'string', help: "the registrar's status endpoint, http://HOST:PORT or HOST:PORT", default: 'http://127.0.0.1:3864' },
  timeout: { type: 'string', help: 'give up after', default: '5s' },
  json: { type: 'boolean', help: 'print the JSON summary (pools without their PEs)' },
  pools: { type: 'string', help: 'pools shown at most', default: '100' },
  limit: { type: 'string', help: 'PEs shown per pool at most (0: counts only)', default: '20' },
  ...HTTP_TOKEN_SPECS,
};

/** `rserpool status`: a registrar's summary, then a page of each pool's PEs; never the whole handlespace. */
export const statusCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('status [options]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const target = str(values, 'registrar')!;
    const base = target.startsWith('http://') ? target.replace(/\/(status)?$/, '') : (hostPort('registrar', target), `http://${target}`);
    const timeoutMs = duration('timeout', str(values, 'timeout'))!;
    const pools = integer('pools', str(values, 'pools'), 1, 1000)!;
    const limit = integer('limit', str(values, 'limit'), 0, 10_000)!;
    const token = httpToken(values);
    const signal = AbortSignal.timeout(timeoutMs);
    const get = async (path: string): Promise<string> => {
      try {
        const res = await fetch(`${base}${path}`, { signal, headers: token ? { authorization: `Bearer ${token}` } : {} });
        if (!res.ok) throw new Error(`HTTP ${res.status}${res.status === 401 ? ' (give the token: --http-token or RSERPOOL_HTTP_TOKEN)' : ''}`);
        return await res.text();
      } catch (err) {
        throw new RSerPoolError('RSP_ERR_STATUS_UNREACHABLE', `cannot read ${base}${path}: ${(err as Error).message}`, { cause: err });
      }
    };
    const body = await get(`/status?summary&pools=${pools}`);
    if (values.json) {
      process.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
      return 0;
    }
    const s = JSON.parse(body) as StatusSummary;
    const out: string[] = [
      `registrar ${hex32(s.id)}  ${s.synchronised ? 'synchronised' : 'NOT synchronised'}  asap ${s.asap.join(' ')}`,
      `${s.poolElements} pool elements (${s.owned} owned here) in ${s.poolCount} pools, ${s.connections} ASAP connections`,
    ];
    for (const p of s.peers ?? []) out.push(`peer ${hex32(p.id)}  ${p.state}${p.url ? `  ${p.url}` : ''}  owns ${p.owned}`);
    for (const pool of s.pools) {
      out.push(`pool ${pool.handle}  (${pool.size} PEs)`);
      if (limit === 0) continue;
      const page = JSON.parse(await get(`/status/pool?hex=${pool.hex}&limit=${limit}`)) as PoolPage;
      for (const pe of page.elements) {
        out.push(
          `  ${hex32(pe.identifier)}  ${transportText(pe.userTransport)}  ${policyText(pe.policy)}  home ${hex32(pe.homeRegistrarId)}` +
            `${pe.expiresInMs === null ? '' : `  expires in ${(pe.expiresInMs / 1000).toFixed(1)}s`}`,
        );
      }
      if (page.size > page.elements.length) out.push(`  ... ${page.size - page.elements.length} more`);
    }
    if (s.poolCount > s.poolOffset + s.pools.length) out.push(`... ${s.poolCount - s.pools.length} more pools (--pools)`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
