/**
 * The web console: the page and scripts built from apps/daemon/web/ into dist/web/ (see
 * scripts/build-web.ts), served at /ui/ from memory. They are public — a browser cannot send
 * a bearer token when it loads a page — and hold no secrets: on the TCP listener the page asks
 * for the token, keeps it in sessionStorage, sends it on API calls, and opens its WebSockets
 * with console tickets. `/` redirects to `/ui/`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../errors.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/**
 * The page's own origin only; inline style attributes are allowed because xterm.js and noVNC
 * position their elements with them.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Where the build put the web console: dist/web beside dist/routes, or from src/ (tsx) the same dist/web. */
export function defaultWebDir(): string {
  const candidates = [new URL('../web/', import.meta.url), new URL('../../dist/web/', import.meta.url)].map((u) => fileURLToPath(u));
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[0]!;
}

interface Asset {
  body: Buffer;
  type: string;
}

/** Every file under `dir`, by its path relative to it; read once, at start. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (rel: string) => {
    for (const f of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${f}` : f;
      if (statSync(join(dir, r)).isDirectory()) walk(r);
      else if (TYPES[extname(f)]) assets.set(r, { body: readFileSync(join(dir, r)), type: TYPES[extname(f)]! });
    }
  };
  if (existsSync(join(dir, 'index.html'))) walk('');
  return assets;
}

export const webRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, opts) => {
  const dir = opts.dir ?? defaultWebDir();
  const assets = loadAssets(dir);
  const config = { public: true };
  const hide = { hide: true } as object;

  app.get('/', { config, schema: hide }, async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui', { config, schema: hide }, async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/*', { config, schema: hide }, async (req, reply) => {
    const rel = (req.params as { '*': string })['*'] || 'index.html';
    const asset = assets.get(rel);
    if (!asset) {
      throw new ApiError('ROUTE_NOT_FOUND', assets.size === 0 ? `The web console is not built (no ${join(dir, 'index.html')}): run npm run build -w @vmctl/daemon` : `No file ${rel} in the web console`);
    }
    return reply
      .header('content-type', asset.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', CSP)
      .send(asset.body);
  });
};
