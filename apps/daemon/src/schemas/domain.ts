/**
 * The domain resource: what a guest is (its definition) and what it is doing (its state),
 * kept apart as libvirt does. Definitions change through PUT/PATCH and take effect at the
 * next start; state changes only through actions and the guest itself.
 */
import { z } from 'zod';
import { DomainName, HostPath, Timestamp, Uuid } from './common.js';

/** Highest vCPU count: xAPIC ids are 8 bits and 0xff is the broadcast id. */
export const MAX_VCPUS = 254;
/** Smallest guest RAM the VMM lays out sensibly (page tables, PVH start info, a kernel). */
export const MIN_MEMORY_MIB = 16;
/** 1 TiB: the ceiling that keeps a typo from asking the host for the moon. */
export const MAX_MEMORY_MIB = 1024 * 1024;
/** Linux x86's COMMAND_LINE_SIZE. */
export const MAX_CMDLINE = 2048;
export const MAX_DISKS = 16;
export const MAX_NICS = 8;

export const DOMAIN_STATES = ['shutoff', 'starting', 'running', 'paused', 'stopping', 'crashed'] as const;
export const DomainStateName = z.enum(DOMAIN_STATES).meta({
  id: 'DomainState',
  description: 'shutoff → starting → running ⇄ paused → stopping → shutoff; crashed when the worker or the guest died unexpectedly.',
});
export type DomainStateName = z.infer<typeof DomainStateName>;

export const Boot = z
  .strictObject({
    kernel: HostPath.meta({ description: 'The guest kernel: a PVH ELF (vmlinux, the test guests) or a bzImage.' }),
    initrd: HostPath.optional().meta({ description: 'An initial ramdisk' }),
    cmdline: z
      .string()
      .max(MAX_CMDLINE)
      // eslint-disable-next-line no-control-regex
      .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
      .optional()
      .meta({ description: 'The kernel command line (default `console=ttyS0`)' }),
  })
  .meta({ id: 'Boot', description: 'Direct kernel boot. (Firmware boot, `{firmware}`, comes later.)' });

const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const IfName = z.string().regex(IFNAME_RE, 'must be a Linux interface name: 1–15 of A-Z, a-z, 0-9, "_", ".", "-"');
/** A unicast MAC address, lower case. */
export const MAC_RE = /^[0-9a-f][02468ace](?::[0-9a-f]{2}){5}$/;
const Mac = z
  .string()
  .regex(MAC_RE, 'must be a unicast MAC address in lower case, e.g. 02:00:00:12:34:56')
  .meta({ description: 'A unicast MAC address; assigned (locally administered, 02:…) when omitted' });

export const Disk = z
  .strictObject({
    path: HostPath,
    format: z.enum(['raw', 'qcow2']).default('raw'),
    readonly: z.boolean().default(false),
    serial: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,20}$/, 'must be 1–20 of A-Z, a-z, 0-9, "_", ".", "-"')
      .optional()
      .meta({ description: 'The serial number the guest sees (virtio-blk allows 20 bytes)' }),
  })
  .meta({ id: 'Disk', description: 'A virtio-blk disk backed by a host file, in the order given. The VMM reads raw images; a qcow2 disk is stored but start refuses it (422 UNSUPPORTED_CONFIG) until the VMM reads qcow2.' });

export const Nic = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('tap'), ifname: IfName.optional().meta({ description: 'An existing tap device; created per start when omitted' }), mac: Mac.optional() }),
    z.strictObject({ type: z.literal('bridge'), bridge: IfName.meta({ description: 'The host bridge the tap device joins' }), mac: Mac.optional() }),
  ])
  .meta({
    id: 'Nic',
    description: 'A virtio-net interface over a tap device. `tap` uses the named tap (created by the worker if missing) or, without `ifname`, one the worker creates for each start and the daemon brings up, named `vm<first 10 hex digits of the UUID>n<index>`; `bridge` uses such a tap and the daemon adds it to the bridge. A tap the worker created goes away with the worker.',
  });
export type Nic = z.output<typeof Nic>;

