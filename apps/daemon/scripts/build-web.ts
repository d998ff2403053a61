/**
 * Builds the web console (web/) into dist/web/: one ES module bundle (app.js, with noVNC and
 * xterm.js), one stylesheet (app.css) and index.html. Run by `npm run build`; the daemon
 * serves the result at /ui/ (src/routes/web.ts).
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist/web');

const BANNER = `/*! vmctl web console. Bundled: @novnc/novnc (MPL-2.0; its source is the @novnc/novnc npm package), @xterm/xterm and @xterm/addon-fit (MIT). */`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(root, 'web/main.ts') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // noVNC awaits at the top level of a module
  target: ['es2022', 'chrome100', 'firefox100', 'safari16'],
  outdir: out,
  minify: true,
  banner: { js: BANNER },
  logLevel: 'warning',
});
copyFileSync(join(root, 'web/index.html'), join(out, 'index.html'));
