/** `vmctl host`: GET /v1/host — KVM, capabilities, versions. */
import { Command } from 'commander';
import { contextOf } from '../context.js';
import { hostDetails, outputOption, printJson } from '../output.js';

export const hostCommand = () =>
  new Command('host')
    .description('Show the host: KVM, its capabilities, versions')
    .addOption(outputOption())
    .action(async (opts: { output: string }, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      const h = (await client.request('get', '/v1/host')).data;
      if (opts.output === 'json') printJson(out, h);
      else out.write(hostDetails(h));
    });
