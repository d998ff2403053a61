/**
 * Runs the vmctl program on a command line and maps what it throws to an exit status and
 * a message: main.ts is this plus process.exit, tests call it directly.
 */
import { CommanderError } from 'commander';
import { ApiProblemError, CliError, formatProblem } from './errors.js';
import { EXIT } from './exit-codes.js';
import { createProgram } from './program.js';

/** Runs vmctl on `argv` (without node and the script); resolves with the exit status. */
export async function run(argv: string[], err: (text: string) => void = (t) => void process.stderr.write(t)): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander printed the message (or the help, or the version) itself
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (e instanceof ApiProblemError) {
      err(`vmctl: ${formatProblem(e.problem)}\n`);
      return e.exitCode;
    }
    if (e instanceof CliError) {
      err(`vmctl: ${e.message}\n`);
      return e.exitCode;
    }
    err(`vmctl: unexpected failure: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.ERROR;
  }
}
