/**
 * The registrar's web page in a real browser: Debian's Chromium driven by
 * playwright-core (no browser download). Two registrars with ENRP and three
 * PEs, all real processes; the page of one registrar shows both registrars
 * and the three PEs; a PE killed with kill -9 disappears from the page and
 * its removal (keep-alive timeout) appears in the event feed, without a
 * reload. A screenshot is written to test-results/ and its path printed.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
const WAIT = 30_000;

const procs: CliProcess[] = [];
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

const FAST = [
  '--announce',
  'off',
  '--enrp-multicast',
  'off',
  '--keep-alive-interval',
  '300ms',
  '--keep-alive-timeout',
  '300ms',
  '--peer-heartbeat',
  '300ms',
  '--max-last-heard',
  '1s',
  '--max-no-response',
  '1s',
  '--mentor-discovery',
  '300ms',
  '--print-events',
];

describe('the registrar web page in Chromium', () => {
  it('shows both registrars and three PEs, then a PE killed with kill -9 gone and its removal in the feed, without a reload', async () => {
    const a = start(['registrar', '--id', '0xa1', '--asap', 'tcp://127.0.0.1:0', '--enrp', 'tcp://127.0.0.1:0', '--http', '127.0.0.1:0', ...FAST]);
    const [, asapA, enrpA, httpA] = await a.waitForLine(/^registrar 0x000000a1 asap (\S+) enrp (\S+) status (\S+)\/status$/, WAIT);
    const b = start(['registrar', '--id', '0xb2', '--asap', 'tcp://127.0.0.1:0', '--enrp', 'tcp://127.0.0.1:0', '--peer', enrpA!, '--http', 'off', ...FAST]);
    const [, asapB] = await b.waitForLine(/^registrar 0x000000b2 asap (\S+) enrp/, WAIT);
    await b.waitForLine(/^synchronised$/, WAIT);

    const pe = (id: number, registrar: string): CliProcess =>
      start(['register', '--handle', 'files', '--transport', `udp://127.0.0.1:${7100 + id}`, '--identifier', String(id), '--registrar', registrar]);
    const pes = [pe(1, asapA!), pe(2, asapA!), pe(3, asapB!)];
    for (const p of pes) await p.waitForLine(/^registered /, WAIT);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${httpA}/`);

    const peRows = page.locator('#pes tr[data-pe]');
    await expect.poll(() => peRows.count(), { timeout: WAIT }).toBe(3);
    expect(await peRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-pe')))).toEqual(['0x00000001', '0x00000002', '0x00000003']);
    const registrars = page.locator('#registrars tr[data-registrar]');
    await expect
      .poll(
        () =>
          registrars.evaluateAll((rows) =>
            rows.map((r) => Array.from(r.querySelectorAll('td'), (c) => (c as { textContent: string | null }).textContent?.trim()).join(' ')),
          ),
        {
          timeout: WAIT,
        },
      )
      .toEqual([expect.stringMatching(/^0x000000a1 .* self 2/), expect.stringMatching(/^0x000000b2 .* up 1/)]);
    await expect.poll(() => page.locator('#live').textContent(), { timeout: WAIT }).toBe('live');
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));

    // PE 1 is homed at registrar A, whose page this is: its keep-alive times out there.
    pes[0]!.kill('SIGKILL');
    await a.waitForLine(/^pe-removed 0x00000001 files keep-alive-timeout$/, WAIT);
    await expect.poll(() => peRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-pe'))), { timeout: WAIT }).toEqual(['0x00000002', '0x00000003']);
    const removal = page.locator('#feed li[data-type="removed"]', { hasText: '0x00000001' });
    await expect.poll(() => removal.count(), { timeout: WAIT }).toBe(1);
    expect(await removal.textContent()).toMatch(/removed 0x00000001 from files: keep-alive-timeout/);
    expect(await page.locator('#feed li[data-type="registered"]').count()).toBeGreaterThanOrEqual(3);
    expect(navigations).toEqual([]);
    expect(errors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'registrar-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`web page screenshot: ${shot}\n`);
  }, 120_000);
});
