/**
 * vmctl's exit status, for scripts. Documented in apps/cli/README.md; never renumber one.
 *
 *   0  done
 *   1  the daemon answered with an error not listed below (a worker failure, an internal
 *      error), or vmctl itself failed
 *   2  usage: a bad command line or definition file, or the daemon refused the request as
 *      invalid (HTTP 400, 413, 415, 422: validation, a missing or disallowed host path, a
 *      definition the VMM cannot run)
 *   3  not found: no such domain (HTTP 404)
 *   4  conflict: the domain exists already, is in the wrong state for the action, is running,
 *      or changed since it was read (HTTP 409, 412)
 *   5  cannot reach the daemon: no socket, connection refused, permission denied, or the
 *      TCP listener refused the token (HTTP 401)
 */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  UNREACHABLE: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit status for an HTTP error status from the daemon. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 409 || status === 412) return EXIT.CONFLICT;
  if (status === 401) return EXIT.UNREACHABLE;
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.USAGE;
  return EXIT.ERROR;
}
