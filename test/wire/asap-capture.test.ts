import { afterEach, describe, expect, it } from 'vitest';
import { startCli, runCli, type CliProcess } from '../cli/run.js';
import { wirecheckPcap } from '../support/wirecheck.js';
import { capturePort, startCapture, type Capture } from './capture.js';

const procs: CliProcess[] = [];
let capture: Capture | undefined;
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
  await capture?.stop();
  capture?.remove();
  capture = undefined;
});

describe('ASAP on the wire', () => {
  it('a captured run (register, resolve, keep-alive, deregister) passes the wire check', async () => {
    const port = capturePort(23000);
    capture = await startCapture(`tcp port ${port}`);
    const registrar = startCli([
      'registrar', '--asap', `tcp://127.0.0.1:${port}`, '--http', 'off', '--announce', 'off', '--print-events',
      '--keep-alive-interval', '200ms', '--keep-alive-timeout', '500ms',
    ]);
    procs.push(registrar);
    await registrar.waitForLine(/^registrar /);
    const pe = startCli(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6969', '--registrar', `tcp://127.0.0.1:${port}`, '--policy', 'least-used:0.25']);
    procs.push(pe);
    await pe.waitForLine(/^registered /);
    const resolved = await runCli(['resolve', 'files', '--registrar', `tcp://127.0.0.1:${port}`]);
    expect(resolved.code).toBe(0);
    const missing = await runCli(['resolve', 'nothing-here', '--registrar', `tcp://127.0.0.1:${port}`]);
    expect(missing.code).toBe(1);
    pe.kill('SIGTERM');
    await registrar.waitForLine(/^pe-deregistered /);
    await pe.exited;
    await capture.flush();
    await capture.stop();
    const report = await wirecheckPcap(capture.file, { asapPorts: [port] });
    expect([...report.types], report.text()).toEqual(expect.arrayContaining([
      'ASAP_REGISTRATION', 'ASAP_REGISTRATION_RESPONSE', 'ASAP_HANDLE_RESOLUTION', 'ASAP_HANDLE_RESOLUTION_RESPONSE',
      'ASAP_ENDPOINT_KEEP_ALIVE', 'ASAP_ENDPOINT_KEEP_ALIVE_ACK', 'ASAP_DEREGISTRATION', 'ASAP_DEREGISTRATION_RESPONSE',
    ]));
    expect(report.failed, report.text()).toEqual([]);
  });
});
