/**
 * The failures vmctl reports, each with the exit status it ends with (exit-codes.ts).
 * `main.ts` prints them; commands throw them.
 */
import type { components } from './api/schema.js';
import { EXIT, exitCodeForStatus, type ExitCode } from './exit-codes.js';

export type Problem = components['schemas']['Problem'];

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.ERROR,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A bad command line or definition file, found before anything was sent. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
    this.name = 'UsageError';
  }
}

/** The daemon cannot be reached (or refused our credentials). */
export class ConnectError extends CliError {
  constructor(message: string) {
    super(message, EXIT.UNREACHABLE);
    this.name = 'ConnectError';
  }
}

/** The daemon answered with an RFC 9457 problem. */
export class ApiProblemError extends CliError {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${problem.title}: ${problem.detail}`, exitCodeForStatus(status));
    this.name = 'ApiProblemError';
  }
}

/**
 * How a problem reads on a terminal: the title with its code, then the detail (or, for a
 * validation failure, each field on a line of its own).
 */
export function formatProblem(p: Problem): string {
  const lines = [`${p.title} (${p.code})`];
  if (p.errors?.length) for (const e of p.errors) lines.push(`  ${e.path}: ${e.message}`);
  else if (p.detail) for (const l of p.detail.split('\n')) lines.push(`  ${l}`);
  return lines.join('\n');
}
