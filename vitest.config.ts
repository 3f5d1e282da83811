import { defineConfig } from 'vitest/config';

/**
 * Tests that run real processes, captures or third-party clients (tshark,
 * curl, tftp-hpa, atftp, openssl, python3); everything else is `unit`, which
 * must stay under 30 s: a new test that spawns anything is named
 * *.integration.test.ts or listed here.
 */
const INTEGRATION = [
  'test/**/*.integration.test.ts',
  'test/cli/**/*.test.ts',
  'test/wire/**/*.test.ts',
  'test/examples/**/*.test.ts',
  'test/package/**/*.test.ts',
  'test/protocols/wirecheck.test.ts',
  // sctp:// loads the native raw-socket module, which worker threads cannot.
  'test/enrp/transports.test.ts',
  'test/registrar/sctp.test.ts',
  'test/registrar/tcp.test.ts',
  'test/session/counter-example.test.ts',
  // client-pool moves tens of MiB over real UDP (block-number rollover).
  'test/tftp/{client-cli,client-pool,server-cli,failover,gateway,real-clients-pe}.test.ts',
  'test/transport/{sctp-raw,sctp-udp,tls}.test.ts',
  // Floods that fill kernel buffers, and a registrar run under ulimit.
  'test/security/{cli-oversized-registration,conn-limits,session-queue,tftp-source-port-zero,tftp-uploads,tftp-amplification,tftp-gateway-flood,tftp-cookie-cli,cli-safety-net,enrp-caps}.test.ts',
];

/**
 * Tests that assert tight timings (tens of ms): they run after the others,
 * alone, one file at a time, so no other test's processes share the cores.
 */
const TIMING = ['test/tftp/rolling-restart.integration.test.ts'];

/** In-process tests that mock modules (vi.mock): they need a module graph of their own. */
const MOCKS = ['test/security/cli-status-server.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      // Threads sharing one module graph per worker: unit runs in under 30 s on 2 cores.
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...INTEGRATION, ...MOCKS], pool: 'threads', isolate: false } },
      { extends: true, test: { name: 'unit-mocks', include: MOCKS, pool: 'threads' } },
      // The setup finds the tools these tests run, or installs them (as root, with apt-get).
      { extends: true, test: { name: 'integration', include: INTEGRATION, exclude: TIMING, globalSetup: ['test/support/tools.ts'] } },
      // Group order 1: starts once every project of group 0 has finished.
      {
        extends: true,
        test: { name: 'timing', include: TIMING, globalSetup: ['test/support/tools.ts'], sequence: { groupOrder: 1 }, maxWorkers: 1, fileParallelism: false },
      },
    ],
  },
});
