/**
 * The bench's C helpers (bench/tools/*.c), compiled into bench/out/ when missing or older than
 * their source. run.sh builds tsc-hz itself; the section that needs another helper asks here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './machines.js';

export function tool(name: string): string {
  const src = resolve(ROOT, 'bench/tools', `${name}.c`);
  const out = resolve(ROOT, 'bench/out', name);
  if (!existsSync(out) || statSync(src).mtimeMs > statSync(out).mtimeMs) {
    mkdirSync(resolve(ROOT, 'bench/out'), { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}
