/** `vmctl show NAME`: the definition (GET /v1/domains/{name}) and the state (…/state). */
import { Command } from 'commander';
import { contextOf } from '../context.js';
import { domainDetails, outputOption, printJson } from '../output.js';

export const showCommand = () =>
  new Command('show')
    .description('Show a domain\'s definition and state')
    .argument('<name>', 'the domain')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: string }, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      const params = { name };
      const [d, s] = await Promise.all([client.request('get', '/v1/domains/{name}', { params }), client.request('get', '/v1/domains/{name}/state', { params })]);
      if (opts.output === 'json') printJson(out, { ...d.data, status: s.data });
      else out.write(domainDetails(d.data, s.data));
    });
