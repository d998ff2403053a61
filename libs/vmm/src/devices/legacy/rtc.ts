/**
 * The PC's CMOS real-time clock: a Motorola MC146818A behind index port 0x70 and data
 * port 0x71, on IRQ 8.
 *
 * Written from the MC146818A datasheet (registers 0x00-0x0d, the update cycle, interrupts)
 * and the IBM PC/AT CMOS map (century at 0x32, memory sizes). The time is not counted
 * here: it is the host clock plus an offset, computed when the guest reads it, so a guest
 * that never looks costs nothing and a paused guest's clock keeps time as a real RTC would.
 */
import type { BusDevice, DeviceMetrics, IrqLine } from '../../bus/device.js';
import { RAM_32BIT_END } from '../../memory/layout.js';

/** Ports 0x70 (index) and 0x71 (data). */
export const RTC_WINDOW = 2;
export const RTC_INDEX_PORT = 0;
export const RTC_DATA_PORT = 1;
/** bit 7 of the index masks NMI on a PC; it is not part of the index */
export const RTC_NMI_DISABLE = 0x80;
export const CMOS_SIZE = 128;

// Clock registers (datasheet table 2).
export const RTC_SECONDS = 0x00;
export const RTC_SECONDS_ALARM = 0x01;
export const RTC_MINUTES = 0x02;
export const RTC_MINUTES_ALARM = 0x03;
export const RTC_HOURS = 0x04;
export const RTC_HOURS_ALARM = 0x05;
export const RTC_DAY_OF_WEEK = 0x06;
export const RTC_DAY_OF_MONTH = 0x07;
export const RTC_MONTH = 0x08;
export const RTC_YEAR = 0x09;
export const RTC_REG_A = 0x0a;
export const RTC_REG_B = 0x0b;
export const RTC_REG_C = 0x0c;
export const RTC_REG_D = 0x0d;
/** the PC/AT convention for the century byte, named by ACPI's FADT CENTURY field */
export const RTC_CENTURY = 0x32;

// PC/AT CMOS memory-size bytes, as firmware (SeaBIOS) reads them.
export const CMOS_BASE_MEM_LOW = 0x15; // KiB below 1 MiB (640)
export const CMOS_BASE_MEM_HIGH = 0x16;
export const CMOS_EXT_MEM_LOW = 0x17; // KiB from 1 MiB, up to 0xffff
export const CMOS_EXT_MEM_HIGH = 0x18;
export const CMOS_EXT_MEM_ACTUAL_LOW = 0x30; // same, as POST measured it
export const CMOS_EXT_MEM_ACTUAL_HIGH = 0x31;
export const CMOS_MEM_ABOVE_16M_LOW = 0x34; // 64 KiB units from 16 MiB to the 32-bit hole
export const CMOS_MEM_ABOVE_16M_HIGH = 0x35;
export const CMOS_MEM_ABOVE_4G_LOW = 0x5b; // 64 KiB units above 4 GiB, three bytes
export const CMOS_MEM_ABOVE_4G_MID = 0x5c;
export const CMOS_MEM_ABOVE_4G_HIGH = 0x5d;

export const RTC_REG_A_UIP = 0x80; // update in progress
export const RTC_REG_A_DV_MASK = 0x70; // divider; 010 = 32.768 kHz time base
export const RTC_REG_A_RS_MASK = 0x0f; // periodic interrupt rate select

export const RTC_REG_B_SET = 0x80; // halt updates so the time can be set
export const RTC_REG_B_PIE = 0x40;
export const RTC_REG_B_AIE = 0x20;
export const RTC_REG_B_UIE = 0x10;
export const RTC_REG_B_SQWE = 0x08;
export const RTC_REG_B_DM_BINARY = 0x04; // 1: binary, 0: BCD
export const RTC_REG_B_24H = 0x02;
export const RTC_REG_B_DSE = 0x01;

export const RTC_REG_C_IRQF = 0x80;
export const RTC_REG_C_PF = 0x40;
export const RTC_REG_C_AF = 0x20;
export const RTC_REG_C_UF = 0x10;

export const RTC_REG_D_VRT = 0x80; // valid RAM and time: the battery is good

/** an alarm byte with both top bits set matches any value */
export const RTC_ALARM_DONT_CARE = 0xc0;

