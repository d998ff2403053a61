/**
 * The Intel 8042 keyboard controller of a PC/AT with PS/2 ports, and the MF2 keyboard and
 * PS/2 mouse behind it.
 *
 * Written from the IBM PC/AT and PS/2 technical references (8042 commands, command byte,
 * status register, output port) and the PS/2 keyboard and mouse interface specifications.
 * The guest talks to it through port 0x60 (data) and 0x64 (status/command); it also carries
 * the system reset line, which is how a guest reboots a PC.
 */
import type { BusDevice, DeviceMetrics, IrqLine } from '../../bus/device.js';

/** The device window is ports 0x60..0x64; 0x61..0x63 belong to other devices. */
export const I8042_WINDOW = 5;
export const I8042_DATA = 0; // port 0x60
export const I8042_STATUS = 4; // port 0x64, read
export const I8042_COMMAND = 4; // port 0x64, write

// Status register.
export const I8042_STR_OBF = 0x01; // output buffer full
export const I8042_STR_IBF = 0x02; // input buffer full (never: commands are taken at once)
export const I8042_STR_SYSFLAG = 0x04; // system flag: warm start, set by self-test or the command byte
export const I8042_STR_CMDDAT = 0x08; // last write was to port 0x64
export const I8042_STR_KEYLOCK = 0x10; // keyboard not inhibited by the key lock
export const I8042_STR_AUXDATA = 0x20; // the output buffer holds aux (mouse) data
export const I8042_STR_TIMEOUT = 0x40;
export const I8042_STR_PARITY = 0x80;

// Command byte (controller RAM byte 0).
export const I8042_CTR_KBDINT = 0x01; // IRQ1 on keyboard data
export const I8042_CTR_AUXINT = 0x02; // IRQ12 on aux data
export const I8042_CTR_SYSFLAG = 0x04;
export const I8042_CTR_IGNKEYLOCK = 0x08;
export const I8042_CTR_KBDDIS = 0x10; // keyboard clock held low: the keyboard cannot send
export const I8042_CTR_AUXDIS = 0x20;
export const I8042_CTR_XLATE = 0x40; // translate scan code set 2 into set 1

// Controller commands, written to port 0x64.
export const I8042_CMD_READ_RAM = 0x20; // 0x20-0x3f: read RAM byte n (0x20: command byte)
export const I8042_CMD_WRITE_RAM = 0x60; // 0x60-0x7f: write RAM byte n (0x60: command byte)
export const I8042_CMD_PASSWORD_TEST = 0xa4;
export const I8042_CMD_AUX_DISABLE = 0xa7;
export const I8042_CMD_AUX_ENABLE = 0xa8;
export const I8042_CMD_AUX_TEST = 0xa9;
export const I8042_CMD_SELF_TEST = 0xaa;
export const I8042_CMD_KBD_TEST = 0xab;
export const I8042_CMD_KBD_DISABLE = 0xad;
export const I8042_CMD_KBD_ENABLE = 0xae;
export const I8042_CMD_READ_INPUT = 0xc0;
export const I8042_CMD_READ_OUTPUT = 0xd0;
export const I8042_CMD_WRITE_OUTPUT = 0xd1;
export const I8042_CMD_WRITE_KBD_OUTBUF = 0xd2; // next data byte appears as keyboard data
export const I8042_CMD_WRITE_AUX_OUTBUF = 0xd3; // next data byte appears as aux data
export const I8042_CMD_WRITE_AUX = 0xd4; // next data byte goes to the mouse
export const I8042_CMD_A20_DISABLE = 0xdd;
export const I8042_CMD_A20_ENABLE = 0xdf;
export const I8042_CMD_PULSE = 0xf0; // 0xf0-0xff: pulse output port bits 0-3 where the command's bit is 0

export const I8042_SELF_TEST_OK = 0x55;
export const I8042_PORT_TEST_OK = 0x00;
export const I8042_NO_PASSWORD = 0xf1;

// Output port.
export const I8042_OUT_RESET = 0x01; // 0 holds the CPU in reset
export const I8042_OUT_A20 = 0x02;
export const I8042_OUT_KBD_OBF = 0x10; // wired to IRQ1
export const I8042_OUT_AUX_OBF = 0x20; // wired to IRQ12

