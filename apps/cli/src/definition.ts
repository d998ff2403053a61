/**
 * Domain definitions from the command line and from files: the flags `create` and `edit`
 * share, `--disk` and `--nic` specs, sizes, and JSON/YAML files. Pure parsing; the daemon
 * validates the result again (and is the authority on it).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { components } from './api/schema.js';
import { UsageError } from './errors.js';

export type DomainSpec = components['schemas']['DomainSpecInput'];
export type DomainPatch = components['schemas']['DomainPatchInput'];
export type DiskSpec = components['schemas']['DiskInput'];
export type NicSpec = components['schemas']['NicInput'];

/** Flags that set definition fields, as commander hands them over. */
export interface DefinitionFlags {
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  memory?: string;
  vcpus?: string;
  disk?: string[];
  nic?: string[];
  autostart?: boolean;
  serialLog?: boolean;
  display?: 'vnc' | 'none';
  onPoweroff?: 'destroy' | 'restart';
  onReboot?: 'restart' | 'destroy';
  onCrash?: 'preserve' | 'destroy' | 'restart';
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Adds the definition flags to `create` and `edit`. */
export function addDefinitionOptions(cmd: Command): Command {
  return cmd
    .option('--kernel <path>', 'guest kernel: a PVH ELF or a bzImage (a relative path is taken from here)')
    .option('--initrd <path>', 'initial ramdisk')
    .option('--cmdline <text>', 'kernel command line (default "console=ttyS0")')
    .option('--memory <size>', 'guest RAM: MiB, or with a unit: 512M, 2G')
    .option('--vcpus <n>', 'virtual CPUs')
    .option('--disk <spec>', 'a disk, repeatable, in order: PATH[,ro][,serial=ID][,format=raw|qcow2]', collect)
    .option('--nic <spec>', 'a NIC, repeatable: tap[=IFNAME][,mac=MAC] or bridge=BRIDGE[,mac=MAC]', collect)
    .option('--autostart', 'start the domain when the daemon starts')
    .option('--no-autostart', 'do not start it when the daemon starts')
    .option('--serial-log', 'keep the serial console output in the daemon\'s console log')
    .option('--no-serial-log', 'do not keep the serial console output')
    .addOption(new Option('--display <kind>', 'a graphical display (VNC: the web console, vmctl vnc), or none').choices(['vnc', 'none']))
    .addOption(new Option('--on-poweroff <policy>', 'when the guest powers off').choices(['destroy', 'restart']))
    .addOption(new Option('--on-reboot <policy>', 'when the guest reboots').choices(['restart', 'destroy']))
    .addOption(new Option('--on-crash <policy>', 'when the guest or its worker crashes').choices(['preserve', 'destroy', 'restart']));
}

/** "512", "512M", "512MiB", "2G", "2GiB", "1T" → MiB. */
export function parseMemory(text: string): number {
  const m = /^(\d+)\s*(M|MB|MiB|G|GB|GiB|T|TB|TiB)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--memory ${JSON.stringify(text)}: expected MiB or a size such as 512M or 2G`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'M')[0]!.toUpperCase();
  return n * (unit === 'G' ? 1024 : unit === 'T' ? 1024 * 1024 : 1);
}

function parseCount(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a whole number`);
  return Number(text);
}

/** `a,b=c` → the first part and key=value pairs (a bare key maps to ''). */
function splitSpec(text: string): { first: string; pairs: [string, string][] } {
  const [first = '', ...rest] = text.split(',');
  return {
    first,
    pairs: rest.map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
    }),
  };
}

/** `PATH[,ro][,serial=ID][,format=raw|qcow2]`; a relative path is taken from `base`. */
export function parseDiskSpec(text: string, base = process.cwd()): DiskSpec {
  const { first, pairs } = splitSpec(text);
  if (!first) throw new UsageError(`--disk ${JSON.stringify(text)}: the path comes first`);
  const disk: DiskSpec = { path: absolute(first, base) };
  for (const [k, v] of pairs) {
    if (k === 'ro' && v === '') disk.readonly = true;
    else if (k === 'rw' && v === '') disk.readonly = false;
    else if (k === 'serial' && v) disk.serial = v;
    else if (k === 'format' && (v === 'raw' || v === 'qcow2')) disk.format = v;
    else throw new UsageError(`--disk ${JSON.stringify(text)}: unknown option ${JSON.stringify(k)} (ro, serial=ID, format=raw|qcow2)`);
  }
  return disk;
}

