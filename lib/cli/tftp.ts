import { CliUsageError, type Command } from './command.js';

/** `rserpool tftp serve|get|put|gateway`: each loads only what it needs. */
const subcommands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: { summary: 'serve a directory by TFTP, registered under a pool handle', load: async () => (await import('./tftp-serve.js')).tftpServeCommand },
  get: { summary: 'download HANDLE:/path from the pool, failing over between PEs', load: async () => (await import('./tftp-get.js')).tftpGetCommand },
  put: { summary: 'upload a file to a writable PE of the pool', load: async () => (await import('./tftp-get.js')).tftpPutCommand },
  gateway: { summary: 'a TFTP front for unmodified clients, failing over inside', load: async () => (await import('./tftp-gateway.js')).tftpGatewayCommand },
};

export const tftpCommand: Command = {
  async run(argv) {
    const [name, ...rest] = argv;
    const entry = name ? subcommands[name] : undefined;
    if (!entry) {
      const lines = Object.entries(subcommands).map(([n, c]) => `  tftp ${n.padEnd(8)} ${c.summary}`);
      const text = `usage: rserpool tftp <serve|get|put|gateway> [options]\n\n${lines.join('\n')}\n`;
      if (name === '--help' || name === '-h') {
        process.stdout.write(text);
        return 0;
      }
      throw new CliUsageError(name ? `unknown tftp command '${name}'\n${text}` : `a tftp command is needed\n${text}`);
    }
    return (await entry.load()).run(rest);
  },
};