export const Serial = z
  .strictObject({
    log: z.boolean().default(false).meta({ description: 'Append the serial console output to the daemon\'s console log for this domain' }),
  })
  .meta({ id: 'Serial', description: 'The serial console (COM1). It is always there; the console WebSocket attaches to it.' });

export const Display = z
  .strictObject({
    type: z.literal('vnc').meta({ description: 'VNC (RFB 3.8), the only kind so far' }),
  })
  .meta({
    id: 'Display',
    description: 'A graphical display: a bochs-display framebuffer (PCI 1234:1111) with a PS/2 keyboard and mouse and a virtio tablet. The worker serves it over VNC on a Unix socket only the daemon reaches; clients use `GET /v1/domains/{name}/vnc` (a WebSocket), the web console at `/ui/`, or `vmctl vnc`.',
  });
export type Display = z.output<typeof Display>;

export const OnPoweroff = z.enum(['destroy', 'restart']).meta({ description: 'When the guest powers off by itself: destroy → shutoff; restart → start it again' });
export const OnReboot = z.enum(['restart', 'destroy']).meta({ description: 'When the guest reboots: restart in place (the worker and the console stay); destroy → shutoff' });
export const OnCrash = z.enum(['preserve', 'destroy', 'restart']).meta({
  description: 'When the guest crashes or its worker dies: preserve → state crashed (kept for inspection); destroy → shutoff; restart → start it again (at most 5 times in 60 s, then crashed)',
});

function uniquePaths(disks: { path: string }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  disks.forEach((d, i) => {
    if (seen.has(d.path)) ctx.addIssue({ code: 'custom', path: [i, 'path'], message: `disk path ${d.path} is used twice` });
    seen.add(d.path);
  });
}

const Disks = z.array(Disk).max(MAX_DISKS).superRefine(uniquePaths);
const Nics = z.array(Nic).max(MAX_NICS);
const Vcpus = z.int().min(1).max(MAX_VCPUS).meta({ description: 'Virtual CPUs' });
const MemoryMib = z.int().min(MIN_MEMORY_MIB).max(MAX_MEMORY_MIB).meta({ description: 'Guest RAM in MiB' });

/** The writable part of a domain, with defaults filled in: what POST and PUT take. */
export const DomainSpec = z
  .strictObject({
    name: DomainName,
    uuid: Uuid.optional().meta({ description: 'Generated when omitted' }),
    vcpus: Vcpus.default(1),
    memory_mib: MemoryMib.default(256),
    boot: Boot.optional().meta({
      description: "Left out: the host's default guest (vmctl's Linux kernel and initramfs, see `default_guest` in GET /v1/host), written into the definition at create",
    }),
    disks: Disks.default([]),
    nics: Nics.default([]),
    serial: Serial.default({ log: false }),
    display: Display.nullable().default(null).meta({ description: 'A graphical display; null (the default) for none: the serial console only' }),
    autostart: z.boolean().default(false).meta({ description: 'Start the domain when the daemon starts (after a host boot)' }),
    on_poweroff: OnPoweroff.default('destroy'),
    on_reboot: OnReboot.default('restart'),
    on_crash: OnCrash.default('preserve'),
  })
  .meta({ id: 'DomainSpec', description: 'A domain definition. Unknown fields are refused. Changes take effect at the next start.' });
export type DomainSpec = z.output<typeof DomainSpec>;

/** PUT: a whole definition; `name` may be left out (the path names the domain). */
export const DomainReplace = DomainSpec.extend({
  name: DomainName.optional().meta({ description: 'Must equal the current name if given' }),
  uuid: Uuid.optional().meta({ description: 'Must equal the current UUID if given' }),
}).meta({ id: 'DomainReplace', description: 'A whole domain definition for PUT. Unknown fields are refused; fields left out take their defaults.' });

