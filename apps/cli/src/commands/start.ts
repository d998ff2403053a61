/** `vmctl start NAME [--console]`: POST /v1/domains/{name}/actions/start; answers once the guest runs. */
import { Command } from 'commander';
import { contextOf } from '../context.js';
import { outputOption } from '../output.js';
import { printStatus, runAction } from './action.js';
import { attachConsole } from './console.js';

export const startCommand = () =>
  new Command('start')
    .description('Start a domain; answers once its guest runs')
    .argument('<name>', 'the domain')
    .option('--console', 'then attach to its serial console')
    .addOption(outputOption())
    .action(async (name: string, opts: { console?: boolean; output: string }, cmd: Command) => {
      const s = await runAction(cmd, 'start', name);
      printStatus(cmd, s, opts.output);
      if (opts.console && (s.state === 'running' || s.state === 'paused')) await attachConsole(contextOf(cmd).client, name);
    });
