/**
 * The shape the simple lifecycle commands share (start, stop, reboot, reset, pause, resume):
 * one POST to /v1/domains/{name}/actions/<action>, then the domain's state.
 */
import { Command } from 'commander';
import { contextOf } from '../context.js';
import { formatState, outputOption, printJson, type DomainStatus } from '../output.js';

export type SimpleAction = 'start' | 'stop' | 'reboot' | 'reset' | 'pause' | 'resume';

export async function runAction(cmd: Command, action: SimpleAction, name: string): Promise<DomainStatus> {
  const { client } = contextOf(cmd);
  // the six routes have one shape in the document (no query, no body, DomainStatus), so
  // start's types stand for all of them
  const path = `/v1/domains/{name}/actions/${action}` as '/v1/domains/{name}/actions/start';
  return (await client.request('post', path, { params: { name } })).data;
}

export function printStatus(cmd: Command, s: DomainStatus, output: string): void {
  const { out } = contextOf(cmd);
  if (output === 'json') printJson(out, s);
  else out.write(`${s.name}: ${formatState(s)}\n`);
}

/** A command `NAME` that runs `action` and prints the state it left. */
export function actionCommand(action: SimpleAction, description: string): Command {
  return new Command(action)
    .description(description)
    .argument('<name>', 'the domain')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: string }, cmd: Command) => {
      printStatus(cmd, await runAction(cmd, action, name), opts.output);
    });
}
