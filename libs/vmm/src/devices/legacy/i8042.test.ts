import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import { fuzzEveryRegister, inb, outb } from '../../testing/pio.js';
import {
  AUX_CMD_ENABLE,
  AUX_CMD_GET_ID,
  CTRL_ALT_DEL_SET1,
  I8042,
  I8042_CMD_AUX_DISABLE,
  I8042_CMD_AUX_ENABLE,
  I8042_CMD_AUX_TEST,
  I8042_CMD_KBD_DISABLE,
  I8042_CMD_KBD_ENABLE,
  I8042_CMD_KBD_TEST,
  I8042_CMD_READ_OUTPUT,
  I8042_CMD_READ_RAM,
  I8042_CMD_SELF_TEST,
  I8042_CMD_WRITE_AUX,
  I8042_CMD_WRITE_AUX_OUTBUF,
  I8042_CMD_WRITE_OUTPUT,
  I8042_CMD_WRITE_RAM,
  I8042_COMMAND,
  I8042_CTR_AUXDIS,
  I8042_CTR_AUXINT,
  I8042_CTR_KBDDIS,
  I8042_CTR_KBDINT,
  I8042_CTR_SYSFLAG,
  I8042_CTR_XLATE,
  I8042_DATA,
  I8042_OUT_A20,
  I8042_OUT_KBD_OBF,
  I8042_OUT_RESET,
  I8042_STATUS,
  I8042_STR_AUXDATA,
  I8042_STR_CMDDAT,
  I8042_STR_OBF,
  I8042_STR_SYSFLAG,
  I8042_WINDOW,
  KBD_CMD_DISABLE,
  KBD_CMD_ECHO,
  KBD_CMD_ENABLE,
  KBD_CMD_IDENTIFY,
  KBD_CMD_RESET,
  KBD_CMD_SCANCODE_SET,
  KBD_CMD_SET_LEDS,
  KBD_CMD_TYPEMATIC,
  PS2_ACK,
  PS2_BAT_OK,
  PS2_RESEND,
} from './i8042.js';

function setup() {
  const kbdIrq = new FakeIrqLine();
  const auxIrq = new FakeIrqLine();
  let resets = 0;
  const kbc = new I8042({ kbdIrq, auxIrq, onReset: () => resets++ });
  return { kbc, kbdIrq, auxIrq, resets: () => resets };
}

/** Reads the output buffer until it is empty. */
function drain(kbc: I8042): number[] {
  const out: number[] = [];
  while ((inb(kbc, I8042_STATUS) & I8042_STR_OBF) !== 0 && out.length < 256) out.push(inb(kbc, I8042_DATA));
  return out;
}

function setCommandByte(kbc: I8042, value: number): void {
  outb(kbc, I8042_COMMAND, I8042_CMD_WRITE_RAM);
  outb(kbc, I8042_DATA, value);
}

test('i8042 answers the self-test with 0x55 in the output buffer', () => {
  const { kbc } = setup();

  outb(kbc, I8042_COMMAND, I8042_CMD_SELF_TEST);
  const status = inb(kbc, I8042_STATUS);

  assert.equal(status & I8042_STR_OBF, I8042_STR_OBF);
  assert.deepEqual(drain(kbc), [0x55]);
});

test('i8042 clears OBF when the guest reads the data port', () => {
  const { kbc } = setup();
  outb(kbc, I8042_COMMAND, I8042_CMD_SELF_TEST);

  inb(kbc, I8042_DATA);

  assert.equal(inb(kbc, I8042_STATUS) & I8042_STR_OBF, 0);
});

test('i8042 answers the keyboard and aux interface tests with 0x00', () => {
  const { kbc } = setup();

  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_TEST);
  const kbd = drain(kbc);
  outb(kbc, I8042_COMMAND, I8042_CMD_AUX_TEST);
  const aux = drain(kbc);

  assert.deepEqual([kbd, aux], [[0x00], [0x00]]);
});

test('i8042 reads back the command byte it was given', () => {
  const { kbc } = setup();

  setCommandByte(kbc, I8042_CTR_XLATE | I8042_CTR_KBDINT);
  outb(kbc, I8042_COMMAND, I8042_CMD_READ_RAM);

  assert.deepEqual(drain(kbc), [I8042_CTR_XLATE | I8042_CTR_KBDINT]);
});

test('i8042 mirrors the command byte system flag in the status register', () => {
  const { kbc } = setup();

  setCommandByte(kbc, 0);
  const cleared = inb(kbc, I8042_STATUS) & I8042_STR_SYSFLAG;
  setCommandByte(kbc, I8042_CTR_SYSFLAG);
  const set = inb(kbc, I8042_STATUS) & I8042_STR_SYSFLAG;

  assert.deepEqual([cleared, set], [0, I8042_STR_SYSFLAG]);
});

