/**
 * npm run bench -- SUITE [SUITE...] [--quick] [--json] [--runs N] [--workers N,M...]
 * Each suite is test/bench/<suite>.ts exporting `run(ctx)`. Every figure is
 * reported once; --json prints it as one JSON line, otherwise a table.
 */
import { parseArgs } from 'node:util';
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, extname, join } from 'node:path';
import type { BenchContext, Figure } from './context.js';

const self = fileURLToPath(import.meta.url);
const here = dirname(self);
// npm run bench runs the compiled suites (dist-bench/): the tsx loader made codec code ~4x slower than what users run
const ext = extname(self);
const available = readdirSync(here)
  .filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`) && ![`run${ext}`, `context${ext}`].includes(f) && !f.startsWith('_'))
  .map((f) => f.slice(0, -ext.length))
  .sort();

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, runs: { type: 'string' }, workers: { type: 'string' } },
});
const runs = values.runs === undefined ? undefined : Number(values.runs);
if (runs !== undefined && (!Number.isInteger(runs) || runs < 1)) {
  process.stderr.write(`bench: --runs must be a positive whole number, not '${values.runs}'\n`);
  process.exit(2);
}
const workers = values.workers === undefined ? undefined : values.workers.split(',').map(Number);
if (workers !== undefined && !workers.every((w) => Number.isInteger(w) && w >= 1 && w <= 1024)) {
  process.stderr.write(`bench: --workers takes whole numbers from 1 to 1024, comma-separated, not '${values.workers}'\n`);
  process.exit(2);
}
const suites = positionals.length > 0 ? positionals : available;
for (const s of suites) {
  if (!available.includes(s)) {
    process.stderr.write(`bench: unknown suite '${s}' (have: ${available.join(', ')})\n`);
    process.exit(2);
  }
}

const rows: Figure[] = [];
for (const suite of suites) {
  const mod = (await import(pathToFileURL(join(here, `${suite}${ext}`)).href)) as { run(ctx: BenchContext): Promise<void> };
  const ctx: BenchContext = {
    quick: values.quick ?? false,
    ...(runs !== undefined ? { runs } : {}),
    ...(workers !== undefined ? { workers } : {}),
    report(figure) {
      const row = { suite, ...figure } as Figure;
      rows.push(row);
      if (values.json) process.stdout.write(`${JSON.stringify(row)}\n`);
      else {
        const { suite: _s, name, value, unit, ...params } = row;
        const p = Object.entries(params)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(' ');
        process.stdout.write(`${suite.padEnd(12)} ${name.padEnd(32)} ${formatValue(value).padStart(14)} ${unit.padEnd(6)} ${p}\n`);
      }
    },
    log(line) {
      process.stderr.write(`${line}\n`);
    },
  };
  await mod.run(ctx);
}

function formatValue(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 3);
}