/** `tap[=IFNAME][,mac=MAC]` or `bridge=BRIDGE[,mac=MAC]`. */
export function parseNicSpec(text: string): NicSpec {
  const { first, pairs } = splitSpec(text);
  const eq = first.indexOf('=');
  const [type, value] = eq < 0 ? [first, ''] : [first.slice(0, eq), first.slice(eq + 1)];
  let mac: string | undefined;
  for (const [k, v] of pairs) {
    if (k === 'mac' && v) mac = v.toLowerCase();
    else throw new UsageError(`--nic ${JSON.stringify(text)}: unknown option ${JSON.stringify(k)} (mac=MAC)`);
  }
  if (type === 'tap') return { type: 'tap', ...(value ? { ifname: value } : {}), ...(mac ? { mac } : {}) };
  if (type === 'bridge') {
    if (!value) throw new UsageError(`--nic ${JSON.stringify(text)}: bridge=BRIDGE names the bridge`);
    return { type: 'bridge', bridge: value, ...(mac ? { mac } : {}) };
  }
  throw new UsageError(`--nic ${JSON.stringify(text)}: expected tap[=IFNAME] or bridge=BRIDGE`);
}

function absolute(path: string, base: string): string {
  return isAbsolute(path) ? path : resolve(base, path);
}

/** The definition fields the flags set (only those given). */
export function fieldsFromFlags(f: DefinitionFlags): DomainPatch {
  const out: DomainPatch = {};
  if (f.vcpus !== undefined) out.vcpus = parseCount('--vcpus', f.vcpus);
  if (f.memory !== undefined) out.memory_mib = parseMemory(f.memory);
  if (f.disk) out.disks = f.disk.map((d) => parseDiskSpec(d));
  if (f.nic) out.nics = f.nic.map(parseNicSpec);
  if (f.autostart !== undefined) out.autostart = f.autostart;
  if (f.serialLog !== undefined) out.serial = { log: f.serialLog };
  if (f.display) out.display = f.display === 'none' ? null : { type: 'vnc' };
  if (f.onPoweroff) out.on_poweroff = f.onPoweroff;
  if (f.onReboot) out.on_reboot = f.onReboot;
  if (f.onCrash) out.on_crash = f.onCrash;
  return out;
}

/** The boot object after the flags: `base` (from a file or the stored definition) with the flags over it. */
export function bootFromFlags(f: DefinitionFlags, base?: DomainSpec['boot']): DomainSpec['boot'] | undefined {
  if (f.kernel === undefined && f.initrd === undefined && f.cmdline === undefined) return base;
  const kernel = f.kernel !== undefined ? absolute(f.kernel, process.cwd()) : base?.kernel;
  if (kernel === undefined) throw new UsageError('--kernel is required to define the boot (or give a definition file)');
  return {
    kernel,
    ...(f.initrd !== undefined ? { initrd: absolute(f.initrd, process.cwd()) } : base?.initrd ? { initrd: base.initrd } : {}),
    ...(f.cmdline !== undefined ? { cmdline: f.cmdline } : base?.cmdline !== undefined ? { cmdline: base.cmdline } : {}),
  };
}

/** Reads a definition file (JSON or YAML; `-` is stdin) into an object. */
export async function readDefinitionFile(file: string, stdin: () => string = () => readFileSync(0, 'utf8')): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? stdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseDefinitionText(text, file === '-' ? 'stdin' : file, file === '-' ? process.cwd() : dirname(resolve(file)));
}

/**
 * JSON or YAML text → a definition object, its relative host paths (boot.kernel,
 * boot.initrd, disks[].path) taken from `base` (the file's directory).
 */
export async function parseDefinitionText(text: string, what: string, base: string): Promise<Record<string, unknown>> {
  // loaded when needed: most commands never read a definition, and the parser is the
  // largest part of vmctl
  const { default: YAML } = await import('yaml');
  let value: unknown;
  try {
    // YAML 1.2 reads JSON as well; a JSON file's errors still point at the right line
    value = YAML.parse(text, { uniqueKeys: true });
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${what}: expected an object (a domain definition)`);
  const def = value as Record<string, unknown>;
  const boot = def.boot as Record<string, unknown> | undefined;
  if (boot && typeof boot === 'object') {
    for (const k of ['kernel', 'initrd']) if (typeof boot[k] === 'string') boot[k] = absolute(boot[k] as string, base);
  }
  if (Array.isArray(def.disks)) {
    for (const d of def.disks) if (d && typeof d === 'object' && typeof (d as DiskSpec).path === 'string') (d as DiskSpec).path = absolute((d as DiskSpec).path, base);
  }
  return def;
}

/** The writable fields of a stored domain: what `edit` opens and PUTs back. */
export function editableDefinition(d: components['schemas']['Domain']): Omit<components['schemas']['DomainReplaceInput'], 'name' | 'uuid'> {
  return {
    vcpus: d.vcpus,
    memory_mib: d.memory_mib,
    boot: d.boot,
    disks: d.disks,
    nics: d.nics,
    serial: d.serial,
    display: d.display ?? null,
    autostart: d.autostart,
    on_poweroff: d.on_poweroff,
    on_reboot: d.on_reboot,
    on_crash: d.on_crash,
  };
}
