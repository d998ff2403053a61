import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import { fuzzEveryRegister, inb, outb } from '../../testing/pio.js';
import {
  CMOS_BASE_MEM_HIGH,
  CMOS_BASE_MEM_LOW,
  CMOS_EXT_MEM_HIGH,
  CMOS_EXT_MEM_LOW,
  CMOS_MEM_ABOVE_16M_HIGH,
  CMOS_MEM_ABOVE_16M_LOW,
  CMOS_MEM_ABOVE_4G_HIGH,
  CMOS_MEM_ABOVE_4G_LOW,
  CMOS_MEM_ABOVE_4G_MID,
  CmosRtc,
  RTC_ALARM_DONT_CARE,
  RTC_CENTURY,
  RTC_DATA_PORT,
  RTC_DAY_OF_MONTH,
  RTC_DAY_OF_WEEK,
  RTC_HOURS,
  RTC_HOURS_ALARM,
  RTC_INDEX_PORT,
  RTC_MINUTES,
  RTC_MINUTES_ALARM,
  RTC_MONTH,
  RTC_NMI_DISABLE,
  RTC_REG_A,
  RTC_REG_A_UIP,
  RTC_REG_B,
  RTC_REG_B_24H,
  RTC_REG_B_AIE,
  RTC_REG_B_DM_BINARY,
  RTC_REG_B_PIE,
  RTC_REG_B_SET,
  RTC_REG_B_UIE,
  RTC_REG_C,
  RTC_REG_C_AF,
  RTC_REG_C_IRQF,
  RTC_REG_C_PF,
  RTC_REG_C_UF,
  RTC_REG_D,
  RTC_REG_D_VRT,
  RTC_SECONDS,
  RTC_SECONDS_ALARM,
  RTC_WINDOW,
  RTC_YEAR,
} from './rtc.js';

/** Thursday 2024-02-29 13:45:30.000 UTC */
const T0 = Date.UTC(2024, 1, 29, 13, 45, 30, 0);

function setup(options: { timers?: boolean; memoryBytes?: number } = {}) {
  const clock = { t: T0 };
  const irq = new FakeIrqLine();
  const rtc = new CmosRtc({ irq, now: () => clock.t, timers: false, ...options });
  return { rtc, irq, clock };
}

function readReg(rtc: CmosRtc, index: number): number {
  outb(rtc, RTC_INDEX_PORT, index);
  return inb(rtc, RTC_DATA_PORT);
}

function writeReg(rtc: CmosRtc, index: number, value: number): void {
  outb(rtc, RTC_INDEX_PORT, index);
  outb(rtc, RTC_DATA_PORT, value);
}

const TIME_REGS = [RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR, RTC_CENTURY];

function readTime(rtc: CmosRtc): number[] {
  return TIME_REGS.map((r) => readReg(rtc, r));
}

test('rtc reads the host clock as UTC in 24-hour BCD by default', () => {
  const { rtc } = setup();

  const regs = readTime(rtc);

  // sec, min, hour, weekday (Thursday = 5), day, month, year, century
  assert.deepEqual(regs, [0x30, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20]);
});

test('rtc reads binary values when register B selects binary mode', () => {
  const { rtc } = setup();

  writeReg(rtc, RTC_REG_B, RTC_REG_B_DM_BINARY | RTC_REG_B_24H);

  assert.deepEqual(readTime(rtc), [30, 45, 13, 5, 29, 2, 24, 20]);
});

test('rtc reads hours 1-12 with bit 7 for PM in 12-hour mode', () => {
  const { rtc, clock } = setup();
  writeReg(rtc, RTC_REG_B, 0);
  const hourAt = (h: number) => {
    clock.t = Date.UTC(2024, 1, 29, h, 0, 0);
    return readReg(rtc, RTC_HOURS);
  };

  const hours = [hourAt(0), hourAt(1), hourAt(12), hourAt(13), hourAt(23)];

  assert.deepEqual(hours, [0x12, 0x01, 0x92, 0x81, 0x91]);
});

test('rtc keeps time with the host clock', () => {
  const { rtc, clock } = setup();

  clock.t += 61_000;

  assert.deepEqual(readTime(rtc).slice(0, 3), [0x31, 0x46, 0x13]);
});

