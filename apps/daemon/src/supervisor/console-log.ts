/**
 * Keeps a domain's serial output in a file (`serial.log: true`): a console client like any
 * viewer, appending what the worker sends. On re-attach the worker replays up to 1 MiB it
 * already sent, so a marker line separates the replay from what came before.
 */
import { connect, type Socket } from 'node:net';
import { createWriteStream, type WriteStream } from 'node:fs';

export class ConsoleLog {
  private readonly sock: Socket;
  private readonly out: WriteStream;

  constructor(consoleSocket: string, file: string, note: string) {
    this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.out.on('error', () => this.close());
    this.out.write(`\n--- vmctld ${new Date().toISOString()}: ${note} ---\n`);
    this.sock = connect(consoleSocket);
    this.sock.on('data', (b: Buffer) => this.out.write(b));
    this.sock.on('error', () => this.close());
    this.sock.on('close', () => this.out.end());
  }

  close(): void {
    this.sock.destroy();
    this.out.end();
  }
}
