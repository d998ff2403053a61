/**
 * `vmctl events [--domain NAME] [--since ID] [--count N]`: lifecycle events as they happen,
 * from the /v1/events WebSocket, until Ctrl-C (or N events). `--output json` prints one JSON
 * object per line.
 */
import { Command, InvalidArgumentError } from 'commander';
import { contextOf } from '../context.js';
import { CliError, ConnectError } from '../errors.js';
import { formatEvent, outputOption, type Event } from '../output.js';

function whole(v: string): number {
  if (!/^\d{1,15}$/.test(v)) throw new InvalidArgumentError('expected a whole number');
  return Number(v);
}

export const eventsCommand = () =>
  new Command('events')
    .description('Follow lifecycle events (Ctrl-C ends)')
    .option('--domain <name>', 'only this domain\'s events')
    .option('--since <id>', 'first replay the kept events after this id', whole)
    .option('--count <n>', 'end after this many events', whole)
    .addOption(outputOption())
    .action(async (opts: { domain?: string; since?: number; count?: number; output: string }, cmd: Command) => {
      const { client, out } = contextOf(cmd);
      const q = new URLSearchParams();
      if (opts.domain) q.set('domain', opts.domain);
      if (opts.since !== undefined) q.set('since', String(opts.since));
      let seen = 0;
      let done = false;
      let finished: () => void = () => {};
      const end = () => {
        done = true;
        finished();
      };
      // messages can come with the upgrade answer: the handler is there before the socket opens
      const ws = await client.websocket(`/v1/events${q.size ? `?${q}` : ''}`, (data) => {
        if (done) return;
        const e = JSON.parse(data.toString()) as Event;
        out.write(opts.output === 'json' ? `${JSON.stringify(e)}\n` : formatEvent(e));
        if (opts.count !== undefined && ++seen >= opts.count) end();
      });
      await new Promise<void>((resolve, reject) => {
        finished = () => {
          process.off('SIGINT', end);
          process.off('SIGTERM', end);
          ws.terminate();
          resolve();
        };
        if (done) finished();
        ws.on('close', (code, reason) => {
          if (code === 1000 || code === 1005) resolve();
          else if (code === 1006) reject(new ConnectError('the connection to vmctld was lost'));
          else reject(new CliError(`the events stream closed: ${reason.toString() || `code ${code}`}`));
        });
        process.once('SIGINT', end);
        process.once('SIGTERM', end);
        if (opts.count === 0) end();
      });
    });
