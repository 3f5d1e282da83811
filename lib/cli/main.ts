#!/usr/bin/env node
import { CliUsageError, type Command } from './command.js';
import { installSafetyNet } from './process.js';

/** Subcommands load lazily so `rserpool wire` does not pay for the registrar. */
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  demo: { summary: 'a demo pool on loopback: registrars, PEs, a client that survives kill -9', load: async () => (await import('./demo.js')).demoCommand },
  drain: { summary: 'ask PEs of a pool to leave it gently (maintenance)', load: async () => (await import('./drain.js')).drainCommand },
  registrar: { summary: 'run a registrar (ASAP server; status over HTTP)', load: async () => (await import('./registrar.js')).registrarCommand },
  register: { summary: 'keep an existing server registered under a pool handle (sidecar)', load: async () => (await import('./register.js')).registerCommand },
  resolve: { summary: 'resolve a pool handle to pool elements', load: async () => (await import('./resolve.js')).resolveCommand },
  status: { summary: "show a registrar's pools, pool elements and owners", load: async () => (await import('./status.js')).statusCommand },
  tftp: { summary: 'TFTP pool: serve files, download with failover, gateway for plain clients', load: async () => (await import('./tftp.js')).tftpCommand },
  wire: { summary: 'decode ASAP/ENRP/TFTP bytes, print sample messages', load: async () => (await import('./wire.js')).wireCommand },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: rserpool <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nrserpool <command> --help for its options`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  const entry = commands[name];
  if (!entry) {
    process.stderr.write(`rserpool: unknown command '${name}'\n${usage()}\n`);
    return 2;
  }
  installSafetyNet(name);
  const command = await entry.load();
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(`rserpool ${name}: ${err.message}\n`);
      return 2;
    }
    const e = err as { code?: string; message?: string };
    process.stderr.write(`rserpool ${name}: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`rserpool: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
