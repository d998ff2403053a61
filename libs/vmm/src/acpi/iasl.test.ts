/**
 * The tables as ACPICA sees them: dumped from guest memory to files, disassembled with
 * `iasl -d`, compiled back, and the DSDT loaded and run by `acpiexec`. ACPICA is the ACPI
 * implementation inside Linux, so what it reads here is what a Linux guest reads.
 * Needs Debian's acpica-tools (scripts/setup.sh installs it); without it the tests skip, loudly.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../memory/guest-memory.js';
import { MIB } from '../memory/layout.js';
import { pciIntxRoutes } from '../pci/intx.js';
import { type AcpiOptions, writeAcpiTables } from './acpi.js';

const CPUS = 4;
/** The routes PciBus.intxRoutes() gives: every slot and pin of bus 0. */
const ROUTES = pciIntxRoutes();

function available(tool: string): boolean {
  return spawnSync(tool, ['-v'], { stdio: 'ignore' }).error === undefined;
}
const hasIasl = available('iasl');
const hasAcpiexec = available('acpiexec');
if (!hasIasl) {
  console.log('\n**** SKIP: iasl not installed (apt-get install acpica-tools): ACPICA did not check the ACPI tables ****\n');
}
const skipIasl = hasIasl ? false : 'iasl not installed (apt-get install acpica-tools)';
const skipAcpiexec = hasAcpiexec ? false : 'acpiexec not installed (apt-get install acpica-tools)';