// Keyboard commands and replies (PS/2 keyboard).
export const KBD_CMD_SET_LEDS = 0xed;
export const KBD_CMD_ECHO = 0xee;
export const KBD_CMD_SCANCODE_SET = 0xf0;
export const KBD_CMD_IDENTIFY = 0xf2;
export const KBD_CMD_TYPEMATIC = 0xf3;
export const KBD_CMD_ENABLE = 0xf4;
export const KBD_CMD_DISABLE = 0xf5; // and restore defaults
export const KBD_CMD_DEFAULTS = 0xf6;
export const KBD_CMD_RESEND = 0xfe;
export const KBD_CMD_RESET = 0xff;
export const PS2_ACK = 0xfa;
export const PS2_RESEND = 0xfe;
export const PS2_BAT_OK = 0xaa;
export const KBD_ID_MF2 = [0xab, 0x83] as const;

// Mouse commands (PS/2 mouse, sent through I8042_CMD_WRITE_AUX).
export const AUX_CMD_SET_SCALING_1_1 = 0xe6;
export const AUX_CMD_SET_SCALING_2_1 = 0xe7;
export const AUX_CMD_SET_RESOLUTION = 0xe8;
export const AUX_CMD_STATUS = 0xe9;
export const AUX_CMD_STREAM_MODE = 0xea;
export const AUX_CMD_READ_DATA = 0xeb;
export const AUX_CMD_RESET_WRAP = 0xec;
export const AUX_CMD_WRAP_MODE = 0xee;
export const AUX_CMD_REMOTE_MODE = 0xf0;
export const AUX_CMD_GET_ID = 0xf2;
export const AUX_CMD_SAMPLE_RATE = 0xf3;
export const AUX_CMD_ENABLE = 0xf4;
export const AUX_CMD_DISABLE = 0xf5;
export const AUX_CMD_DEFAULTS = 0xf6;
export const AUX_CMD_RESEND = 0xfe;
export const AUX_CMD_RESET = 0xff;
export const AUX_ID_STANDARD = 0x00;

/** Ctrl (1d), Alt (38), Delete (e0 53) pressed, then released in reverse: scan code set 1. */
export const CTRL_ALT_DEL_SET1 = [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d] as const;

/**
 * The device-side buffers. Real keyboards buffer 16 bytes; host input (a paste, a VNC
 * client) comes faster than a typist, so ours is larger but bounded, and host input may
 * fill only part of it so replies to the guest's commands always fit.
 */
const DEVICE_QUEUE_SIZE = 64;
const DEVICE_QUEUE_HOST_LIMIT = 48;
/** controller replies waiting for the output buffer: at most a few per command */
const REPLY_QUEUE_SIZE = 16;
/** marks a reply queued as aux data (I8042_CMD_WRITE_AUX_OUTBUF) */
const REPLY_AUX = 0x100;

/** The command byte firmware leaves: translation on, keyboard interrupt on, mouse off. */
const DEFAULT_CTR = I8042_CTR_XLATE | I8042_CTR_AUXDIS | I8042_CTR_SYSFLAG | I8042_CTR_KBDINT;
/** reset line high (running), A20 on, keyboard clock and data lines idle high */
const DEFAULT_OUTPUT_PORT = 0xc0 | I8042_OUT_A20 | I8042_OUT_RESET;

/**
 * Scan code set 1 make codes and the set 2 codes of the same keys (IBM keyboard tech ref).
 * Extended keys (e0 xx) use the same pair with the e0 prefix in both sets.
 */
