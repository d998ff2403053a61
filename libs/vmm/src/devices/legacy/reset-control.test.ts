import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzEveryRegister, inb, inw, outb, outw } from '../../testing/pio.js';
import {
  RESET_CONTROL_HARD_RESET,
  RESET_CONTROL_WINDOW,
  RST_CNT_FULL_RST,
  RST_CNT_RST_CPU,
  RST_CNT_SYS_RST,
  ResetControl,
  type ResetControlState,
} from './reset-control.js';

function setup(state?: ResetControlState) {
  let resets = 0;
  const rcr = new ResetControl({ onReset: () => resets++, ...(state ? { state } : {}) });
  return { rcr, resets: () => resets };
}

test('reset-control resets on the FADT reset value 0x06', () => {
  const { rcr, resets } = setup();

  outb(rcr, 0, RESET_CONTROL_HARD_RESET);

  assert.equal(RESET_CONTROL_HARD_RESET, 0x06);
  assert.equal(resets(), 1);
});

test('reset-control resets on Linux reboot=pci: 0x02 arms, 0x06 resets', () => {
  const { rcr, resets } = setup();

  outb(rcr, 0, RST_CNT_SYS_RST);
  const armed = resets();
  outb(rcr, 0, RST_CNT_SYS_RST | RST_CNT_RST_CPU);

  assert.equal(armed, 0, 'SYS_RST alone only selects the reset type');
  assert.equal(resets(), 1);
});

test('reset-control resets on RST_CPU whatever SYS_RST and FULL_RST say', () => {
  const { rcr, resets } = setup();

  outb(rcr, 0, RST_CNT_RST_CPU); // a soft reset on hardware
  outb(rcr, 0, RST_CNT_FULL_RST | RST_CNT_SYS_RST | RST_CNT_RST_CPU); // a power cycle

  assert.equal(resets(), 2);
});

test('reset-control reads back SYS_RST and FULL_RST but never RST_CPU', () => {
  const { rcr } = setup();

  outb(rcr, 0, 0xff);

  assert.equal(inb(rcr, 0), RST_CNT_SYS_RST | RST_CNT_FULL_RST);
});

test('reset-control ignores and counts accesses wider than a byte', () => {
  const { rcr, resets } = setup();

  outw(rcr, 0, 0x0606);
  const value = inw(rcr, 0);

  assert.equal(resets(), 0);
  assert.equal(value, 0xffff);
  assert.deepEqual(rcr.metrics, { missedReads: 1, missedWrites: 1 });
});

test('reset-control saves and restores the stored bits', () => {
  const { rcr } = setup();
  outb(rcr, 0, RST_CNT_SYS_RST);

  const restored = setup(JSON.parse(JSON.stringify(rcr.save())) as ResetControlState).rcr;

  assert.deepEqual(rcr.save(), { control: RST_CNT_SYS_RST });
  assert.equal(inb(restored, 0), RST_CNT_SYS_RST);
});

test('reset-control survives every value at every offset and width', () => {
  const { rcr } = setup();

  assert.doesNotThrow(() => fuzzEveryRegister(rcr, RESET_CONTROL_WINDOW));
});
