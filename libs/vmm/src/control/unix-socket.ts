import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync } from 'node:fs';

/**
 * Listens on a Unix socket that only its owner may use (mode 0600), replacing a stale
 * socket file left by a worker that died.
 */
export function listenUnix(path: string, onConnection: (sock: Socket) => void): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer(onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      resolve(server);
    });
  });
}
