/**
 * `vmctl completion bash`: a bash completion script, made from the commands and options
 * this program defines, that completes domain names by asking the daemon
 * (`vmctl list -o name`, with the same --socket/--url as the command line being completed).
 *
 *   vmctl completion bash > /etc/bash_completion.d/vmctl     # or: source <(vmctl completion bash)
 */
import { Command, type Option } from 'commander';

const CONNECTION_OPTIONS = ['--socket', '--url', '--token', '--token-file'];
const FILE_OPTIONS = ['--kernel', '--initrd', '--disk', '--file', '-f', '--socket', '--token-file'];

function longs(options: readonly Option[]): string[] {
  return options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x));
}

/** The bash script for `program`. */
export function bashCompletion(program: Command): string {
  const cmds = program.commands.filter((c) => c.name() !== 'help');
  const names = cmds.flatMap((c) => [c.name(), ...c.aliases()]);
  const globals = [...longs(program.options), '--help'];
  const takesDomain = cmds.filter((c) => c.registeredArguments[0]?.name() === 'name' && c.name() !== 'create').flatMap((c) => [c.name(), ...c.aliases()]);
  const cases = cmds
    .map((c) => {
      const choiceCases = c.options
        .filter((o) => o.argChoices)
        .map((o) => `        ${[o.short, o.long].filter(Boolean).join('|')}) COMPREPLY=($(compgen -W "${o.argChoices!.join(' ')}" -- "$cur")); return ;;`);
      const head = `    ${[c.name(), ...c.aliases()].join('|')}) opts="${[...longs(c.options), '--help'].join(' ')}"`;
      return choiceCases.length ? `${head}\n      case "$prev" in\n${choiceCases.join('\n')}\n      esac ;;` : `${head} ;;`;
    })
    .join('\n');
  const valueFlags = [...new Set(cmds.flatMap((c) => c.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short])).concat(CONNECTION_OPTIONS))].filter(Boolean);
  return `# bash completion for vmctl. Install: vmctl completion bash > /etc/bash_completion.d/vmctl
# (or: source <(vmctl completion bash))
_vmctl() {
  local cur prev cmd="" i opts=""
  local -a conn=()
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      ${CONNECTION_OPTIONS.join('|')}) conn+=("\${COMP_WORDS[i]}" "\${COMP_WORDS[i+1]}"); ((i++)) ;;
      ${valueFlags.filter((f) => !CONNECTION_OPTIONS.includes(f!)).join('|')}) ((i++)) ;;
      -*) ;;
      *) [[ -z $cmd ]] && cmd="\${COMP_WORDS[i]}" ;;
    esac
  done
  case "$prev" in
    ${FILE_OPTIONS.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --url|--token|--cmdline|--memory|--vcpus|--nic|--uuid|--timeout|-t|--since|--count) return ;;
  esac
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${names.join(' ')} ${globals.join(' ')}" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts ${globals.join(' ')}" -- "$cur"))
    return
  fi
  case "$cmd" in
    ${takesDomain.join('|')})
      COMPREPLY=($(compgen -W "$(vmctl "\${conn[@]}" list -o name 2>/dev/null)" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
  esac
}
complete -F _vmctl vmctl
`;
}

export const completionCommand = () =>
  new Command('completion')
    .description('Print a shell completion script (bash)')
    .argument('[shell]', 'the shell', 'bash')
    .action((shell: string, _opts: unknown, cmd: Command) => {
      if (shell !== 'bash') cmd.error(`completion: only bash is supported, not ${JSON.stringify(shell)}`, { exitCode: 2 });
      // no daemon needed (nor a connection resolved): the script asks it for names when it runs
      process.stdout.write(bashCompletion(cmd.parent!));
    });
