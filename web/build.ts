/**
 * Builds the registrar's web page into dist/web: one bundled, minified
 * app.js (preact, htm, eventsource inlined: no CDN, works offline), the
 * HTML and the CSS. Run by `npm run build` (so by `npm ci`'s prepare).
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const out = here('../dist/web/');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [here('src/app.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  outfile: `${out}app.js`,
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(here(f), `${out}${f}`);
