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
import { writeAcpiTables } from './acpi.js';

const CPUS = 4;

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

/** Writes the tables reachable from the RSDP to `<signature>.dat` files, as acpidump -b does. */
function dumpTables(): Map<string, Uint8Array> {
  const mem = GuestMemory.anonymous(64 * MIB);
  const { rsdp } = writeAcpiTables(mem, { cpus: CPUS });
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
  for (const [name, t] of tables) writeFileSync(join(dir, `${name}.dat`), t);
  return tables;
}

function run(tool: string, args: string[]): string {
  const r = spawnSync(tool, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.error, undefined, `${tool} ${args.join(' ')}`);
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} failed:\n${output}`);
  return output;
}

const tables = hasIasl ? dumpTables() : new Map<string, Uint8Array>();
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
  for (const name of ['xsdt', 'facp', 'facs', 'apic', 'dsdt']) {
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

test('iasl compiles the DSDT written as ASL to the same AML', { skip: skipIasl }, () => {
  const asl = String.raw`DefinitionBlock ("", "DSDT", 2, "VMCTL ", "VMCTLVM ", 1)
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
    }
}
`;
  writeFileSync(join(dir, 'reference.asl'), asl);

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