test('rtc turns a time register write into an offset that keeps running', () => {
  const { rtc, clock } = setup();

  writeReg(rtc, RTC_HOURS, 0x05);
  clock.t += 2_000;

  assert.deepEqual(readTime(rtc).slice(0, 3), [0x32, 0x45, 0x05]);
  assert.equal(rtc.save().offsetMs, -8 * 3600 * 1000);
});

test('rtc stops the clock while SET is high and resumes from the time written', () => {
  const { rtc, clock } = setup();
  writeReg(rtc, RTC_REG_B, RTC_REG_B_SET | RTC_REG_B_24H);
  clock.t += 5_000;
  const frozen = readReg(rtc, RTC_SECONDS);
  const written: [number, number][] = [
    [RTC_SECONDS, 0x00], [RTC_MINUTES, 0x00], [RTC_HOURS, 0x00], [RTC_DAY_OF_WEEK, 0x07],
    [RTC_DAY_OF_MONTH, 0x01], [RTC_MONTH, 0x01], [RTC_YEAR, 0x00], [RTC_CENTURY, 0x20],
  ];
  for (const [reg, value] of written) writeReg(rtc, reg, value);

  writeReg(rtc, RTC_REG_B, RTC_REG_B_24H);
  clock.t += 2_000;

  assert.equal(frozen, 0x30);
  assert.deepEqual(readTime(rtc), [0x02, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20]);
  assert.deepEqual(rtc.time(), { year: 2000, month: 1, day: 1, hour: 0, minute: 0, second: 2, dayOfWeek: 7 });
});

test('rtc clears UIE when SET goes high', () => {
  const { rtc } = setup();

  writeReg(rtc, RTC_REG_B, RTC_REG_B_SET | RTC_REG_B_UIE | RTC_REG_B_24H);

  assert.equal(readReg(rtc, RTC_REG_B), RTC_REG_B_SET | RTC_REG_B_24H);
});

test('rtc sets UIP only in the last moments of each second', () => {
  const { rtc, clock } = setup();
  const uipAt = (ms: number) => {
    clock.t = T0 + ms;
    return (readReg(rtc, RTC_REG_A) & RTC_REG_A_UIP) !== 0;
  };

  const samples = [uipAt(0), uipAt(500), uipAt(997), uipAt(998), uipAt(999), uipAt(1000)];

  assert.deepEqual(samples, [false, false, false, true, true, false]);
});

test('rtc never sets UIP while SET stops the clock', () => {
  const { rtc, clock } = setup();
  writeReg(rtc, RTC_REG_B, RTC_REG_B_SET | RTC_REG_B_24H);

  clock.t = T0 + 999;

  assert.equal(readReg(rtc, RTC_REG_A) & RTC_REG_A_UIP, 0);
});

test('rtc sets UF in register C once a second has passed and clears it on read', () => {
  const { rtc, clock } = setup();
  readReg(rtc, RTC_REG_C);

  clock.t += 1_000;
  const first = readReg(rtc, RTC_REG_C);
  const second = readReg(rtc, RTC_REG_C);

  // PF is set too: the periodic flag runs at register A's rate whether or not PIE is on.
  assert.equal(first & ~RTC_REG_C_PF, RTC_REG_C_UF); // no IRQF: UIE is off
  assert.equal(second, 0);
});

test('rtc raises IRQ 8 for the update-ended interrupt and lowers it when C is read', () => {
  const { rtc, irq, clock } = setup();
  writeReg(rtc, RTC_REG_B, RTC_REG_B_UIE | RTC_REG_B_24H);

  clock.t += 1_000;
  rtc.tick();
  const raised = irq.level;
  const c = readReg(rtc, RTC_REG_C);

  assert.equal(raised, true);
  assert.equal(c & ~RTC_REG_C_PF, RTC_REG_C_IRQF | RTC_REG_C_UF);
  assert.equal(irq.level, false);
});

test('rtc raises an interrupt at once when it is enabled with its flag already set', () => {
  const { rtc, irq, clock } = setup();
  clock.t += 1_000;
  rtc.tick();

  writeReg(rtc, RTC_REG_B, RTC_REG_B_UIE | RTC_REG_B_24H);

  assert.equal(irq.level, true);
});

test('rtc alarm with all don’t-care bytes fires at every update', () => {
  const { rtc, irq, clock } = setup();
  for (const reg of [RTC_SECONDS_ALARM, RTC_MINUTES_ALARM, RTC_HOURS_ALARM]) writeReg(rtc, reg, RTC_ALARM_DONT_CARE);
  writeReg(rtc, RTC_REG_B, RTC_REG_B_AIE | RTC_REG_B_24H);

  clock.t += 1_000;
  rtc.tick();

  assert.equal(irq.level, true);
  assert.equal(readReg(rtc, RTC_REG_C) & (RTC_REG_C_IRQF | RTC_REG_C_AF), RTC_REG_C_IRQF | RTC_REG_C_AF);
});

