/**
 * What a command runs with: the API client for the connection the global options name, and
 * where to print. Commands get it from `contextOf(command)`, so tests can swap the streams.
 */
import type { Command } from 'commander';
import { ApiClient } from './api/client.js';
import { resolveConnection, type ConnectionOptions } from './api/connection.js';
import { stdout, type Out } from './output.js';

export interface Context {
  client: ApiClient;
  out: Out;
  err: Out;
}

export const stderr: Out = { write: (t) => void process.stderr.write(t) };

/** The context of the command being run, from its (and the program's) options. */
export function contextOf(cmd: Command): Context {
  const o = cmd.optsWithGlobals<ConnectionOptions>();
  return { client: new ApiClient(resolveConnection(o)), out: stdout, err: stderr };
}