const SET1_SET2_PAIRS: readonly (readonly [number, number])[] = [
  [0x01, 0x76], [0x02, 0x16], [0x03, 0x1e], [0x04, 0x26], [0x05, 0x25], [0x06, 0x2e], [0x07, 0x36], [0x08, 0x3d],
  [0x09, 0x3e], [0x0a, 0x46], [0x0b, 0x45], [0x0c, 0x4e], [0x0d, 0x55], [0x0e, 0x66], [0x0f, 0x0d], [0x10, 0x15],
  [0x11, 0x1d], [0x12, 0x24], [0x13, 0x2d], [0x14, 0x2c], [0x15, 0x35], [0x16, 0x3c], [0x17, 0x43], [0x18, 0x44],
  [0x19, 0x4d], [0x1a, 0x54], [0x1b, 0x5b], [0x1c, 0x5a], [0x1d, 0x14], [0x1e, 0x1c], [0x1f, 0x1b], [0x20, 0x23],
  [0x21, 0x2b], [0x22, 0x34], [0x23, 0x33], [0x24, 0x3b], [0x25, 0x42], [0x26, 0x4b], [0x27, 0x4c], [0x28, 0x52],
  [0x29, 0x0e], [0x2a, 0x12], [0x2b, 0x5d], [0x2c, 0x1a], [0x2d, 0x22], [0x2e, 0x21], [0x2f, 0x2a], [0x30, 0x32],
  [0x31, 0x31], [0x32, 0x3a], [0x33, 0x41], [0x34, 0x49], [0x35, 0x4a], [0x36, 0x59], [0x37, 0x7c], [0x38, 0x11],
  [0x39, 0x29], [0x3a, 0x58], [0x3b, 0x05], [0x3c, 0x06], [0x3d, 0x04], [0x3e, 0x0c], [0x3f, 0x03], [0x40, 0x0b],
  [0x41, 0x83], [0x42, 0x0a], [0x43, 0x01], [0x44, 0x09], [0x45, 0x77], [0x46, 0x7e], [0x47, 0x6c], [0x48, 0x75],
  [0x49, 0x7d], [0x4a, 0x7b], [0x4b, 0x6b], [0x4c, 0x73], [0x4d, 0x74], [0x4e, 0x79], [0x4f, 0x69], [0x50, 0x72],
  [0x51, 0x7a], [0x52, 0x70], [0x53, 0x71], [0x54, 0x84], [0x56, 0x61], [0x57, 0x78], [0x58, 0x07], [0x5b, 0x1f],
  [0x5c, 0x27], [0x5d, 0x2f], [0x5e, 0x37], [0x5f, 0x3f], [0x63, 0x5e], [0x64, 0x08], [0x65, 0x10], [0x70, 0x13],
  [0x73, 0x51], [0x79, 0x64], [0x7b, 0x67], [0x7d, 0x6a],
];

/**
 * set 1 → set 2 for make codes 0x00-0x7f, and the controller's translation set 2 → set 1.
 * Codes no key above uses are paired up in order, so that with translation on (the normal
 * case) the guest sees exactly the set 1 bytes the host injected, whatever they are.
 */
const SET1_TO_SET2 = new Uint8Array(128);
const SET2_TO_SET1 = new Uint8Array(256);
{
  const used1 = new Set<number>();
  const used2 = new Set<number>();
  for (let i = 0; i < 256; i++) SET2_TO_SET1[i] = i;
  for (const [s1, s2] of SET1_SET2_PAIRS) {
    SET1_TO_SET2[s1] = s2;
    SET2_TO_SET1[s2] = s1;
    used1.add(s1);
    used2.add(s2);
  }
  let free2 = 0;
  for (let s1 = 0; s1 < 128; s1++) {
    if (used1.has(s1)) continue;
    while (used2.has(free2)) free2++;
    SET1_TO_SET2[s1] = free2;
    SET2_TO_SET1[free2] = s1;
    free2++;
  }
}
const SET2_BREAK_PREFIX = 0xf0;

export interface I8042KeyboardState {
  /** scan code set the keyboard sends (1, 2 or 3; 3 is sent as set 2) */
  scancodeSet: number;
  scanning: boolean;
  leds: number;
  typematic: number;
  /** a command waiting for its parameter byte, or 0 */
  awaiting: number;
  /** the last byte sent, for the resend command */
  lastSent: number;
}

export interface I8042MouseState {
  reporting: boolean;
  remote: boolean;
  wrap: boolean;
  scaling21: boolean;
  sampleRate: number;
  resolution: number;
  buttons: number;
  awaiting: number;
  lastSent: number;
}

export interface I8042State {
  /** controller RAM; byte 0 is the command byte */
  ram: number[];
  outputPort: number;
  systemFlag: boolean;
  lastWriteWasCommand: boolean;
  /** a controller command waiting for its data byte, or 0 */
  pendingCommand: number;
  /** the byte in the output buffer, or null when it is empty */
  outputBuffer: number | null;
  outputBufferIsAux: boolean;
  /** translation saw a set 2 break prefix and owes the next byte its break bit */
  translateBreak: boolean;
  /** controller replies; a value with bit 8 set is aux data */
  replies: number[];
  keyboardQueue: number[];
  mouseQueue: number[];
  keyboard: I8042KeyboardState;
  mouse: I8042MouseState;
}

export interface I8042Options {
  /** IRQ1 */
  kbdIrq: IrqLine;
  /** IRQ12 */
  auxIrq: IrqLine;
  /** the guest pulsed the CPU reset line; called synchronously from the write */
  onReset: () => void;
  state?: I8042State;
}