test('rtc alarm fires when the time reaches it, not before', () => {
  const { rtc, irq, clock } = setup();
  writeReg(rtc, RTC_SECONDS_ALARM, 0x35);
  writeReg(rtc, RTC_MINUTES_ALARM, 0x45);
  writeReg(rtc, RTC_HOURS_ALARM, 0x13);
  writeReg(rtc, RTC_REG_B, RTC_REG_B_AIE | RTC_REG_B_24H);

  clock.t += 3_000;
  rtc.tick();
  const early = irq.level;
  clock.t += 2_000;
  rtc.tick();

  assert.equal(early, false);
  assert.equal(irq.level, true);
});

test('rtc finds an alarm passed during a long absence, in bounded time', () => {
  const { rtc, clock } = setup();
  writeReg(rtc, RTC_SECONDS_ALARM, 0x00);
  writeReg(rtc, RTC_MINUTES_ALARM, 0x00);
  writeReg(rtc, RTC_HOURS_ALARM, 0x03);
  readReg(rtc, RTC_REG_C);

  clock.t += 10 * 86_400_000;
  const started = performance.now();
  const c = readReg(rtc, RTC_REG_C);
  const elapsed = performance.now() - started;

  assert.equal(c & RTC_REG_C_AF, RTC_REG_C_AF);
  assert.ok(elapsed < 500, `took ${elapsed} ms`);
});

test('rtc raises the periodic interrupt at the rate register A selects', () => {
  const { rtc, irq, clock } = setup();
  writeReg(rtc, RTC_REG_A, 0x26); // 1024 Hz
  writeReg(rtc, RTC_REG_B, RTC_REG_B_PIE | RTC_REG_B_24H);

  clock.t += 1;
  rtc.tick();

  assert.equal(irq.level, true);
  assert.equal(readReg(rtc, RTC_REG_C), RTC_REG_C_IRQF | RTC_REG_C_PF);
});

test('rtc raises the update interrupt from its own timer, without guest accesses', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { rtc, irq, clock } = setup({ timers: true });
  writeReg(rtc, RTC_REG_B, RTC_REG_B_UIE | RTC_REG_B_24H);
  const advance = (ms: number) => {
    clock.t += ms;
    t.mock.timers.tick(ms);
  };

  advance(1_000);
  const first = irq.level;
  advance(5_000);
  readReg(rtc, RTC_REG_C);
  advance(1_000);
  rtc.close();

  assert.equal(first, true);
  assert.deepEqual(irq.history, [true, false, true]);
});

test('rtc periodic timer raises one interrupt and waits for register C before the next', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { rtc, irq, clock } = setup({ timers: true });
  writeReg(rtc, RTC_REG_A, 0x23); // 8192 Hz, faster than any timer
  writeReg(rtc, RTC_REG_B, RTC_REG_B_PIE | RTC_REG_B_24H);
  const advance = (ms: number) => {
    for (let i = 0; i < ms; i++) {
      clock.t += 1;
      t.mock.timers.tick(1);
    }
  };

  advance(100);
  const unacknowledged = [...irq.history];
  readReg(rtc, RTC_REG_C);
  advance(2);
  rtc.close();

  assert.deepEqual(unacknowledged, [true]);
  assert.deepEqual(irq.history, [true, false, true]);
});

test('rtc close() cancels its timers', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { rtc, irq, clock } = setup({ timers: true });
  writeReg(rtc, RTC_REG_B, RTC_REG_B_UIE | RTC_REG_B_24H);

  rtc.close();
  clock.t += 2_000;
  t.mock.timers.tick(2_000);

  assert.equal(irq.level, false);
});