/** PATCH: any subset of the writable fields, each replacing the stored value wholesale. */
export const DomainPatch = z
  .strictObject({
    name: DomainName.optional().meta({ description: 'Must equal the current name if given' }),
    uuid: Uuid.optional().meta({ description: 'Must equal the current UUID if given' }),
    vcpus: Vcpus.optional(),
    memory_mib: MemoryMib.optional(),
    boot: Boot.optional(),
    disks: Disks.optional(),
    nics: Nics.optional(),
    serial: Serial.optional(),
    display: Display.nullable().optional().meta({ description: 'A display, or null to remove it' }),
    autostart: z.boolean().optional(),
    on_poweroff: OnPoweroff.optional(),
    on_reboot: OnReboot.optional(),
    on_crash: OnCrash.optional(),
  })
  .meta({ id: 'DomainPatch', description: 'A partial definition: each field given replaces the stored one (objects and arrays are replaced, not merged).' });
export type DomainPatch = z.output<typeof DomainPatch>;

/** The definition fields as stored, every one present. */
export const DomainDefinition = z.object({
  vcpus: Vcpus,
  memory_mib: MemoryMib,
  boot: Boot,
  disks: z.array(Disk),
  nics: z.array(Nic),
  serial: Serial,
  display: Display.nullable(),
  autostart: z.boolean(),
  on_poweroff: OnPoweroff,
  on_reboot: OnReboot,
  on_crash: OnCrash,
});
export type DomainDefinition = z.output<typeof DomainDefinition>;

export const Domain = z
  .object({
    name: DomainName,
    uuid: Uuid,
    ...DomainDefinition.shape,
    state: DomainStateName,
    created_at: Timestamp,
    updated_at: Timestamp,
    etag: z.string().meta({ description: 'The same value as the ETag header; send it back in If-Match to update safely' }),
  })
  .meta({ id: 'Domain', description: 'A domain: its definition, its current state, and read-only bookkeeping.' });
export type Domain = z.output<typeof Domain>;

export const DomainList = z.object({ items: z.array(Domain) }).meta({ id: 'DomainList' });

export const WorkerStats = z
  .object({
    uptime_ms: z.number(),
    rss_bytes: z.number(),
    reboots: z.int(),
    vcpus: z.array(z.object({ exits: z.number(), missed_pio: z.number(), missed_mmio: z.number() })),
  })
  .meta({ id: 'WorkerStats' });
export type WorkerStats = z.output<typeof WorkerStats>;

export const DomainStatus = z
  .object({
    name: DomainName,
    uuid: Uuid,
    state: DomainStateName,
    reason: z.string().nullable().meta({ description: 'Why the domain entered this state, e.g. `user`, `poweroff`, `worker-exited`, `shutdown-timeout`' }),
    since: Timestamp,
    pid: z.int().nullable().meta({ description: 'The worker\'s process id while it runs' }),
    started_at: Timestamp.nullable(),
    stats: WorkerStats.nullable().meta({ description: 'Live counters from the worker, when it runs and answers' }),
  })
  .meta({ id: 'DomainStatus', description: 'What a domain is doing now.' });
export type DomainStatus = z.output<typeof DomainStatus>;

export const NameParams = z.strictObject({ name: DomainName });

const BoolString = z.enum(['true', 'false']).transform((v) => v === 'true');

export const ListQuery = z.strictObject({
  state: DomainStateName.optional().meta({ description: 'Only domains in this state' }),
});

export const DeleteQuery = z.strictObject({
  force: BoolString.optional().meta({ description: '`true` stops a running domain first' }),
});

export const ShutdownQuery = z.strictObject({
  timeout: z
    .string()
    .regex(/^\d{1,4}$/, 'must be a whole number of seconds')
    .transform(Number)
    .pipe(z.int().max(3600))
    .optional()
    .meta({ description: 'Seconds to wait for the guest before forcing it off (default 60; 0 forces at once)' }),
  wait: BoolString.optional().meta({ description: '`true` answers only when the domain is shutoff; by default the answer (202) comes once the power button is pressed' }),
});

/** Action requests carry no body; an empty JSON object is accepted. */
export const EmptyBody = z.strictObject({}).nullish();

export const ACTIONS = ['start', 'shutdown', 'stop', 'reboot', 'reset', 'pause', 'resume'] as const;
export type Action = (typeof ACTIONS)[number];
