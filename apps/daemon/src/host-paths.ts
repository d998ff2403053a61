/**
 * Checks the host paths a domain names (kernel, initrd, disks) against the host: the API
 * caller names files the daemon (root) will open, so a path must be clean, must exist as a
 * regular file, and — when the daemon was given --allow-path roots — must lie inside one of
 * them even after symlinks are resolved.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { ApiError } from './errors.js';
import { isCleanAbsolutePath } from './schemas/common.js';
import type { DomainDefinition } from './schemas/domain.js';

export class HostPathPolicy {
  private readonly roots: string[];

  /** `roots`: absolute directories; empty means any path on the host. */
  constructor(roots: readonly string[] = []) {
    this.roots = roots.map((r) => (r.length > 1 && r.endsWith('/') ? r.slice(0, -1) : r));
    for (const r of this.roots) {
      if (!isCleanAbsolutePath(r) && r !== '/') throw new Error(`--allow-path ${JSON.stringify(r)} is not an absolute, normalised path`);
    }
  }

  get allowedRoots(): readonly string[] {
    return this.roots;
  }

  private inside(p: string): boolean {
    return this.roots.length === 0 || this.roots.some((r) => r === '/' || p === r || p.startsWith(`${r}/`));
  }

  /** Throws PATH_NOT_ALLOWED or PATH_NOT_FOUND unless `path` is a readable regular file we may name. */
  checkFile(what: string, path: string, writable = false): void {
    if (!isCleanAbsolutePath(path)) throw new ApiError('PATH_NOT_ALLOWED', `${what} ${JSON.stringify(path)} is not an absolute, normalised path`);
    if (!this.inside(path)) throw new ApiError('PATH_NOT_ALLOWED', `${what} ${path} is outside the allowed directories (${this.roots.join(', ')})`);
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      throw new ApiError('PATH_NOT_FOUND', `${what} ${path} does not exist`);
    }
    if (!this.inside(real)) throw new ApiError('PATH_NOT_ALLOWED', `${what} ${path} resolves to ${real}, outside the allowed directories`);
    if (!statSync(real).isFile()) throw new ApiError('PATH_NOT_FOUND', `${what} ${path} is not a regular file`);
    try {
      accessSync(real, writable ? constants.R_OK | constants.W_OK : constants.R_OK);
    } catch {
      throw new ApiError('PATH_NOT_FOUND', `${what} ${path} cannot be ${writable ? 'read and written' : 'read'} by the daemon`);
    }
  }

  /** Checks every file a definition names. */
  checkDefinition(def: Pick<DomainDefinition, 'boot' | 'disks'>): void {
    this.checkFile('boot.kernel', def.boot.kernel);
    if (def.boot.initrd) this.checkFile('boot.initrd', def.boot.initrd);
    def.disks.forEach((d, i) => this.checkFile(`disks[${i}].path`, d.path, !d.readonly));
  }
}