/**
 * UIP rises 244 µs before the update cycle and stays up through it (1984 µs at 32.768 kHz),
 * so for the last 2.228 ms of each second. With a millisecond clock that is ms 998 and 999:
 * often enough that a guest waiting for an edge of UIP sees one.
 */
const UIP_WINDOW_MS = 2.228;
/** what firmware programs: 32.768 kHz divider, 1024 Hz periodic rate */
const DEFAULT_REG_A = 0x26;
/** 24-hour BCD, the PC convention */
const DEFAULT_REG_B = RTC_REG_B_24H;
/** One day of alarm checks covers every time an alarm can match. */
const SECONDS_PER_DAY = 86400;
const BASE_MEMORY_KIB = 640;

export interface CmosRtcTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 1 = Sunday, as the register counts */
  dayOfWeek: number;
}

export interface CmosRtcState {
  index: number;
  nmiDisabled: boolean;
  /** all 128 bytes; those of the clock registers are kept elsewhere and stored as 0 */
  ram: number[];
  regA: number;
  regB: number;
  /** register C's PF, AF and UF */
  flags: number;
  /** guest time minus host time, in ms */
  offsetMs: number;
  /** the day-of-week register counts on its own: its distance from the date's weekday */
  dayOfWeekDelta: number;
  /** the time held while SET stops the clock, or null when it runs */
  frozen: CmosRtcTime | null;
  /** the last guest second whose update the flags account for */
  checkedSecond: number;
  /** the last periodic-interrupt tick the flags account for */
  periodicIndex: number;
}

export interface CmosRtcOptions {
  /** IRQ 8 */
  irq: IrqLine;
  /** the host clock in ms since the epoch (UTC); fractional ms are welcome */
  now?: () => number;
  /** guest RAM size, written to the CMOS memory-size bytes firmware reads */
  memoryBytes?: number;
  /** arm timers for the update, alarm and periodic interrupts (default true) */
  timers?: boolean;
  state?: CmosRtcState;
}

