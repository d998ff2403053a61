/** `vmctl delete NAME [--force]`: DELETE /v1/domains/{name}; a running domain only with --force. */
import { Command } from 'commander';
import { contextOf } from '../context.js';

export const deleteCommand = () =>
  new Command('delete')
    .alias('rm')
    .description('Delete a domain\'s definition (its disk images stay)')
    .argument('<name>', 'the domain')
    .option('--force', 'stop the domain first if it runs')
    .action(async (name: string, opts: { force?: boolean }, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      await client.request('delete', '/v1/domains/{name}', { params: { name }, query: opts.force ? { force: 'true' } : {} });
      out.write(`Domain ${name} deleted\n`);
    });