test('rtc stores memory sizes where firmware reads them', () => {
  const { rtc } = setup({ memoryBytes: 4 * 1024 ** 3 });

  const bytes = [
    CMOS_BASE_MEM_LOW, CMOS_BASE_MEM_HIGH, CMOS_EXT_MEM_LOW, CMOS_EXT_MEM_HIGH, CMOS_MEM_ABOVE_16M_LOW,
    CMOS_MEM_ABOVE_16M_HIGH, CMOS_MEM_ABOVE_4G_LOW, CMOS_MEM_ABOVE_4G_MID, CMOS_MEM_ABOVE_4G_HIGH,
  ].map((r) => readReg(rtc, r));

  // 640 KiB; 0xffff KiB (capped); (3 GiB - 16 MiB) / 64 KiB = 0xbf00; 1 GiB / 64 KiB = 0x4000
  assert.deepEqual(bytes, [0x80, 0x02, 0xff, 0xff, 0x00, 0xbf, 0x00, 0x40, 0x00]);
});

test('rtc reports valid RAM and time in register D and ignores writes to C and D', () => {
  const { rtc } = setup();

  writeReg(rtc, RTC_REG_C, 0xff);
  writeReg(rtc, RTC_REG_D, 0x00);

  assert.equal(readReg(rtc, RTC_REG_D), RTC_REG_D_VRT);
  assert.equal(readReg(rtc, RTC_REG_C), 0);
  assert.equal(rtc.metrics.missedWrites, 2);
});

test('rtc ignores the NMI-disable bit when indexing', () => {
  const { rtc } = setup();

  outb(rtc, RTC_INDEX_PORT, RTC_NMI_DISABLE | RTC_REG_D);

  assert.equal(inb(rtc, RTC_DATA_PORT), RTC_REG_D_VRT);
  assert.equal(rtc.save().nmiDisabled, true);
});

test('rtc answers 0xff on a read of the write-only index port', () => {
  const { rtc } = setup();

  const value = inb(rtc, RTC_INDEX_PORT);

  assert.equal(value, 0xff);
  assert.equal(rtc.metrics.missedReads, 1);
});

test('rtc keeps the CMOS RAM bytes the guest writes', () => {
  const { rtc } = setup();

  writeReg(rtc, 0x0f, 0x0a);
  writeReg(rtc, 0x7f, 0x55);

  assert.deepEqual([readReg(rtc, 0x0f), readReg(rtc, 0x7f)], [0x0a, 0x55]);
});

test('rtc restores its offset, frozen time, RAM and pending interrupt from saved state', () => {
  const { rtc, clock } = setup();
  writeReg(rtc, RTC_HOURS, 0x05);
  writeReg(rtc, 0x40, 0x12);
  writeReg(rtc, RTC_REG_B, RTC_REG_B_UIE | RTC_REG_B_24H);
  clock.t += 1_000;
  rtc.tick();

  const state = JSON.parse(JSON.stringify(rtc.save()));
  const irq = new FakeIrqLine();
  const restored = new CmosRtc({ irq, now: () => clock.t, timers: false, state });

  assert.deepEqual(restored.save(), rtc.save());
  assert.deepEqual(readTime(restored), readTime(rtc));
  assert.equal(readReg(restored, 0x40), 0x12);
  assert.deepEqual(irq.history, [true]);
});

test('rtc keeps a frozen time across save and restore', () => {
  const { rtc, clock } = setup();
  writeReg(rtc, RTC_REG_B, RTC_REG_B_SET | RTC_REG_B_24H);
  writeReg(rtc, RTC_MINUTES, 0x00);

  const restored = new CmosRtc({ irq: new FakeIrqLine(), now: () => clock.t + 60_000, timers: false, state: rtc.save() });

  assert.deepEqual(readTime(restored).slice(0, 3), [0x30, 0x00, 0x13]);
});

test('rtc survives the host clock stepping back', () => {
  const { rtc, clock } = setup();
  readReg(rtc, RTC_REG_C);

  clock.t -= 3_600_000;
  const c = readReg(rtc, RTC_REG_C);

  assert.equal(c & RTC_REG_C_UF, 0);
  assert.equal(readReg(rtc, RTC_HOURS), 0x12);
});

test('rtc never throws on any value, offset, width, index or register', () => {
  const { rtc } = setup();

  assert.doesNotThrow(() => fuzzEveryRegister(rtc, RTC_WINDOW));
  assert.doesNotThrow(() => {
    for (let index = 0; index < 256; index++) {
      for (let value = 0; value < 256; value++) {
        writeReg(rtc, index, value);
        readReg(rtc, index);
        readTime(rtc);
      }
    }
  });
  assert.doesNotThrow(() => JSON.stringify(rtc.save()));
  for (const v of Object.values(rtc.time())) assert.ok(Number.isFinite(v));
});
