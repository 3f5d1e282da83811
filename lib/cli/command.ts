import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A CLI subcommand: takes its own argv, writes to stdout/stderr, returns the exit code. */
export interface Command {
  run(argv: string[]): Promise<number>;
}

/** Bad flags or arguments: printed as one line, exit status 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** parseArgs with its TypeError turned into a one-line usage error. */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
}
