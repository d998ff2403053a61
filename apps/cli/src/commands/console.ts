/**
 * `vmctl console NAME`: the domain's serial console on this terminal, through the daemon's
 * console WebSocket. The terminal is raw (every key goes to the guest, Ctrl-C included);
 * Ctrl-] detaches. On attach the daemon replays the last 1 MiB of output. The WebSocket —
 * and so this command — stays through guest reboots, and ends when the domain's worker ends.
 * Without a terminal, stdin is sent as it comes; Ctrl-] (0x1d) or the end of stdin detaches.
 */
import { Command } from 'commander';
import type WebSocket from 'ws';
import type { ApiClient } from '../api/client.js';
import { contextOf } from '../context.js';

/** Ctrl-]: telnet's and virsh's escape. */
export const ESCAPE = 0x1d;

export interface ConsoleIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const defaultIo = (): ConsoleIo => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });

/** How the session ended: the user detached, or the console closed (the worker ended). */
export type ConsoleEnd = 'detached' | 'closed';

export async function attachConsole(client: ApiClient, name: string, io: ConsoleIo = defaultIo()): Promise<ConsoleEnd> {
  const ws: WebSocket = await client.websocket(`/v1/domains/${encodeURIComponent(name)}/console`, (data) => io.stdout.write(data));
  const tty = io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function';
  // in raw mode the terminal no longer turns \n into \r\n: our own lines carry \r
  io.stderr.write(`Connected to domain ${name}. Escape character is ^] (Ctrl-]).\r\n`);
  if (tty) io.stdin.setRawMode!(true);

  return new Promise<ConsoleEnd>((resolve) => {
    let ending: ConsoleEnd | undefined;
    const finish = (how: ConsoleEnd, message: string) => {
      if (ending) return;
      ending = how;
      io.stdin.off('data', onInput);
      io.stdin.off('end', onEnd);
      if (tty) io.stdin.setRawMode!(false);
      io.stdin.pause();
      io.stderr.write(message);
      if (how === 'detached') {
        ws.close(1000, 'detached');
        // do not wait long for the daemon's side of the close handshake
        const t = setTimeout(() => ws.terminate(), 500);
        ws.once('close', () => {
          clearTimeout(t);
          resolve(how);
        });
      } else resolve(how);
    };
    const onInput = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const esc = b.indexOf(ESCAPE);
      const send = esc < 0 ? b : b.subarray(0, esc);
      if (send.length && ws.readyState === ws.OPEN) ws.send(send, { binary: true });
      if (esc >= 0) finish('detached', `\r\nDetached from domain ${name}.\r\n`);
    };
    const onEnd = () => finish('detached', `\r\nDetached from domain ${name} (end of input).\r\n`);
    ws.on('close', (code, reason) => {
      const why = reason.toString() || (code === 1000 ? 'the domain\'s worker ended' : `code ${code}`);
      finish('closed', `\r\nConsole closed: ${why}.\r\n`);
    });
    ws.on('error', () => ws.terminate());
    io.stdin.on('data', onInput);
    io.stdin.on('end', onEnd);
    io.stdin.resume();
  });
}

export const consoleCommand = () =>
  new Command('console')
    .description('Attach to a domain\'s serial console (Ctrl-] detaches); the last 1 MiB of output is replayed first')
    .argument('<name>', 'the domain')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await attachConsole(contextOf(cmd).client, name);
    });