/** A bounded FIFO of bytes (or 9-bit values) that does not allocate once built. */
class Ring {
  readonly #buffer: Uint16Array;
  #head = 0;
  length = 0;

  constructor(readonly capacity: number) {
    this.#buffer = new Uint16Array(capacity);
  }

  push(value: number): boolean {
    if (this.length === this.capacity) return false;
    this.#buffer[(this.#head + this.length) % this.capacity] = value;
    this.length++;
    return true;
  }

  shift(): number {
    const value = this.#buffer[this.#head]!;
    this.#head = (this.#head + 1) % this.capacity;
    this.length--;
    return value;
  }

  clear(): void {
    this.#head = 0;
    this.length = 0;
  }

  toArray(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) out.push(this.#buffer[(this.#head + i) % this.capacity]!);
    return out;
  }

  fill(values: readonly number[], mask: number): void {
    this.clear();
    for (const v of values) if (!this.push(v & mask)) break;
  }
}

export class I8042 implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };

  readonly #kbdIrq: IrqLine;
  readonly #auxIrq: IrqLine;
  readonly #onReset: () => void;

  readonly #ram = new Uint8Array(32);
  #outputPort = DEFAULT_OUTPUT_PORT;
  #systemFlag = true;
  #lastWriteWasCommand = false;
  #pendingCommand = 0;
  #ob = 0;
  #obFull = false;
  #obAux = false;
  #translateBreak = false;
  readonly #replies = new Ring(REPLY_QUEUE_SIZE);
  readonly #kbdQueue = new Ring(DEVICE_QUEUE_SIZE);
  readonly #mouseQueue = new Ring(DEVICE_QUEUE_SIZE);
  #kbdLevel = false;
  #auxLevel = false;

  #kbd: I8042KeyboardState = defaultKeyboard();
  #mouse: I8042MouseState = defaultMouse();

  constructor(options: I8042Options) {
    this.#kbdIrq = options.kbdIrq;
    this.#auxIrq = options.auxIrq;
    this.#onReset = options.onReset;
    this.#ram[0] = DEFAULT_CTR;
    const s = options.state;
    if (s !== undefined) {
      for (let i = 0; i < this.#ram.length && i < s.ram.length; i++) this.#ram[i] = s.ram[i]! & 0xff;
      this.#outputPort = s.outputPort & 0xff;
      this.#systemFlag = s.systemFlag;
      this.#lastWriteWasCommand = s.lastWriteWasCommand;
      this.#pendingCommand = s.pendingCommand & 0xff;
      this.#obFull = s.outputBuffer !== null;
      this.#ob = (s.outputBuffer ?? 0) & 0xff;
      this.#obAux = s.outputBufferIsAux;
      this.#translateBreak = s.translateBreak;
      this.#replies.fill(s.replies, 0x1ff);
      this.#kbdQueue.fill(s.keyboardQueue, 0xff);
      this.#mouseQueue.fill(s.mouseQueue, 0xff);
      this.#kbd = { ...s.keyboard };
      this.#mouse = { ...s.mouse };
      // The lines restored from a snapshot start low; raise any that should be high.
      this.#updateIrqs();
    }
  }

  save(): I8042State {
    return {
      ram: Array.from(this.#ram),
      outputPort: this.#outputPort,
      systemFlag: this.#systemFlag,
      lastWriteWasCommand: this.#lastWriteWasCommand,
      pendingCommand: this.#pendingCommand,
      outputBuffer: this.#obFull ? this.#ob : null,
      outputBufferIsAux: this.#obAux,
      translateBreak: this.#translateBreak,
      replies: this.#replies.toArray(),
      keyboardQueue: this.#kbdQueue.toArray(),
      mouseQueue: this.#mouseQueue.toArray(),
      keyboard: { ...this.#kbd },
      mouse: { ...this.#mouse },
    };
  }

  /**
   * Host key events for the guest, as scan code set 1 bytes (what a guest sees with the
   * controller translating, the PC default), e.g. `[0x1e, 0x9e]` for a press and release of
   * A. Returns false, taking nothing, when the keyboard is not scanning or its buffer is
   * full: a sequence is never split.
   */
  injectKey(scancodes: ArrayLike<number>): boolean {
    if (!this.#kbd.scanning) return false;
    const set1 = this.#kbd.scancodeSet === 1;
    let needed = 0;
    for (let i = 0; i < scancodes.length; i++) {
      const b = scancodes[i]! & 0xff;
      needed += !set1 && b >= 0x80 && b !== 0xe0 && b !== 0xe1 ? 2 : 1;
    }
    if (this.#kbdQueue.length + needed > DEVICE_QUEUE_HOST_LIMIT) return false;
    for (let i = 0; i < scancodes.length; i++) {
      const b = scancodes[i]! & 0xff;
      if (set1 || b === 0xe0 || b === 0xe1) {
        this.#kbdQueue.push(b);
      } else if (b >= 0x80) {
        this.#kbdQueue.push(SET2_BREAK_PREFIX);
        this.#kbdQueue.push(SET1_TO_SET2[b & 0x7f]!);
      } else {
        this.#kbdQueue.push(SET1_TO_SET2[b]!);
      }
    }
    this.#refill();
    return true;
  }

  /** Presses and releases Ctrl-Alt-Del: how a PC guest is asked to reboot. */
  ctrlAltDel(): boolean {
    return this.injectKey(CTRL_ALT_DEL_SET1);
  }

  /**
   * Host mouse motion for the guest: `dx` right, `dy` up (PS/2 convention), `buttons` bit 0
   * left, 1 right, 2 middle. Returns false when the mouse is not reporting or its buffer is
   * full.
   */
  injectMouse(dx: number, dy: number, buttons: number): boolean {
    const m = this.#mouse;
    m.buttons = buttons & 0x07;
    if (!m.reporting || m.remote || m.wrap) return false;
    if (this.#mouseQueue.length + 3 > DEVICE_QUEUE_HOST_LIMIT) return false;
    this.#queueMousePacket(dx, dy);
    this.#refill();
    return true;
  }

  read(offset: number, data: Uint8Array): void {
    // An 8-bit ISA device: a wider access reaches consecutive ports, one byte each.
    for (let i = 0; i < data.length; i++) data[i] = this.#readRegister(offset + i);
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.#writeRegister(offset + i, data[i]!);
  }

  #readRegister(port: number): number {
    if (port === I8042_DATA) return this.#readData();
    if (port === I8042_STATUS) return this.#status();
    this.metrics.missedReads++;
    return 0xff;
  }

  #writeRegister(port: number, value: number): void {
    if (port === I8042_DATA) {
      this.#lastWriteWasCommand = false;
      this.#writeData(value);
    } else if (port === I8042_COMMAND) {
      this.#lastWriteWasCommand = true;
      this.#command(value);
    } else {
      this.metrics.missedWrites++;
    }
  }

  #status(): number {
    let status = I8042_STR_KEYLOCK;
    if (this.#obFull) status |= this.#obAux ? I8042_STR_OBF | I8042_STR_AUXDATA : I8042_STR_OBF;
    if (this.#systemFlag) status |= I8042_STR_SYSFLAG;
    if (this.#lastWriteWasCommand) status |= I8042_STR_CMDDAT;
    return status;
  }

  #readData(): number {
    // An empty output buffer still reads as the byte it last held.
    if (!this.#obFull) return this.#ob;
    const value = this.#ob;
    this.#obFull = false;
    // Drop the line before loading the next byte: the PIC is edge-triggered, so each byte
    // must bring its own rising edge.
    this.#updateIrqs();
    this.#refill();
    return value;
  }

  #command(cmd: number): void {
    // A new command abandons one still waiting for its data byte.
    this.#pendingCommand = 0;
    if (cmd >= I8042_CMD_READ_RAM && cmd < I8042_CMD_READ_RAM + 0x20) {
      this.#reply(this.#ram[cmd - I8042_CMD_READ_RAM]!);
      return;
    }
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + 0x20) {
      this.#pendingCommand = cmd;
      return;
    }
    if (cmd >= I8042_CMD_PULSE) {
      // Bits 0-3 clear select output port lines to pulse low for 6 µs; line 0 is reset.
      if ((cmd & I8042_OUT_RESET) === 0) this.#onReset();
      return;
    }
    switch (cmd) {
      case I8042_CMD_PASSWORD_TEST:
        this.#reply(I8042_NO_PASSWORD);
        return;
      case I8042_CMD_AUX_DISABLE:
        this.#setCommandByte(this.#ram[0]! | I8042_CTR_AUXDIS);
        return;
      case I8042_CMD_AUX_ENABLE:
        this.#setCommandByte(this.#ram[0]! & ~I8042_CTR_AUXDIS);
        return;
      case I8042_CMD_AUX_TEST:
      case I8042_CMD_KBD_TEST:
        this.#reply(I8042_PORT_TEST_OK);
        return;
      case I8042_CMD_SELF_TEST:
        this.#systemFlag = true;
        this.#reply(I8042_SELF_TEST_OK);
        return;
      case I8042_CMD_KBD_DISABLE:
        this.#setCommandByte(this.#ram[0]! | I8042_CTR_KBDDIS);
        return;
      case I8042_CMD_KBD_ENABLE:
        this.#setCommandByte(this.#ram[0]! & ~I8042_CTR_KBDDIS);
        return;
      case I8042_CMD_READ_INPUT:
        // Input port: bit 7 set = keyboard not inhibited by the key lock.
        this.#reply(0x80);
        return;
      case I8042_CMD_READ_OUTPUT:
        this.#reply(this.#readOutputPort());
        return;
      case I8042_CMD_WRITE_OUTPUT:
      case I8042_CMD_WRITE_KBD_OUTBUF:
      case I8042_CMD_WRITE_AUX_OUTBUF:
      case I8042_CMD_WRITE_AUX:
        this.#pendingCommand = cmd;
        return;
      case I8042_CMD_A20_DISABLE:
      case I8042_CMD_A20_ENABLE:
        // KVM does not mask A20; keep the output port bit for readers.
        this.#outputPort = cmd === I8042_CMD_A20_ENABLE ? this.#outputPort | I8042_OUT_A20 : this.#outputPort & ~I8042_OUT_A20;
        return;
      default:
        this.metrics.missedWrites++;
    }
  }

  #writeData(value: number): void {
    const cmd = this.#pendingCommand;
    this.#pendingCommand = 0;
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + 0x20) {
      if (cmd === I8042_CMD_WRITE_RAM) this.#setCommandByte(value);
      else this.#ram[cmd - I8042_CMD_WRITE_RAM] = value;
      return;
    }
    switch (cmd) {
      case I8042_CMD_WRITE_OUTPUT:
        this.#outputPort = value;
        if ((value & I8042_OUT_RESET) === 0) this.#onReset();
        return;
      case I8042_CMD_WRITE_KBD_OUTBUF:
        this.#reply(value);
        return;
      case I8042_CMD_WRITE_AUX_OUTBUF:
        this.#reply(value | REPLY_AUX);
        return;
      case I8042_CMD_WRITE_AUX:
        // Talking to a device releases its clock line, as on real controllers.
        this.#ram[0] = this.#ram[0]! & ~I8042_CTR_AUXDIS;
        this.#mouseCommand(value);
        this.#refill();
        return;
      default:
        this.#ram[0] = this.#ram[0]! & ~I8042_CTR_KBDDIS;
        this.#keyboardCommand(value);
        this.#refill();
    }
  }

  #setCommandByte(value: number): void {
    this.#ram[0] = value;
    this.#systemFlag = (value & I8042_CTR_SYSFLAG) !== 0;
    // Enabling a port lets its device send what it has buffered; interrupt bits gate lines.
    this.#refill();
    this.#updateIrqs();
  }

  #readOutputPort(): number {
    let port = this.#outputPort & ~(I8042_OUT_KBD_OBF | I8042_OUT_AUX_OBF);
    if (this.#obFull) port |= this.#obAux ? I8042_OUT_AUX_OBF : I8042_OUT_KBD_OBF;
    return port;
  }

  #reply(value: number): void {
    if (!this.#replies.push(value)) this.metrics.missedWrites++;
    this.#refill();
  }

  /** Loads the output buffer when it is empty: controller replies first, then the devices. */
  #refill(): void {
    if (!this.#obFull) {
      const ctr = this.#ram[0]!;
      if (this.#replies.length > 0) {
        const v = this.#replies.shift();
        this.#load(v & 0xff, (v & REPLY_AUX) !== 0);
      } else if ((ctr & I8042_CTR_KBDDIS) === 0 && this.#kbdQueue.length > 0) {
        this.#loadKeyboardByte(ctr);
      } else if ((ctr & I8042_CTR_AUXDIS) === 0 && this.#mouseQueue.length > 0) {
        this.#load(this.#mouseQueue.shift(), true);
      }
    }
    this.#updateIrqs();
  }

  #loadKeyboardByte(ctr: number): void {
    if ((ctr & I8042_CTR_XLATE) === 0) {
      this.#load(this.#kbdQueue.shift(), false);
      return;
    }
    // Translation folds a set 2 break prefix into the next byte's bit 7.
    while (this.#kbdQueue.length > 0) {
      const b = this.#kbdQueue.shift();
      if (b === SET2_BREAK_PREFIX) {
        this.#translateBreak = true;
        continue;
      }
      const t = SET2_TO_SET1[b]! | (this.#translateBreak ? 0x80 : 0);
      this.#translateBreak = false;
      this.#load(t, false);
      return;
    }
  }

  #load(value: number, aux: boolean): void {
    this.#ob = value;
    this.#obAux = aux;
    this.#obFull = true;
  }

  #updateIrqs(): void {
    const ctr = this.#ram[0]!;
    const kbd = this.#obFull && !this.#obAux && (ctr & I8042_CTR_KBDINT) !== 0;
    const aux = this.#obFull && this.#obAux && (ctr & I8042_CTR_AUXINT) !== 0;
    if (kbd !== this.#kbdLevel) {
      this.#kbdLevel = kbd;
      this.#kbdIrq.set(kbd);
    }
    if (aux !== this.#auxLevel) {
      this.#auxLevel = aux;
      this.#auxIrq.set(aux);
    }
  }

  #kbdSend(value: number): void {
    this.#kbd.lastSent = value;
    if (!this.#kbdQueue.push(value)) this.metrics.missedWrites++;
  }

  #keyboardCommand(value: number): void {
    const k = this.#kbd;
    const awaiting = k.awaiting;
    if (awaiting !== 0) {
      k.awaiting = 0;
      switch (awaiting) {
        case KBD_CMD_SET_LEDS:
          k.leds = value & 0x07;
          this.#kbdSend(PS2_ACK);
          return;
        case KBD_CMD_TYPEMATIC:
          k.typematic = value & 0x7f;
          this.#kbdSend(PS2_ACK);
          return;
        case KBD_CMD_SCANCODE_SET:
          if (value === 0) {
            this.#kbdSend(PS2_ACK);
            this.#kbdSend(k.scancodeSet);
          } else if (value >= 1 && value <= 3) {
            k.scancodeSet = value;
            this.#kbdSend(PS2_ACK);
          } else {
            this.#kbdSend(PS2_RESEND);
          }
          return;
      }
    }
    switch (value) {
      case KBD_CMD_SET_LEDS:
      case KBD_CMD_TYPEMATIC:
      case KBD_CMD_SCANCODE_SET:
        k.awaiting = value;
        this.#kbdSend(PS2_ACK);
        return;
      case KBD_CMD_ECHO:
        this.#kbdSend(KBD_CMD_ECHO);
        return;
      case KBD_CMD_IDENTIFY:
        this.#kbdSend(PS2_ACK);
        this.#kbdSend(KBD_ID_MF2[0]);
        this.#kbdSend(KBD_ID_MF2[1]);
        return;
      case KBD_CMD_ENABLE:
        // The spec also has F4-F6 clear the keyboard's buffer; that could drop replies to
        // earlier commands still queued here, so keys already typed are kept instead.
        k.scanning = true;
        this.#kbdSend(PS2_ACK);
        return;
      case KBD_CMD_DISABLE:
        // Defaults (typematic, scan code set 2), and stop scanning.
        this.#kbd = { ...defaultKeyboard(), scanning: false };
        this.#kbdSend(PS2_ACK);
        return;
      case KBD_CMD_DEFAULTS:
        this.#kbd = { ...defaultKeyboard(), scanning: k.scanning };
        this.#kbdSend(PS2_ACK);
        return;
      case KBD_CMD_RESEND:
        this.#kbdSend(k.lastSent);
        return;
      case KBD_CMD_RESET:
        this.#kbd = defaultKeyboard();
        this.#kbdQueue.clear();
        this.#kbdSend(PS2_ACK);
        this.#kbdSend(PS2_BAT_OK);
        return;
      default:
        // The set 3 key-type commands (0xf7-0xfd) take effect only in set 3, sent here as set 2.
        if (value >= 0xf7 && value <= 0xfd) {
          this.#kbdSend(PS2_ACK);
          return;
        }
        this.metrics.missedWrites++;
        this.#kbdSend(PS2_RESEND);
    }
  }

  #mouseSend(value: number): void {
    this.#mouse.lastSent = value;
    if (!this.#mouseQueue.push(value)) this.metrics.missedWrites++;
  }

  #mouseCommand(value: number): void {
    const m = this.#mouse;
    if (m.awaiting !== 0) {
      const awaiting = m.awaiting;
      m.awaiting = 0;
      if (awaiting === AUX_CMD_SAMPLE_RATE) m.sampleRate = value;
      else m.resolution = value & 0x03;
      this.#mouseSend(PS2_ACK);
      return;
    }
    // In wrap mode the mouse echoes everything but the commands that leave it.
    if (m.wrap && value !== AUX_CMD_RESET_WRAP && value !== AUX_CMD_RESET) {
      this.#mouseSend(value);
      return;
    }
    switch (value) {
      case AUX_CMD_SET_SCALING_1_1:
      case AUX_CMD_SET_SCALING_2_1:
        m.scaling21 = value === AUX_CMD_SET_SCALING_2_1;
        this.#mouseSend(PS2_ACK);
        return;
      case AUX_CMD_SET_RESOLUTION:
      case AUX_CMD_SAMPLE_RATE:
        m.awaiting = value;
        this.#mouseSend(PS2_ACK);
        return;
      case AUX_CMD_STATUS: {
        this.#mouseSend(PS2_ACK);
        // Byte 1: remote mode, reporting, scaling 2:1, then the buttons (left, middle, right).
        let status = ((m.buttons & 1) << 2) | ((m.buttons & 4) >> 1) | ((m.buttons & 2) >> 1);
        if (m.remote) status |= 0x40;
        if (m.reporting) status |= 0x20;
        if (m.scaling21) status |= 0x10;
        this.#mouseSend(status);
        this.#mouseSend(m.resolution);
        this.#mouseSend(m.sampleRate);
        return;
      }
      case AUX_CMD_STREAM_MODE:
      case AUX_CMD_REMOTE_MODE:
        m.remote = value === AUX_CMD_REMOTE_MODE;
        this.#mouseSend(PS2_ACK);
        return;
      case AUX_CMD_READ_DATA:
        this.#mouseSend(PS2_ACK);
        this.#queueMousePacket(0, 0);
        return;
      case AUX_CMD_WRAP_MODE:
      case AUX_CMD_RESET_WRAP:
        m.wrap = value === AUX_CMD_WRAP_MODE;
        this.#mouseSend(PS2_ACK);
        return;
      case AUX_CMD_GET_ID:
        this.#mouseSend(PS2_ACK);
        this.#mouseSend(AUX_ID_STANDARD);
        return;
      case AUX_CMD_ENABLE:
      case AUX_CMD_DISABLE:
        m.reporting = value === AUX_CMD_ENABLE;
        this.#mouseSend(PS2_ACK);
        return;
      case AUX_CMD_DEFAULTS:
        Object.assign(m, defaultMouse(), { buttons: m.buttons });
        this.#mouseSend(PS2_ACK);
        return;
      case AUX_CMD_RESEND:
        this.#mouseSend(m.lastSent);
        return;
      case AUX_CMD_RESET:
        this.#mouse = { ...defaultMouse(), buttons: m.buttons };
        this.#mouseQueue.clear();
        this.#mouseSend(PS2_ACK);
        this.#mouseSend(PS2_BAT_OK);
        this.#mouseSend(AUX_ID_STANDARD);
        return;
      default:
        this.metrics.missedWrites++;
        this.#mouseSend(PS2_RESEND);
    }
  }

  /** A standard 3-byte PS/2 movement packet; 9-bit two's complement deltas, saturated. */
  #queueMousePacket(dx: number, dy: number): void {
    const x = Math.trunc(dx) || 0;
    const y = Math.trunc(dy) || 0;
    let head = 0x08 | (this.#mouse.buttons & 0x07);
    if (x < 0) head |= 0x10;
    if (y < 0) head |= 0x20;
    if (x < -256 || x > 255) head |= 0x40;
    if (y < -256 || y > 255) head |= 0x80;
    this.#mouseSend(head);
    this.#mouseSend(Math.max(-256, Math.min(255, x)) & 0xff);
    this.#mouseSend(Math.max(-256, Math.min(255, y)) & 0xff);
  }
}

function defaultKeyboard(): I8042KeyboardState {
  // Typematic default: 10.9 characters/s after 500 ms (0x2b).
  return { scancodeSet: 2, scanning: true, leds: 0, typematic: 0x2b, awaiting: 0, lastSent: 0 };
}

function defaultMouse(): I8042MouseState {
  // Defaults after reset: 100 samples/s, 4 counts/mm, 1:1 scaling, stream mode, not reporting.
  return {
    reporting: false,
    remote: false,
    wrap: false,
    scaling21: false,
    sampleRate: 100,
    resolution: 2,
    buttons: 0,
    awaiting: 0,
    lastSent: 0,
  };
}