test('i8042 reports in the status register whether the last write was a command', () => {
  const { kbc } = setup();

  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_ENABLE);
  const afterCommand = inb(kbc, I8042_STATUS) & I8042_STR_CMDDAT;
  outb(kbc, I8042_DATA, KBD_CMD_ECHO);
  const afterData = inb(kbc, I8042_STATUS) & I8042_STR_CMDDAT;

  assert.deepEqual([afterCommand, afterData], [I8042_STR_CMDDAT, 0]);
});

test('i8042 disables and enables the keyboard and aux ports through the command byte', () => {
  const { kbc } = setup();
  const ctr = () => {
    outb(kbc, I8042_COMMAND, I8042_CMD_READ_RAM);
    return drain(kbc)[0]! & (I8042_CTR_KBDDIS | I8042_CTR_AUXDIS);
  };

  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_DISABLE);
  outb(kbc, I8042_COMMAND, I8042_CMD_AUX_DISABLE);
  const disabled = ctr();
  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_ENABLE);
  outb(kbc, I8042_COMMAND, I8042_CMD_AUX_ENABLE);
  const enabled = ctr();

  assert.deepEqual([disabled, enabled], [I8042_CTR_KBDDIS | I8042_CTR_AUXDIS, 0]);
});

test('i8042 pulse of the reset line calls onReset', () => {
  const { kbc, resets } = setup();

  outb(kbc, I8042_COMMAND, 0xfe);

  assert.equal(resets(), 1);
});

test('i8042 pulses that leave the reset line alone do not reset', () => {
  const { kbc, resets } = setup();

  outb(kbc, I8042_COMMAND, 0xff);
  outb(kbc, I8042_COMMAND, 0xf3);

  assert.equal(resets(), 0);
});

test('i8042 output port write with the reset bit clear calls onReset', () => {
  const { kbc, resets } = setup();

  outb(kbc, I8042_COMMAND, I8042_CMD_WRITE_OUTPUT);
  outb(kbc, I8042_DATA, I8042_OUT_A20);

  assert.equal(resets(), 1);
});

test('i8042 reads back the output port it was given', () => {
  const { kbc, resets } = setup();
  outb(kbc, I8042_COMMAND, I8042_CMD_WRITE_OUTPUT);
  outb(kbc, I8042_DATA, I8042_OUT_RESET | I8042_OUT_A20);

  outb(kbc, I8042_COMMAND, I8042_CMD_READ_OUTPUT);

  assert.deepEqual(drain(kbc), [I8042_OUT_RESET | I8042_OUT_A20]);
  assert.equal(resets(), 0);
});

test('i8042 shows a full output buffer on the output port IRQ1 line', () => {
  const { kbc } = setup();
  kbc.injectKey([0x1e]);

  outb(kbc, I8042_COMMAND, I8042_CMD_READ_OUTPUT);
  inb(kbc, I8042_DATA);
  const port = drain(kbc)[0]!;

  assert.equal(port & I8042_OUT_KBD_OBF, I8042_OUT_KBD_OBF);
});

test('i8042 keyboard answers reset with ACK then BAT passed, on IRQ1', () => {
  const { kbc, kbdIrq } = setup();

  outb(kbc, I8042_DATA, KBD_CMD_RESET);
  const raised = kbdIrq.level;

  assert.equal(raised, true);
  assert.deepEqual(drain(kbc), [PS2_ACK, PS2_BAT_OK]);
  assert.equal(kbdIrq.level, false);
});

test('i8042 gives each output byte its own rising edge on IRQ1', () => {
  const { kbc, kbdIrq } = setup();

  outb(kbc, I8042_DATA, KBD_CMD_RESET);
  drain(kbc);

  assert.equal(kbdIrq.risingEdges, 2);
  assert.equal(kbdIrq.hasRedundantSets, false);
});

test('i8042 keyboard identifies as MF2, translated to ab 41 by default', () => {
  const { kbc } = setup();

  outb(kbc, I8042_DATA, KBD_CMD_IDENTIFY);

  assert.deepEqual(drain(kbc), [PS2_ACK, 0xab, 0x41]);
});

test('i8042 keyboard identifies as ab 83 with translation off', () => {
  const { kbc } = setup();
  setCommandByte(kbc, I8042_CTR_KBDINT);

  outb(kbc, I8042_DATA, KBD_CMD_IDENTIFY);

  assert.deepEqual(drain(kbc), [PS2_ACK, 0xab, 0x83]);
});

