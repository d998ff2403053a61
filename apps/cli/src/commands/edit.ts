/**
 * `vmctl edit NAME`: changes a domain's definition; it applies at the domain's next start.
 *   - with definition flags: PATCH of those fields (a --disk or --nic list replaces the list);
 *   - with -f FILE: PUT of the whole definition in the file (fields left out take defaults);
 *   - with neither: the definition opens as YAML in $VISUAL / $EDITOR (vi), and is PUT back
 *     with If-Match, so an edit made meanwhile by someone else is not overwritten (412).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { contextOf, type Context } from '../context.js';
import { addDefinitionOptions, bootFromFlags, editableDefinition, fieldsFromFlags, parseDefinitionText, readDefinitionFile, type DefinitionFlags, type DomainSpec } from '../definition.js';
import { CliError, UsageError } from '../errors.js';
import { outputOption, printJson, type Domain } from '../output.js';

interface EditFlags extends DefinitionFlags {
  file?: string;
  output: string;
}

const DEFINITION_FLAGS: (keyof DefinitionFlags)[] = ['kernel', 'initrd', 'cmdline', 'memory', 'vcpus', 'disk', 'nic', 'autostart', 'serialLog', 'display', 'onPoweroff', 'onReboot', 'onCrash'];

function report(ctx: Context, d: Domain, output: string): void {
  if (output === 'json') printJson(ctx.out, d);
  else ctx.out.write(`Domain ${d.name} updated${d.state === 'shutoff' ? '' : ` (it is ${d.state}: the change applies at its next start)`}\n`);
}

/** The editor session: YAML out, the user's changes back, or undefined when nothing changed. */
async function editInEditor(current: Domain): Promise<{ file: string; dir: string; text: string } | undefined> {
  const { default: YAML } = await import('yaml');
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-edit-'));
  const file = join(dir, `${current.name}.yaml`);
  const header = `# Domain ${current.name} (uuid ${current.uuid}). Save and quit to apply at its next start;\n# quit without saving to cancel. The name and UUID cannot change.\n`;
  const before = header + YAML.stringify(editableDefinition(current));
  writeFileSync(file, before, { mode: 0o600 });
  const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
  // through the shell: EDITOR may carry arguments ("code --wait")
  const r = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new CliError(`the editor (${editor}) exited with ${r.status ?? r.signal}; nothing was changed`);
  }
  const text = readFileSync(file, 'utf8');
  if (text === before) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return { file, dir, text };
}

export const editCommand = () =>
  addDefinitionOptions(
    new Command('edit')
      .description('Change a domain\'s definition: with flags, from a file (-f), or in $EDITOR')
      .argument('<name>', 'the domain')
      .option('-f, --file <file>', 'replace the whole definition with this JSON/YAML file ("-" reads stdin)'),
  )
    .addOption(outputOption())
    .action(async (name: string, flags: EditFlags, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { client } = ctx;
      const params = { name };
      const hasFlags = DEFINITION_FLAGS.some((k) => flags[k] !== undefined);
      const current = await client.request('get', '/v1/domains/{name}', { params });
      const etag = current.data.etag;

      if (flags.file) {
        const def = { ...(await readDefinitionFile(flags.file)), ...fieldsFromFlags(flags) } as DomainSpec;
        const boot = bootFromFlags(flags, def.boot);
        if (boot) def.boot = boot;
        if (def.name !== undefined && def.name !== name) throw new UsageError(`the file names domain ${def.name}, not ${name}`);
        report(ctx, (await client.request('put', '/v1/domains/{name}', { params, body: def })).data, flags.output);
        return;
      }
      if (hasFlags) {
        const patch = fieldsFromFlags(flags);
        const boot = bootFromFlags(flags, current.data.boot);
        if (boot && boot !== current.data.boot) patch.boot = boot;
        report(ctx, (await client.request('patch', '/v1/domains/{name}', { params, headers: { 'if-match': etag }, body: patch })).data, flags.output);
        return;
      }
      const edited = await editInEditor(current.data);
      if (!edited) {
        ctx.err.write('Edit cancelled: nothing changed.\n');
        return;
      }
      try {
        const def = await parseDefinitionText(edited.text, edited.file, process.cwd());
        const updated = await client.request('put', '/v1/domains/{name}', { params, headers: { 'if-match': etag }, body: def as DomainSpec });
        rmSync(edited.dir, { recursive: true, force: true });
        report(ctx, updated.data, flags.output);
      } catch (err) {
        ctx.err.write(`vmctl: your edit is kept in ${edited.file}\n`);
        throw err;
      }
    });
