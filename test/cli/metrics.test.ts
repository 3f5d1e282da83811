/** `rserpool registrar --http` serves Prometheus metrics next to its status. */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from './run.js';

const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

describe('rserpool registrar metrics', () => {
  it('GET /metrics on the --http address shows what the registrar holds and did', async () => {
    const registrar = startCli(['registrar', '--id', '0x77', '--asap', 'tcp://127.0.0.1:0', '--http', '127.0.0.1:0', '--announce', 'off']);
    procs.push(registrar);
    const [, asap, http] = await registrar.waitForLine(/^registrar 0x00000077 asap (\S+) status (http:\/\/\S+)\/status$/);
    const pe = startCli(['register', '--handle', 'metered', '--transport', 'udp://127.0.0.1:6970', '--registrar', asap!]);
    procs.push(pe);
    await pe.waitForLine(/^registered /);
    expect((await runCli(['resolve', 'metered', '--registrar', asap!])).code).toBe(0);
    const res = await fetch(`${http}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^rserpool_pool_elements\{registrar="0x00000077"\} 1$/m);
    expect(text).toMatch(/^rserpool_registrations_total\{kind="new",registrar="0x00000077"\} 1$/m);
    expect(text).toMatch(/^rserpool_handle_resolutions_total\{registrar="0x00000077"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes\{registrar="0x00000077"\} \d+/m);
  });
});
