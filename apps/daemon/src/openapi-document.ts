/**
 * Builds the OpenAPI document the way the daemon serves it (GET /v1/openapi.json), from an
 * app on a throwaway store: what scripts/openapi.ts writes and the staleness test compares.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from './app.js';
import { createDaemon } from './daemon.js';
import { silentLogger } from './log.js';
import { serialiseDocument } from './openapi.js';

export async function generateOpenApi(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-openapi-'));
  const daemon = createDaemon({ stateDir: join(dir, 'state'), runtimeDir: join(dir, 'run'), log: silentLogger(), vmm: '/nonexistent', kvmDevice: null, defaultGuestDir: null });
  try {
    const app = await buildApp(daemon.appOptions());
    try {
      return serialiseDocument(app.swagger());
    } finally {
      await app.close();
    }
  } finally {
    daemon.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
