/**
 * `vmctl shutdown NAME [--timeout S] [--wait]`: the ACPI power button, then a forced stop if
 * the guest is not off after the timeout (the daemon's, default 60 s).
 */
import { Command, InvalidArgumentError } from 'commander';
import { contextOf } from '../context.js';
import { formatState, outputOption, printJson } from '../output.js';

function seconds(v: string): string {
  if (!/^\d{1,4}$/.test(v) || Number(v) > 3600) throw new InvalidArgumentError('expected whole seconds, 0 to 3600');
  return v;
}

export const shutdownCommand = () =>
  new Command('shutdown')
    .description('Shut a domain down gracefully (ACPI power button), forcing it off after the timeout')
    .argument('<name>', 'the domain')
    .option('-t, --timeout <seconds>', 'seconds before it is forced off (daemon default 60; 0 forces at once)', seconds)
    .option('-w, --wait', 'return only once the domain is off')
    .addOption(outputOption())
    .action(async (name: string, opts: { timeout?: string; wait?: boolean; output: string }, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      const query = { ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}), ...(opts.wait ? { wait: 'true' as const } : {}) };
      const r = await client.request('post', '/v1/domains/{name}/actions/shutdown', { params: { name }, query });
      if (opts.output === 'json') printJson(out, r.data);
      else if (r.status === 202) out.write(`${name}: ${formatState(r.data)}: the power button was pressed (forced off after ${opts.timeout ?? 60} s)\n`);
      else out.write(`${name}: ${formatState(r.data)}\n`);
    });