test('i8042 keyboard acknowledges LEDs, typematic, enable and disable', () => {
  const { kbc } = setup();

  for (const b of [KBD_CMD_SET_LEDS, 0x07, KBD_CMD_TYPEMATIC, 0x20, KBD_CMD_DISABLE, KBD_CMD_ENABLE]) outb(kbc, I8042_DATA, b);

  assert.deepEqual(drain(kbc), [PS2_ACK, PS2_ACK, PS2_ACK, PS2_ACK, PS2_ACK, PS2_ACK]);
});

test('i8042 keyboard reports and changes its scan code set', () => {
  const { kbc } = setup();
  setCommandByte(kbc, I8042_CTR_KBDINT);

  outb(kbc, I8042_DATA, KBD_CMD_SCANCODE_SET);
  outb(kbc, I8042_DATA, 0);
  const before = drain(kbc);
  outb(kbc, I8042_DATA, KBD_CMD_SCANCODE_SET);
  outb(kbc, I8042_DATA, 1);
  outb(kbc, I8042_DATA, KBD_CMD_SCANCODE_SET);
  outb(kbc, I8042_DATA, 0);
  const after = drain(kbc);

  assert.deepEqual(before, [PS2_ACK, PS2_ACK, 2]);
  assert.deepEqual(after, [PS2_ACK, PS2_ACK, PS2_ACK, PS2_ACK, 1]);
});

test('i8042 keyboard asks for a resend of a command it does not know', () => {
  const { kbc } = setup();

  outb(kbc, I8042_DATA, 0x12);

  assert.deepEqual(drain(kbc), [PS2_RESEND]);
  assert.equal(kbc.metrics.missedWrites, 1);
});

test('i8042 delivers injected set 1 scan codes unchanged through translation', () => {
  const { kbc, kbdIrq } = setup();

  const taken = kbc.injectKey([0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8]);

  assert.equal(taken, true);
  assert.equal(kbdIrq.level, true);
  assert.deepEqual(drain(kbc), [0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8]);
});

test('i8042 delivers set 2 scan codes when translation is off', () => {
  const { kbc } = setup();
  setCommandByte(kbc, I8042_CTR_KBDINT);

  kbc.injectKey([0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8]);

  assert.deepEqual(drain(kbc), [0x1c, 0xf0, 0x1c, 0xe0, 0x75, 0xe0, 0xf0, 0x75]);
});

test('i8042 round-trips every set 1 code through set 2 and translation', () => {
  const { kbc } = setup();
  const codes = Array.from({ length: 0x80 }, (_, i) => i).filter((c) => c !== 0x60);
  const seen: number[] = [];

  for (const c of codes) {
    kbc.injectKey([c, c | 0x80]);
    seen.push(...drain(kbc));
  }

  assert.deepEqual(seen, codes.flatMap((c) => [c, c | 0x80]));
});

test('i8042 ctrlAltDel injects the set 1 press and release of Ctrl-Alt-Del', () => {
  const { kbc } = setup();

  kbc.ctrlAltDel();

  assert.deepEqual(drain(kbc), [...CTRL_ALT_DEL_SET1]);
  assert.deepEqual([...CTRL_ALT_DEL_SET1], [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d]);
});

test('i8042 holds keys while the keyboard port is disabled and sends them once enabled', () => {
  const { kbc } = setup();
  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_DISABLE);

  kbc.injectKey([0x1e]);
  const whileDisabled = inb(kbc, I8042_STATUS) & I8042_STR_OBF;
  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_ENABLE);

  assert.equal(whileDisabled, 0);
  assert.deepEqual(drain(kbc), [0x1e]);
});

test('i8042 keyboard drops keys while it is not scanning', () => {
  const { kbc } = setup();
  outb(kbc, I8042_DATA, KBD_CMD_DISABLE);
  drain(kbc);

  const taken = kbc.injectKey([0x1e]);

  assert.equal(taken, false);
  assert.deepEqual(drain(kbc), []);
});

test('i8042 refuses host keys once the keyboard buffer is full, never splitting a sequence', () => {
  const { kbc } = setup();
  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_DISABLE);
  let accepted = 0;

  for (let i = 0; i < 100; i++) if (kbc.ctrlAltDel()) accepted++;
  outb(kbc, I8042_COMMAND, I8042_CMD_KBD_ENABLE);
  const bytes = drain(kbc);

  assert.ok(accepted > 0 && accepted < 100);
  assert.deepEqual(bytes, Array.from({ length: accepted }, () => [...CTRL_ALT_DEL_SET1]).flat());
});