const dir = mkdtempSync(join(tmpdir(), 'vmctl-acpi-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Writes the tables reachable from the RSDP to `<prefix><signature>.dat` files, as acpidump -b
 * does, and returns them by that name.
 */
function dumpTables(prefix: string, options: AcpiOptions): Map<string, Uint8Array> {
  const mem = GuestMemory.anonymous(64 * MIB);
  const { rsdp } = writeAcpiTables(mem, options);
  const bytes = (addr: number, length: number) => {
    const b = new Uint8Array(length);
    mem.read(addr, b);
    return b;
  };
  const table = (addr: number) => bytes(addr, mem.readU32(addr + 4));
  const tables = new Map<string, Uint8Array>();
  const xsdtAddr = Number(mem.readU64(rsdp + 24));
  tables.set('xsdt', table(xsdtAddr));
  for (let p = xsdtAddr + 36; p < xsdtAddr + mem.readU32(xsdtAddr + 4); p += 8) {
    const t = table(Number(mem.readU64(p)));
    const sig = String.fromCharCode(...t.subarray(0, 4)).toLowerCase();
    tables.set(sig, t);
    if (sig === 'facp') {
      tables.set('facs', bytes(mem.readU32(Number(mem.readU64(p)) + 36), 64));
      tables.set('dsdt', table(mem.readU32(Number(mem.readU64(p)) + 40)));
    }
  }
  const named = new Map([...tables].map(([sig, t]) => [`${prefix}${sig}`, t]));
  for (const [name, t] of named) writeFileSync(join(dir, `${name}.dat`), t);
  return named;
}

function run(tool: string, args: string[]): string {
  const r = spawnSync(tool, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.error, undefined, `${tool} ${args.join(' ')}`);
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} failed:\n${output}`);
  return output;
}

/** The tables of a machine without PCI as `xsdt`, `dsdt`, ...; with PCI as `pci-xsdt`, ... */
const tables = hasIasl
  ? new Map([...dumpTables('', { cpus: CPUS }), ...dumpTables('pci-', { cpus: CPUS, pci: { routes: ROUTES } })])
  : new Map<string, Uint8Array>();
const PCI_TABLES = ['pci-xsdt', 'pci-facp', 'pci-facs', 'pci-apic', 'pci-dsdt', 'pci-mcfg'];
const disassembly = new Map<string, string>();
/** `iasl -d` each table once; the tests below read the .dsl files. */
function disassemble(name: string): string {
  let dsl = disassembly.get(name);
  if (dsl === undefined) {
    const output = run('iasl', ['-d', `${name}.dat`]);
    assert.doesNotMatch(output, /warning|error/i, `iasl -d ${name}.dat:\n${output}`);
    dsl = readFileSync(join(dir, `${name}.dsl`), 'utf8');
    disassembly.set(name, dsl);
  }
  return dsl;
}

/** A field line of iasl's data-table disassembly, e.g. "SCI Interrupt : 0009". */
function field(dsl: string, label: string): string[] {
  const re = new RegExp(`^(?:\\[[^\\]]*\\])?\\s*${label.replace(/[()[\]]/g, '\\$&')} : (.*)$`, 'gm');
  return [...dsl.matchAll(re)].map((m) => m[1]!.trim());
}

test('iasl disassembles XSDT, FADT, FACS, MADT and DSDT without a warning or a bad checksum', { skip: skipIasl }, () => {
  for (const name of ['xsdt', 'facp', 'facs', 'apic', 'dsdt']) {
    const dsl = disassemble(name);

    assert.doesNotMatch(dsl, /Incorrect checksum|Invalid|\*\*\*\*/, name);
  }
});

test('iasl reads the FADT fields the PM1 block, SCI and reset need', { skip: skipIasl }, () => {
  const dsl = disassemble('facp');

  assert.deepEqual(field(dsl, 'Revision'), ['06']);
  assert.deepEqual(field(dsl, 'SCI Interrupt'), ['0009']);
  assert.deepEqual(field(dsl, 'SMI Command Port'), ['00000000']);
  assert.deepEqual(field(dsl, 'PM1A Event Block Address'), ['00000600']);
  assert.deepEqual(field(dsl, 'PM1A Control Block Address'), ['00000604']);
  assert.deepEqual(field(dsl, 'PM1 Event Block Length'), ['04']);
  assert.deepEqual(field(dsl, 'PM1 Control Block Length'), ['02']);
  assert.deepEqual(field(dsl, 'Control Method Power Button (V1)'), ['0']);
  assert.deepEqual(field(dsl, 'Reset Register Supported (V2)'), ['1']);
  assert.deepEqual(field(dsl, 'Hardware Reduced (V5)'), ['0']);
  assert.deepEqual(field(dsl, '8042 Present on ports 60/64 (V2)'), ['1']);
  assert.deepEqual(field(dsl, 'Value to cause reset'), ['06']);
  assert.ok(field(dsl, 'Address').includes('0000000000000CF9'), 'RESET_REG at 0xcf9');
  assert.ok(field(dsl, 'Address').includes('0000000000000600'), 'X_PM1a_EVT_BLK');
  assert.ok(field(dsl, 'Address').includes('0000000000000604'), 'X_PM1a_CNT_BLK');
});

test('iasl reads one local APIC per vCPU, the IOAPIC, both overrides and the NMI in the MADT', { skip: skipIasl }, () => {
  const dsl = disassemble('apic');

  assert.equal(field(dsl, 'Subtable Type').filter((t) => t === '00 [Processor Local APIC]').length, CPUS);
  assert.deepEqual(field(dsl, 'Local Apic ID'), ['00', '01', '02', '03']);
  assert.deepEqual(field(dsl, 'Local Apic Address'), ['FEE00000']);
  assert.deepEqual(field(dsl, 'I/O Apic ID'), ['00']);
  assert.ok(field(dsl, 'Address').includes('FEC00000'));
  assert.deepEqual(field(dsl, 'Source'), ['00', '09']);
  assert.deepEqual(field(dsl, 'Interrupt'), ['00000000', '00000002', '00000009']); // GSI base, then the overrides
  assert.deepEqual(field(dsl, 'Interrupt Input LINT'), ['01']);
  assert.deepEqual(field(dsl, 'PC-AT Compatibility'), ['1']);
});

test('iasl decompiles the DSDT to \\_S5 and the legacy devices', { skip: skipIasl }, () => {
  const dsl = disassemble('dsdt');

  assert.match(dsl, /DefinitionBlock \("", "DSDT", 2, "VMCTL ", "VMCTLVM "/);
  assert.match(dsl, /Name \(_S5, Package \(0x04\)\s*\/\/ _S5_: S5 System State\s*\{\s*0x05,\s*0x05,\s*Zero,\s*Zero\s*\}\)/);
  assert.match(dsl, /Scope \(\\_SB\)/);
  for (const [dev, hid] of [['COM1', 'PNP0501'], ['KBD', 'PNP0303'], ['MOU', 'PNP0F13'], ['RTC', 'PNP0B00']]) {
    assert.match(dsl, new RegExp(`Device \\(${dev}\\)\\s*\\{\\s*Name \\(_HID, EisaId \\("${hid}"\\)`), dev);
  }
  assert.match(dsl, /IO \(Decode16,\s*0x03F8, +\/\/ Range Minimum\s*0x03F8, +\/\/ Range Maximum\s*0x01, +\/\/ Alignment\s*0x08,/);
  for (const irq of [4, 1, 12, 8]) assert.match(dsl, new RegExp(`IRQNoFlags \\(\\)\\s*\\{${irq}\\}`));
});

test('iasl compiles each disassembly back to the same table', { skip: skipIasl }, () => {
  for (const name of ['xsdt', 'facp', 'facs', 'apic', 'dsdt', ...PCI_TABLES]) {
    disassemble(name);
    // -on keeps \_SB as written rather than shortening it to _SB at the root.
    const output = run('iasl', ['-on', '-p', `rt-${name}`, `${name}.dsl`]);
    assert.match(output, /Compilation successful\. 0 Errors, 0 Warnings/, name);
    const original = tables.get(name)!;
    const rebuilt = new Uint8Array(readFileSync(join(dir, `rt-${name}.aml`)));

    // iasl stamps its own creator id and revision (bytes 28-35) and so a new checksum (byte 9).
    const stamped = (i: number) => name !== 'facs' && (i === 9 || (i >= 28 && i < 36));
    const comparable = (t: Uint8Array) => Uint8Array.from(t, (b, i) => (stamped(i) ? 0 : b));
    assert.deepEqual(comparable(rebuilt), comparable(original), name);
  }
});

/** The DSDT written by hand, with `more` ASL at the end of \_SB. */
function referenceDsdt(more = ''): string {
  return String.raw`DefinitionBlock ("", "DSDT", 2, "VMCTL ", "VMCTLVM ", 1)
{
    Name (_S5, Package () { 5, 5, 0, 0 })
    Scope (\_SB)
    {
        Device (COM1) {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, 1)
            Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8) IRQNoFlags () {4} })
        }
        Device (KBD) {
            Name (_HID, EisaId ("PNP0303"))
            Name (_CRS, ResourceTemplate () {
                IO (Decode16, 0x60, 0x60, 1, 1) IO (Decode16, 0x64, 0x64, 1, 1) IRQNoFlags () {1} })
        }
        Device (MOU) {
            Name (_HID, EisaId ("PNP0F13"))
            Name (_CRS, ResourceTemplate () { IRQNoFlags () {12} })
        }
        Device (RTC) {
            Name (_HID, EisaId ("PNP0B00"))
            Name (_CRS, ResourceTemplate () { IO (Decode16, 0x70, 0x70, 1, 2) IRQNoFlags () {8} })
        }
${more}
    }
}
`;
}

test('iasl compiles the DSDT written as ASL to the same AML', { skip: skipIasl }, () => {
  writeFileSync(join(dir, 'reference.asl'), referenceDsdt());

  run('iasl', ['-on', '-p', 'reference', 'reference.asl']);

  const reference = new Uint8Array(readFileSync(join(dir, 'reference.aml')));
  const ours = tables.get('dsdt')!;
  assert.deepEqual(ours.subarray(36), reference.subarray(36), 'the AML');
  assert.deepEqual(ours.subarray(0, 9), reference.subarray(0, 9), 'signature, length, revision');
});

test('acpiexec loads the tables, evaluates \\_S5 and _CRS, and enters S5', { skip: skipIasl || skipAcpiexec }, () => {
  const output = run('acpiexec', [
    '-b',
    'evaluate \\_S5; evaluate \\_SB.COM1._CRS; evaluate \\_SB.RTC._HID; sleep 5',
    'facp.dat',
    'dsdt.dat',
    'apic.dat',
  ]);

  assert.match(output, /DSDT: VMCTLVM .*4 Devices/);
  assert.match(output, /Evaluating \\_S5[\s\S]*Contains 4 Elements:\s*\[Integer\] = 0+5\s*\[Integer\] = 0+5\s/);
  assert.match(output, /\[Buffer\] Length 0D =\s+0000: 47 01 F8 03 F8 03 01 08 22 10 00 79 00/);
  assert.match(output, /\[Integer\] = 00000000000BD041/, 'EisaId("PNP0B00")');
  // ACPICA writes SLP_TYP 5 with SLP_EN to PM1_CNT. (Coming back from S5 then fails for want
  // of \_S0: nothing returns from soft-off, and neither does a Linux guest.)
  assert.match(output, /Register values for sleep state S5: Sleep-A: 05, Sleep-B: 05/);
  assert.match(output, /Entering sleep state \[S5\]/);
  const complaints = output.split('\n').filter((l) => /ACPI (Error|Exception|Warning)/.test(l));
  assert.deepEqual(complaints.filter((l) => !/AE_NOT_FOUND, During invocation of sleep state S5/.test(l)), []);
});

test("iasl disassembles a PCI machine's tables, the MCFG too, without a warning or a bad checksum", { skip: skipIasl }, () => {
  for (const name of PCI_TABLES) {
    const dsl = disassemble(name);

    assert.doesNotMatch(dsl, /Incorrect checksum|Invalid|\*\*\*\*/, name);
  }
  assert.equal(field(disassemble('pci-xsdt'), 'ACPI Table Address   \\d').length, 3, 'FADT, MADT, MCFG');
  assert.deepEqual(field(disassemble('pci-facp'), 'MSI Not Supported (V4)'), ['0']);
  assert.deepEqual(field(disassemble('facp'), 'MSI Not Supported (V4)'), ['1'], 'without PCI, as before');
});

test('iasl reads one ECAM window in the MCFG: 0xE0000000, segment 0, buses 0-255', { skip: skipIasl }, () => {
  const dsl = disassemble('pci-mcfg');

  assert.match(dsl, /Signature : "MCFG"/);
  assert.deepEqual(field(dsl, 'Revision'), ['01']);
  assert.deepEqual(field(dsl, 'Base Address'), ['00000000E0000000']);
  assert.deepEqual(field(dsl, 'Segment Group Number'), ['0000']);
  assert.deepEqual(field(dsl, 'Start Bus Number'), ['00']);
  assert.deepEqual(field(dsl, 'End Bus Number'), ['FF']);
});

/** An ASL integer as iasl's disassembler writes it: Zero, One, Ones or hex. */
function aslInteger(text: string): number {
  return text === 'Zero' ? 0 : text === 'One' ? 1 : Number(text);
}

test('iasl decompiles \\_SB.PCI0 with its ids, windows and _PRT, and \\_SB.MRES with the ECAM window', { skip: skipIasl }, () => {
  const dsl = disassemble('pci-dsdt');
  const pci0 = dsl.slice(dsl.indexOf('Device (PCI0)'), dsl.indexOf('Device (MRES)'));
  const mres = dsl.slice(dsl.indexOf('Device (MRES)'));
  const range = (kind: string, usage: string, min: string, max: string, length: string) =>
    new RegExp(
      `${kind} \\(${usage}[^\\n]*\\n\\s*0x0+, +// Granularity\\s*${min}, +// Range Minimum\\s*${max}, +// Range Maximum` +
        `\\s*0x0+, +// Translation Offset\\s*${length}, +// Length`,
    );

  assert.match(pci0, /Name \(_HID, EisaId \("PNP0A08"\)/);
  assert.match(pci0, /Name \(_CID, EisaId \("PNP0A03"\)/);
  for (const n of ['_SEG', '_BBN', '_UID']) assert.match(pci0, new RegExp(`Name \\(${n}, Zero\\)`), n);
  assert.match(pci0, range('WordBusNumber', 'ResourceProducer, MinFixed, MaxFixed, PosDecode', '0x0000', '0x00FF', '0x0100'));
  assert.match(pci0, /IO \(Decode16,\s*0x0CF8, +\/\/ Range Minimum\s*0x0CF8, +\/\/ Range Maximum\s*0x01, +\/\/ Alignment\s*0x08/);
  const io = 'ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange';
  assert.match(pci0, range('WordIO', io, '0x0000', '0x0CF7', '0x0CF8'));
  assert.match(pci0, range('WordIO', io, '0x0D00', '0xFFFF', '0xF300'));
  const window = 'ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite';
  assert.match(pci0, range('DWordMemory', window, '0xC0000000', '0xCFFFFFFF', '0x10000000'));
  assert.match(pci0, /Name \(_PRT, Package \(0x80\)/);
  const prt = [...pci0.matchAll(/Package \(0x04\)\s*\{\s*(\w+),\s*(\w+),\s*(\w+),\s*(\w+)\s*\}/g)].map((m) =>
    m.slice(1).map(aslInteger),
  );
  assert.deepEqual(prt, ROUTES.map((r) => [r.address, r.pin, 0, r.gsi]));

  assert.match(mres, /Name \(_HID, EisaId \("PNP0C02"\)/);
  const ecam = 'ResourceConsumer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite';
  assert.match(mres, range('DWordMemory', ecam, '0xE0000000', '0xEFFFFFFF', '0x10000000'));
});

test('iasl compiles the DSDT with PCI written as ASL to the same AML', { skip: skipIasl }, () => {
  const prt = ROUTES.map((r) => `Package () { 0x${r.address.toString(16)}, ${r.pin}, 0, ${r.gsi} }`).join(',\n                ');
  const pci = String.raw`
        Device (PCI0) {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, EisaId ("PNP0A03"))
            Name (_SEG, 0)
            Name (_BBN, 0)
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate () {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
                IO (Decode16, 0xCF8, 0xCF8, 1, 8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0, 0xCF7, 0, 0xCF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0xD00, 0xFFFF, 0, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0, 0xC0000000, 0xCFFFFFFF, 0, 0x10000000)
            })
            Name (_PRT, Package () {
                ${prt}
            })
        }
        Device (MRES) {
            Name (_HID, EisaId ("PNP0C02"))
            Name (_CRS, ResourceTemplate () {
                DWordMemory (ResourceConsumer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0, 0xE0000000, 0xEFFFFFFF, 0, 0x10000000)
            })
        }`;
  writeFileSync(join(dir, 'reference-pci.asl'), referenceDsdt(pci));

  const output = run('iasl', ['-on', '-p', 'reference-pci', 'reference-pci.asl']);

  assert.match(output, /0 Errors, 0 Warnings/);
  const reference = new Uint8Array(readFileSync(join(dir, 'reference-pci.aml')));
  const ours = tables.get('pci-dsdt')!;
  assert.deepEqual(ours.subarray(36), reference.subarray(36), 'the AML');
  assert.deepEqual(ours.subarray(0, 9), reference.subarray(0, 9), 'signature, length, revision');
});

test('acpiexec evaluates \\_SB.PCI0._CRS and _PRT and reads them as Linux does', { skip: skipIasl || skipAcpiexec }, () => {
  const output = run('acpiexec', [
    '-b',
    'evaluate \\_SB.PCI0._HID; evaluate \\_SB.PCI0._CRS; evaluate \\_SB.PCI0._PRT; evaluate \\_SB.MRES._CRS; ' +
      'resources \\_SB.PCI0; resources \\_SB.MRES',
    'pci-facp.dat',
    'pci-dsdt.dat',
    'pci-apic.dat',
    'pci-mcfg.dat',
  ]);

  assert.match(output, /ACPI: MCFG .*\(v01 VMCTL  VMCTLVM /);
  assert.match(output, /DSDT: VMCTLVM .*6 Devices/);
  assert.match(output, /\[Integer\] = 00000000080AD041/, 'EisaId("PNP0A08")');
  const evaluated = (path: string) => output.slice(output.indexOf(`Evaluating ${path}`)).split('\nEvaluating ')[0]!;
  assert.match(evaluated('\\_SB.PCI0._CRS'), /\[Buffer\] Length 54 =\s+0000: 88 0D 00 02 0C 00 00 00 00 00 FF 00 00 00 00 01/);
  const count = new RegExp(`returned object.*\\n\\s*\\[Package\\] Contains ${ROUTES.length} Elements:`);
  assert.match(evaluated('\\_SB.PCI0._PRT'), count, 'one element per route');
  assert.match(evaluated('\\_SB.MRES._CRS'), /\[Buffer\] Length 1C =\s+0000: 87 17 00 00 0D 01 00 00 00 00 00 00 00 E0 FF FF/);
  // `resources` goes through ACPICA's resource manager: AcpiGetIrqRoutingTable for the _PRT
  // (what Linux's pci_irq code reads) and AcpiGetCurrentResources for _CRS.
  const entry = /Routing Table Package\s*Address : (\w+)\s*Pin : (\w+)\s*Source : \[NULL NAMESTRING\]\s*Source Index : (\w+)/g;
  const routing = [...output.matchAll(entry)].map((m) => [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)]);
  assert.deepEqual(routing, ROUTES.map((r) => [r.address, r.pin, r.gsi]));
  const ranges = [...output.matchAll(/Address Minimum : (\w+)\s*Address Maximum : (\w+)/g)].map((m) => `${m[1]}-${m[2]}`);
  assert.deepEqual(ranges, ['0000-00FF', '0CF8-0CF8', '0000-0CF7', '0D00-FFFF', 'C0000000-CFFFFFFF', 'E0000000-EFFFFFFF']);
  assert.deepEqual(output.split('\n').filter((l) => /ACPI (Error|Exception|Warning)/.test(l)), []);
});