export class CmosRtc implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };

  readonly #irq: IrqLine;
  readonly #now: () => number;
  readonly #timers: boolean;

  readonly #ram = new Uint8Array(CMOS_SIZE);
  #index = 0;
  #nmiDisabled = false;
  #regA = DEFAULT_REG_A;
  #regB = DEFAULT_REG_B;
  #flags = 0;
  #offsetMs = 0;
  #dowDelta = 0;
  #frozen = false;
  #checkedSecond = 0;
  #periodicIndex = 0;
  #irqLevel = false;

  // The calendar, filled from the clock before each use (or held while frozen).
  #year = 1970;
  #month = 1;
  #day = 1;
  #hour = 0;
  #minute = 0;
  #second = 0;
  #dow = 1;
  #subMs = 0;

  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = 0;
  #closed = false;
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.tick();
  };

  constructor(options: CmosRtcOptions) {
    this.#irq = options.irq;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? true;
    const s = options.state;
    if (s === undefined) {
      if (options.memoryBytes !== undefined) this.#storeMemorySize(options.memoryBytes);
      const now = this.#now();
      this.#checkedSecond = Math.floor(now / 1000);
      this.#periodicIndex = this.#periodicTick(now);
    } else {
      for (let i = 0; i < CMOS_SIZE && i < s.ram.length; i++) this.#ram[i] = s.ram[i]! & 0xff;
      this.#index = s.index & 0x7f;
      this.#nmiDisabled = s.nmiDisabled;
      this.#regA = s.regA & 0x7f;
      this.#regB = s.regB & 0xff;
      this.#flags = s.flags & (RTC_REG_C_PF | RTC_REG_C_AF | RTC_REG_C_UF);
      this.#offsetMs = s.offsetMs;
      this.#dowDelta = s.dayOfWeekDelta;
      this.#checkedSecond = s.checkedSecond;
      this.#periodicIndex = s.periodicIndex;
      if (s.frozen !== null) {
        this.#frozen = true;
        this.#year = s.frozen.year;
        this.#month = s.frozen.month;
        this.#day = s.frozen.day;
        this.#hour = s.frozen.hour;
        this.#minute = s.frozen.minute;
        this.#second = s.frozen.second;
        this.#dow = s.frozen.dayOfWeek;
      }
      // The line restored from a snapshot starts low; raise it if an interrupt is pending.
      this.#updateIrq();
    }
    this.#schedule();
  }

  save(): CmosRtcState {
    const ram = Array.from(this.#ram);
    return {
      index: this.#index,
      nmiDisabled: this.#nmiDisabled,
      ram,
      regA: this.#regA,
      regB: this.#regB,
      flags: this.#flags,
      offsetMs: this.#offsetMs,
      dayOfWeekDelta: this.#dowDelta,
      frozen: this.#frozen ? this.#calendar() : null,
      checkedSecond: this.#checkedSecond,
      periodicIndex: this.#periodicIndex,
    };
  }

  /** The guest's time as its registers would show it, decoded (UTC by convention). */
  time(): CmosRtcTime {
    if (!this.#frozen) this.#readClock();
    return this.#calendar();
  }

  /**
   * Brings register C up to date with the time and raises IRQ 8 if an enabled flag is set.
   * The device's own timers call it; an owner that runs no event loop may call it instead.
   */
  tick(): void {
    this.#catchUp();
    this.#schedule();
  }

  /** Cancels the timers; the registers keep working. */
  close(): void {
    this.#closed = true;
    this.#cancelTimer();
  }

  read(offset: number, data: Uint8Array): void {
    // An 8-bit ISA device: a wider access reaches consecutive ports, one byte each.
    for (let i = 0; i < data.length; i++) data[i] = this.#readPort(offset + i);
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.#writePort(offset + i, data[i]!);
  }

  #readPort(port: number): number {
    if (port === RTC_DATA_PORT) return this.#readRegister(this.#index);
    // The index port is write-only on a PC.
    this.metrics.missedReads++;
    return 0xff;
  }

  #writePort(port: number, value: number): void {
    if (port === RTC_INDEX_PORT) {
      this.#index = value & ~RTC_NMI_DISABLE;
      this.#nmiDisabled = (value & RTC_NMI_DISABLE) !== 0;
    } else if (port === RTC_DATA_PORT) {
      this.#writeRegister(this.#index, value);
    } else {
      this.metrics.missedWrites++;
    }
  }

  #readRegister(index: number): number {
    switch (index) {
      case RTC_SECONDS:
      case RTC_MINUTES:
      case RTC_HOURS:
      case RTC_DAY_OF_WEEK:
      case RTC_DAY_OF_MONTH:
      case RTC_MONTH:
      case RTC_YEAR:
      case RTC_CENTURY:
        if (!this.#frozen) this.#readClock();
        return this.#encodeField(index);
      case RTC_REG_A:
        return this.#uip() ? this.#regA | RTC_REG_A_UIP : this.#regA;
      case RTC_REG_B:
        return this.#regB;
      case RTC_REG_C:
        return this.#readRegC();
      case RTC_REG_D:
        return RTC_REG_D_VRT;
      default:
        return this.#ram[index]!;
    }
  }

  #writeRegister(index: number, value: number): void {
    switch (index) {
      case RTC_SECONDS:
      case RTC_MINUTES:
      case RTC_HOURS:
      case RTC_DAY_OF_WEEK:
      case RTC_DAY_OF_MONTH:
      case RTC_MONTH:
      case RTC_YEAR:
      case RTC_CENTURY:
        this.#writeField(index, value);
        return;
      case RTC_REG_A:
        this.#writeRegA(value);
        return;
      case RTC_REG_B:
        this.#writeRegB(value);
        return;
      case RTC_REG_C:
      case RTC_REG_D:
        // Read-only.
        this.metrics.missedWrites++;
        return;
      default:
        // The alarm bytes and the rest are plain RAM; the alarm is compared at each update.
        this.#ram[index] = value;
    }
  }

  #readRegC(): number {
    this.#catchUp();
    const value = this.#irqLevel ? this.#flags | RTC_REG_C_IRQF : this.#flags;
    // Reading C clears every flag and with them the interrupt.
    this.#flags = 0;
    this.#updateIrq();
    this.#schedule();
    return value;
  }

  #writeRegA(value: number): void {
    this.#catchUp();
    const oldRate = this.#regA & RTC_REG_A_RS_MASK;
    this.#regA = value & ~RTC_REG_A_UIP;
    if ((this.#regA & RTC_REG_A_RS_MASK) !== oldRate) this.#periodicIndex = this.#periodicTick(this.#now());
    this.#schedule();
  }

  #writeRegB(value: number): void {
    this.#catchUp();
    const wasSet = (this.#regB & RTC_REG_B_SET) !== 0;
    let b = value;
    if ((b & RTC_REG_B_SET) !== 0) {
      // SET going high also clears UIE (datasheet, register B bit 4).
      b &= ~RTC_REG_B_UIE;
      if (!wasSet) {
        this.#readClock();
        this.#frozen = true;
      }
    } else if (wasSet) {
      // The clock runs again from the time the guest left in the registers.
      this.#frozen = false;
      this.#setClock(0);
    }
    this.#regB = b;
    // An interrupt enabled while its flag is already set fires at once.
    this.#updateIrq();
    this.#schedule();
  }

  #writeField(index: number, value: number): void {
    if (!this.#frozen) this.#readClock();
    const v = this.#decode(value);
    switch (index) {
      case RTC_SECONDS:
        this.#second = v;
        break;
      case RTC_MINUTES:
        this.#minute = v;
        break;
      case RTC_HOURS:
        this.#hour = this.#decodeHour(value);
        break;
      case RTC_DAY_OF_WEEK:
        this.#dow = v;
        break;
      case RTC_DAY_OF_MONTH:
        this.#day = v;
        break;
      case RTC_MONTH:
        this.#month = v;
        break;
      case RTC_YEAR:
        this.#year = Math.floor(this.#year / 100) * 100 + v;
        break;
      default: // RTC_CENTURY
        this.#year = v * 100 + mod(this.#year, 100);
    }
    // Without SET the new value takes effect at once, keeping the phase within the second.
    if (!this.#frozen) this.#setClock(this.#subMs);
  }

  /** Makes the calendar fields the guest's time: stores their offset from the host clock. */
  #setClock(subMs: number): void {
    // Out-of-range fields (hour 25, month 13) carry over arithmetically rather than throw.
    const months = this.#month - 1;
    const year = this.#year + Math.floor(months / 12);
    const days = daysFromCivil(year, mod(months, 12) + 1, 1) + this.#day - 1;
    const guestMs = (days * SECONDS_PER_DAY + this.#hour * 3600 + this.#minute * 60 + this.#second) * 1000 + subMs;
    const now = this.#now();
    this.#offsetMs = guestMs - now;
    const guestDays = Math.floor(guestMs / 86400000);
    this.#dowDelta = mod(this.#dow - 1 - weekday(guestDays), 7);
    // Setting the time is not an update: no UF or alarm for the seconds skipped.
    this.#checkedSecond = Math.floor(guestMs / 1000);
  }

  /** Fills the calendar fields from the host clock plus the offset. */
  #readClock(): void {
    const guestMs = this.#now() + this.#offsetMs;
    const totalSeconds = Math.floor(guestMs / 1000);
    this.#subMs = guestMs - totalSeconds * 1000;
    const days = Math.floor(totalSeconds / SECONDS_PER_DAY);
    const secondOfDay = totalSeconds - days * SECONDS_PER_DAY;
    this.#hour = Math.floor(secondOfDay / 3600);
    this.#minute = Math.floor((secondOfDay % 3600) / 60);
    this.#second = secondOfDay % 60;
    this.#dow = mod(weekday(days) + this.#dowDelta, 7) + 1;
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-compatible low-level date
    // algorithms"): count in 400-year eras of 146097 days, years starting on March 1.
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    this.#day = doy - Math.floor((153 * mp + 2) / 5) + 1;
    this.#month = mp < 10 ? mp + 3 : mp - 9;
    this.#year = yoe + era * 400 + (this.#month <= 2 ? 1 : 0);
  }

  #calendar(): CmosRtcTime {
    return {
      year: this.#year,
      month: this.#month,
      day: this.#day,
      hour: this.#hour,
      minute: this.#minute,
      second: this.#second,
      dayOfWeek: this.#dow,
    };
  }

  #encodeField(index: number): number {
    switch (index) {
      case RTC_SECONDS:
        return this.#encode(this.#second);
      case RTC_MINUTES:
        return this.#encode(this.#minute);
      case RTC_HOURS:
        return this.#encodeHour(this.#hour);
      case RTC_DAY_OF_WEEK:
        return this.#encode(this.#dow);
      case RTC_DAY_OF_MONTH:
        return this.#encode(this.#day);
      case RTC_MONTH:
        return this.#encode(this.#month);
      case RTC_YEAR:
        return this.#encode(mod(this.#year, 100));
      default: // RTC_CENTURY
        return this.#encode(Math.floor(this.#year / 100));
    }
  }

  #encode(value: number): number {
    if ((this.#regB & RTC_REG_B_DM_BINARY) !== 0) return value & 0xff;
    return ((Math.floor(value / 10) << 4) | value % 10) & 0xff;
  }

  #decode(value: number): number {
    if ((this.#regB & RTC_REG_B_DM_BINARY) !== 0) return value;
    return (value >> 4) * 10 + (value & 0x0f);
  }

  /** In 12-hour mode the hours run 1-12 with bit 7 set for PM. */
  #encodeHour(hour: number): number {
    if ((this.#regB & RTC_REG_B_24H) !== 0) return this.#encode(hour);
    const h = mod(hour, 24);
    return this.#encode(h % 12 === 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0);
  }

  #decodeHour(value: number): number {
    if ((this.#regB & RTC_REG_B_24H) !== 0) return this.#decode(value);
    return (this.#decode(value & 0x7f) % 12) + ((value & 0x80) !== 0 ? 12 : 0);
  }

  #uip(): boolean {
    if (this.#frozen) return false;
    return mod(this.#now() + this.#offsetMs, 1000) >= 1000 - UIP_WINDOW_MS;
  }

  /**
   * Sets the register C flags for what happened since the last look: an update each guest
   * second (UF), the alarm matching at one of them (AF), a periodic tick (PF). The flags
   * are set whether or not their interrupt is enabled, as on the chip.
   */
  #catchUp(): void {
    const now = this.#now();
    if (!this.#frozen) {
      const second = Math.floor((now + this.#offsetMs) / 1000);
      if (second > this.#checkedSecond) {
        this.#flags |= RTC_REG_C_UF;
        const from = Math.max(this.#checkedSecond + 1, second - SECONDS_PER_DAY + 1);
        if ((this.#flags & RTC_REG_C_AF) === 0 && this.#alarmMatchesBetween(from, second)) this.#flags |= RTC_REG_C_AF;
      }
      // Also follows a host clock stepped back, so updates resume when it catches up.
      this.#checkedSecond = second;
    }
    if ((this.#regA & RTC_REG_A_RS_MASK) !== 0) {
      const tick = this.#periodicTick(now);
      if (tick > this.#periodicIndex) this.#flags |= RTC_REG_C_PF;
      this.#periodicIndex = tick;
    }
    this.#updateIrq();
  }

  #alarmMatchesBetween(first: number, last: number): boolean {
    const h = this.#ram[RTC_HOURS_ALARM]!;
    const m = this.#ram[RTC_MINUTES_ALARM]!;
    const s = this.#ram[RTC_SECONDS_ALARM]!;
    const anyH = (h & RTC_ALARM_DONT_CARE) === RTC_ALARM_DONT_CARE;
    const anyM = (m & RTC_ALARM_DONT_CARE) === RTC_ALARM_DONT_CARE;
    const anyS = (s & RTC_ALARM_DONT_CARE) === RTC_ALARM_DONT_CARE;
    if (anyH && anyM && anyS) return first <= last;
    // At most a day of seconds, and only after the guest ignored the RTC that long.
    for (let t = first; t <= last; t++) {
      const secondOfDay = mod(t, SECONDS_PER_DAY);
      if (!anyS && this.#encode(secondOfDay % 60) !== s) continue;
      if (!anyM && this.#encode(Math.floor(secondOfDay / 60) % 60) !== m) continue;
      if (!anyH && this.#encodeHour(Math.floor(secondOfDay / 3600)) !== h) continue;
      return true;
    }
    return false;
  }

  /** Periodic ticks since the epoch at the rate register A selects (32.768 kHz base). */
  #periodicTick(now: number): number {
    const hz = periodicHz(this.#regA & RTC_REG_A_RS_MASK);
    return hz === 0 ? 0 : Math.floor((now * hz) / 1000);
  }

  #updateIrq(): void {
    // IRQF = PF·PIE + AF·AIE + UF·UIE; the flags and enables share bit positions.
    const level = (this.#flags & this.#regB & (RTC_REG_B_PIE | RTC_REG_B_AIE | RTC_REG_B_UIE)) !== 0;
    if (level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.#irq.set(level);
    }
  }

  /**
   * Arms a timer for the next event that could raise IRQ 8: the next second's update (UIE,
   * AIE) or periodic tick (PIE). None is armed while no interrupt is enabled or while the
   * line is already high: only reading register C lowers it, so until then nothing new
   * could be signalled. That bounds the timer rate by the guest's own reads of C, and the
   * periodic rate by the timer's 1 ms floor.
   */
  #schedule(): void {
    if (this.#closed || !this.#timers) return;
    const enabled = this.#regB & (RTC_REG_B_PIE | RTC_REG_B_AIE | RTC_REG_B_UIE);
    if (enabled === 0 || this.#irqLevel) {
      this.#cancelTimer();
      return;
    }
    const now = this.#now();
    let delay = Infinity;
    if ((enabled & (RTC_REG_B_AIE | RTC_REG_B_UIE)) !== 0 && !this.#frozen) {
      delay = 1000 - mod(now + this.#offsetMs, 1000);
    }
    const hz = periodicHz(this.#regA & RTC_REG_A_RS_MASK);
    if ((enabled & RTC_REG_B_PIE) !== 0 && hz !== 0) {
      const period = 1000 / hz;
      delay = Math.min(delay, period - mod(now, period));
    }
    if (delay === Infinity) {
      this.#cancelTimer();
      return;
    }
    const due = now + delay;
    // A timer due no later is already armed: it will look again when it fires.
    if (this.#timer !== undefined && this.#timerDue <= due + 0.5) return;
    this.#cancelTimer();
    this.#timerDue = due;
    this.#timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(delay)));
    // The RTC alone must not keep the worker alive.
    this.#timer.unref();
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #storeMemorySize(bytes: number): void {
    const below4g = Math.min(bytes, RAM_32BIT_END);
    const above4g = Math.max(0, bytes - below4g);
    const extKib = clamp(Math.floor((below4g - 0x100000) / 1024), 0, 0xffff);
    const above16m = clamp(Math.floor((below4g - 0x1000000) / 0x10000), 0, 0xffff);
    const high = clamp(Math.floor(above4g / 0x10000), 0, 0xffffff);
    this.#ram[CMOS_BASE_MEM_LOW] = BASE_MEMORY_KIB & 0xff;
    this.#ram[CMOS_BASE_MEM_HIGH] = BASE_MEMORY_KIB >> 8;
    this.#ram[CMOS_EXT_MEM_LOW] = extKib & 0xff;
    this.#ram[CMOS_EXT_MEM_HIGH] = extKib >> 8;
    this.#ram[CMOS_EXT_MEM_ACTUAL_LOW] = extKib & 0xff;
    this.#ram[CMOS_EXT_MEM_ACTUAL_HIGH] = extKib >> 8;
    this.#ram[CMOS_MEM_ABOVE_16M_LOW] = above16m & 0xff;
    this.#ram[CMOS_MEM_ABOVE_16M_HIGH] = above16m >> 8;
    this.#ram[CMOS_MEM_ABOVE_4G_LOW] = high & 0xff;
    this.#ram[CMOS_MEM_ABOVE_4G_MID] = (high >> 8) & 0xff;
    this.#ram[CMOS_MEM_ABOVE_4G_HIGH] = high >> 16;
  }
}

/** Periodic interrupt rate for RS: 256 and 128 Hz for 1 and 2, then 8192 Hz halving per step. */
function periodicHz(rs: number): number {
  if (rs === 0) return 0;
  return 65536 >> (rs <= 2 ? rs + 7 : rs);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** 0 = Sunday; 1970-01-01 was a Thursday. */
function weekday(days: number): number {
  return mod(days + 4, 7);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
