/**
 * `vmctl create [NAME] [-f FILE] [flags]`: defines a domain (POST /v1/domains) from flags, a
 * JSON or YAML file, or both (the flags win). Relative host paths are taken from the current
 * directory (flags) or from the file's directory (file).
 */
import { Command } from 'commander';
import { contextOf } from '../context.js';
import { addDefinitionOptions, bootFromFlags, fieldsFromFlags, readDefinitionFile, type DefinitionFlags, type DomainSpec } from '../definition.js';
import { UsageError } from '../errors.js';
import { formatState, outputOption, printJson } from '../output.js';
import { runAction } from './action.js';

interface CreateFlags extends DefinitionFlags {
  file?: string;
  uuid?: string;
  start?: boolean;
  output: string;
}

/** The definition to POST: the file's, then the flags over it, then the name argument. */
export async function specFrom(name: string | undefined, flags: CreateFlags): Promise<DomainSpec> {
  const base = flags.file ? await readDefinitionFile(flags.file) : {};
  const spec = { ...base, ...fieldsFromFlags(flags) } as DomainSpec;
  if (name !== undefined) {
    if (typeof base.name === 'string' && base.name !== name) throw new UsageError(`the name ${name} differs from the file's ${base.name}`);
    spec.name = name;
  }
  if (flags.uuid) spec.uuid = flags.uuid;
  if (typeof spec.name !== 'string') throw new UsageError('a domain needs a name: vmctl create NAME, or "name" in the file');
  // no boot at all: the daemon gives the domain the host's default guest (vmctl host)
  const boot = bootFromFlags(flags, base.boot as DomainSpec['boot'] | undefined);
  if (boot) spec.boot = boot;
  return spec;
}

export const createCommand = () =>
  addDefinitionOptions(
    new Command('create')
      .description('Define a domain from flags, a JSON/YAML file (-f), or both')
      .argument('[name]', 'the domain\'s name (a DNS label); or "name" in the file')
      .option('-f, --file <file>', 'a definition in JSON or YAML ("-" reads stdin)')
      .option('--uuid <uuid>', 'the domain\'s UUID (generated when left out)')
      .option('--start', 'start the domain once it is defined'),
  )
    .addOption(outputOption())
    .addHelpText('after', `
Examples:
  vmctl create web --kernel /var/lib/vmctl/vmlinux --memory 1G --vcpus 2 --disk /var/lib/vmctl/web.raw --nic bridge=br0
  vmctl create -f web.yaml --start`)
    .action(async (name: string | undefined, flags: CreateFlags, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      const spec = await specFrom(name, flags);
      const created = (await client.request('post', '/v1/domains', { body: spec })).data;
      const status = flags.start ? await runAction(cmd, 'start', created.name) : undefined;
      if (flags.output === 'json') printJson(out, status ? { ...created, state: status.state } : created);
      else {
        out.write(`Domain ${created.name} created (uuid ${created.uuid})\n`);
        if (status) out.write(`${created.name}: ${formatState(status)}\n`);
      }
    });