test('i8042 raises no IRQ1 when the command byte disables the keyboard interrupt', () => {
  const { kbc, kbdIrq } = setup();
  setCommandByte(kbc, I8042_CTR_XLATE);

  kbc.injectKey([0x1e]);

  assert.equal(inb(kbc, I8042_STATUS) & I8042_STR_OBF, I8042_STR_OBF);
  assert.equal(kbdIrq.level, false);
});

test('i8042 marks aux data with AUXB and raises IRQ12 when enabled', () => {
  const { kbc, kbdIrq, auxIrq } = setup();
  setCommandByte(kbc, I8042_CTR_KBDINT | I8042_CTR_AUXINT);

  outb(kbc, I8042_COMMAND, I8042_CMD_WRITE_AUX_OUTBUF);
  outb(kbc, I8042_DATA, 0x5a);
  const status = inb(kbc, I8042_STATUS);

  assert.equal(status & (I8042_STR_OBF | I8042_STR_AUXDATA), I8042_STR_OBF | I8042_STR_AUXDATA);
  assert.equal(auxIrq.level, true);
  assert.equal(kbdIrq.level, false);
  assert.deepEqual(drain(kbc), [0x5a]);
  assert.equal(auxIrq.level, false);
});

test('i8042 mouse acknowledges commands and reports movement packets on the aux port', () => {
  const { kbc, auxIrq } = setup();
  setCommandByte(kbc, I8042_CTR_KBDINT | I8042_CTR_AUXINT);
  for (const cmd of [AUX_CMD_GET_ID, AUX_CMD_ENABLE]) {
    outb(kbc, I8042_COMMAND, I8042_CMD_WRITE_AUX);
    outb(kbc, I8042_DATA, cmd);
  }
  const replies = drain(kbc);

  const taken = kbc.injectMouse(-3, 5, 1);

  assert.deepEqual(replies, [PS2_ACK, 0x00, PS2_ACK]);
  assert.equal(taken, true);
  assert.equal(auxIrq.level, true);
  assert.deepEqual(drain(kbc), [0x08 | 0x10 | 0x01, 0xfd, 0x05]);
});

test('i8042 mouse sends no packets until reporting is enabled', () => {
  const { kbc } = setup();

  const taken = kbc.injectMouse(1, 1, 0);

  assert.equal(taken, false);
});

test('i8042 restores its buffers, command byte and a half-done command from saved state', () => {
  const { kbc } = setup();
  setCommandByte(kbc, I8042_CTR_KBDINT | I8042_CTR_XLATE);
  kbc.injectKey([0x1e, 0x9e]);
  outb(kbc, I8042_COMMAND, I8042_CMD_WRITE_RAM); // waits for its data byte

  const state = JSON.parse(JSON.stringify(kbc.save()));
  const restored = new I8042({ kbdIrq: new FakeIrqLine(), auxIrq: new FakeIrqLine(), onReset: () => {}, state });

  assert.deepEqual(restored.save(), kbc.save());
  assert.deepEqual(drain(restored), [0x1e, 0x9e]);
  outb(restored, I8042_DATA, I8042_CTR_KBDINT);
  outb(restored, I8042_COMMAND, I8042_CMD_READ_RAM);
  assert.deepEqual(drain(restored), [I8042_CTR_KBDINT]);
});

test('i8042 raises IRQ1 in the constructor when restored with keyboard data pending', () => {
  const { kbc } = setup();
  kbc.injectKey([0x1e]);
  const kbdIrq = new FakeIrqLine();

  new I8042({ kbdIrq, auxIrq: new FakeIrqLine(), onReset: () => {}, state: kbc.save() });

  assert.deepEqual(kbdIrq.history, [true]);
});

test('i8042 counts accesses to ports 0x61-0x63 and unknown commands', () => {
  const { kbc } = setup();

  const value = inb(kbc, 2);
  outb(kbc, 1, 0);
  outb(kbc, I8042_COMMAND, 0xc8);

  assert.equal(value, 0xff);
  assert.deepEqual(kbc.metrics, { missedReads: 1, missedWrites: 2 });
});

test('i8042 never throws on any value, offset or width', () => {
  const { kbc } = setup();

  assert.doesNotThrow(() => fuzzEveryRegister(kbc, I8042_WINDOW));
  assert.doesNotThrow(() => {
    for (let i = 0; i < 100; i++) {
      kbc.injectKey([i, 0xe0, 0xff]);
      kbc.injectMouse(i * 1000, -i * 1000, i);
    }
  });
  assert.doesNotThrow(() => JSON.stringify(kbc.save()));
});
