import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import { fuzzEveryRegister, inb, inw, outb, outw } from '../../testing/pio.js';
import {
  Pm1Control,
  PM1_CNT,
  PM1_CNT_SCI_EN,
  PM1_CNT_SLP_EN,
  PM1_CNT_SLP_TYP_SHIFT,
  PM1_EN,
  PM1_EN_PWRBTN,
  PM1_STS,
  PM1_STS_PWRBTN,
  PM1_WINDOW,
} from './pm1.js';

function setup() {
  const sci = new FakeIrqLine();
  let powerOffs = 0;
  const pm1 = new Pm1Control({ sci, onPowerOff: () => powerOffs++ });
  return { pm1, sci, powerOffs: () => powerOffs };
}

test('pm1 sets PWRBTN_STS when the power button is pressed', () => {
  const { pm1, sci } = setup();

  pm1.pressPowerButton();

  assert.equal(inw(pm1, PM1_STS) & PM1_STS_PWRBTN, PM1_STS_PWRBTN);
  assert.equal(sci.level, false);
});

test('pm1 raises the SCI for the power button when PWRBTN_EN is set', () => {
  const { pm1, sci } = setup();
  outw(pm1, PM1_EN, PM1_EN_PWRBTN);

  pm1.pressPowerButton();

  assert.equal(sci.level, true);
});

test('pm1 raises the SCI when PWRBTN_EN is set after the press', () => {
  const { pm1, sci } = setup();
  pm1.pressPowerButton();

  outw(pm1, PM1_EN, PM1_EN_PWRBTN);

  assert.equal(sci.level, true);
});

test('pm1 clears a status bit written with 1 and lowers the SCI', () => {
  const { pm1, sci } = setup();
  outw(pm1, PM1_EN, PM1_EN_PWRBTN);
  pm1.pressPowerButton();

  outw(pm1, PM1_STS, PM1_STS_PWRBTN);

  assert.equal(inw(pm1, PM1_STS), 0);
  assert.equal(sci.level, false);
  assert.deepEqual(sci.history, [true, false]);
});

test('pm1 leaves status bits written with 0 alone', () => {
  const { pm1 } = setup();
  pm1.pressPowerButton();

  outw(pm1, PM1_STS, 0);

  assert.equal(inw(pm1, PM1_STS), PM1_STS_PWRBTN);
});

test('pm1 calls onPowerOff for SLP_EN with SLP_TYP 5 (S5)', () => {
  const { pm1, powerOffs } = setup();

  outw(pm1, PM1_CNT, PM1_CNT_SLP_EN | (5 << PM1_CNT_SLP_TYP_SHIFT));

  assert.equal(powerOffs(), 1);
});

test('pm1 takes an S5 request written as the control block high byte', () => {
  const { pm1, powerOffs } = setup();

  outb(pm1, PM1_CNT + 1, (PM1_CNT_SLP_EN | (5 << PM1_CNT_SLP_TYP_SHIFT)) >> 8);

  assert.equal(powerOffs(), 1);
});

test('pm1 does not power off for SLP_TYP alone or for another sleep type', () => {
  const { pm1, powerOffs } = setup();

  outw(pm1, PM1_CNT, 5 << PM1_CNT_SLP_TYP_SHIFT);
  outw(pm1, PM1_CNT, PM1_CNT_SLP_EN | (1 << PM1_CNT_SLP_TYP_SHIFT));

  assert.equal(powerOffs(), 0);
});

test('pm1 reads SCI_EN as 1 and SLP_EN as 0', () => {
  const { pm1 } = setup();

  outw(pm1, PM1_CNT, 0);
  const before = inw(pm1, PM1_CNT);
  outw(pm1, PM1_CNT, PM1_CNT_SLP_EN | (3 << PM1_CNT_SLP_TYP_SHIFT));
  const after = inw(pm1, PM1_CNT);

  assert.equal(before, PM1_CNT_SCI_EN);
  assert.equal(after, PM1_CNT_SCI_EN | (3 << PM1_CNT_SLP_TYP_SHIFT));
});

test('pm1 restores status, enable and a pending SCI from saved state', () => {
  const { pm1 } = setup();
  outw(pm1, PM1_EN, PM1_EN_PWRBTN);
  pm1.pressPowerButton();

  const sci = new FakeIrqLine();
  const restored = new Pm1Control({ sci, onPowerOff: () => {}, state: JSON.parse(JSON.stringify(pm1.save())) });

  assert.deepEqual(restored.save(), pm1.save());
  assert.deepEqual(sci.history, [true]);
});

test('pm1 counts accesses past its six bytes', () => {
  const { pm1 } = setup();

  const value = inb(pm1, PM1_WINDOW);
  outb(pm1, PM1_WINDOW, 0);

  assert.equal(value, 0xff);
  assert.deepEqual(pm1.metrics, { missedReads: 1, missedWrites: 1 });
});

test('pm1 never throws on any value, offset or width', () => {
  const { pm1 } = setup();

  assert.doesNotThrow(() => fuzzEveryRegister(pm1, PM1_WINDOW));
  assert.doesNotThrow(() => JSON.stringify(pm1.save()));
});
