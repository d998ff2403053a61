/**
 * The `vmctl` program: global connection options and one subcommand per file in commands/.
 */
import { Command } from 'commander';
import { DEFAULT_SOCKET } from './api/connection.js';
import { completionCommand } from './commands/completion.js';
import { consoleCommand } from './commands/console.js';
import { createCommand } from './commands/create.js';
import { deleteCommand } from './commands/delete.js';
import { editCommand } from './commands/edit.js';
import { eventsCommand } from './commands/events.js';
import { hostCommand } from './commands/host.js';
import { listCommand } from './commands/list.js';
import { pauseCommand } from './commands/pause.js';
import { rebootCommand } from './commands/reboot.js';
import { resetCommand } from './commands/reset.js';
import { resumeCommand } from './commands/resume.js';
import { showCommand } from './commands/show.js';
import { shutdownCommand } from './commands/shutdown.js';
import { startCommand } from './commands/start.js';
import { stopCommand } from './commands/stop.js';
import { vncCommand } from './commands/vnc.js';

export const VERSION = '0.1.0';

const EXIT_CODES_HELP = `
Exit status: 0 done; 1 error (the daemon or vmctl failed); 2 usage or invalid request;
3 not found; 4 conflict (exists, wrong state, running, changed meanwhile);
5 cannot reach the daemon (no socket, refused, permission denied, bad token).

Connection: the Unix socket ${DEFAULT_SOCKET} unless --socket (VMCTL_SOCKET) or
--url (VMCTL_URL) with a token from --token, --token-file, VMCTL_TOKEN or VMCTL_TOKEN_FILE.`;

export function createProgram(): Command {
  const program = new Command('vmctl')
    .description('Manage vmctl virtual machines (domains) through the vmctld daemon')
    .version(VERSION, '-V, --version')
    .option('--socket <path>', `the daemon's Unix socket (env VMCTL_SOCKET; default ${DEFAULT_SOCKET})`)
    .option('--url <url>', 'the daemon\'s TCP listener, http://HOST:PORT (env VMCTL_URL)')
    .option('--token <token>', 'bearer token for --url (env VMCTL_TOKEN)')
    .option('--token-file <file>', 'read the bearer token from a file (env VMCTL_TOKEN_FILE)')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(vmctl --help for usage)')
    .exitOverride();
  for (const make of [
    createCommand, listCommand, showCommand, editCommand, startCommand, shutdownCommand, stopCommand,
    rebootCommand, resetCommand, pauseCommand, resumeCommand, deleteCommand, consoleCommand, vncCommand, eventsCommand,
    hostCommand, completionCommand,
  ]) {
    const cmd = make();
    // addCommand() does not pass the program's settings on: exitOverride and the help hint
    cmd.copyInheritedSettings(program);
    program.addCommand(cmd);
  }
  return program;
}
