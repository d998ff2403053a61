/** `vmctl list [--state S] [-o table|json|name]`: GET /v1/domains. */
import { Command, Option } from 'commander';
import { contextOf } from '../context.js';
import { domainsTable, outputOption, printJson } from '../output.js';

const STATES = ['shutoff', 'starting', 'running', 'paused', 'stopping', 'crashed'] as const;

export const listCommand = () =>
  new Command('list')
    .alias('ls')
    .description('List domains with their state')
    .addOption(new Option('--state <state>', 'only domains in this state').choices(STATES))
    .addOption(outputOption(['table', 'json', 'name']))
    .action(async (opts: { state?: (typeof STATES)[number]; output: string }, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      const { items } = (await client.request('get', '/v1/domains', { query: opts.state ? { state: opts.state } : {} })).data;
      if (opts.output === 'json') printJson(out, items);
      else if (opts.output === 'name') out.write(items.map((d) => `${d.name}\n`).join(''));
      else out.write(items.length ? domainsTable(items) : 'No domains.\n');
    });
