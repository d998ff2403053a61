/**
 * A National Semiconductor PC16550D UART, as found at COM1 (0x3f8, IRQ 4) on a PC.
 *
 * Written from the PC16550D datasheet. The serial line behind it is a host byte stream of
 * infinite speed: transmitted bytes reach the output sink at once, so THR and the
 * transmitter are always empty, and a character time is zero long.
 */
import type { BusDevice, DeviceMetrics, IrqLine } from '../../bus/device.js';

/** The UART decodes eight ports. */
export const UART_WINDOW = 8;
/** the receiver FIFO depth of a 16550 */
export const UART_RX_FIFO_SIZE = 16;

// Register offsets (datasheet table II). Offsets 0 and 1 switch meaning with LCR.DLAB.
export const UART_RBR = 0; // receiver buffer (read)
export const UART_THR = 0; // transmitter holding (write)
export const UART_DLL = 0; // divisor latch LSB (DLAB = 1)
export const UART_IER = 1; // interrupt enable
export const UART_DLM = 1; // divisor latch MSB (DLAB = 1)
export const UART_IIR = 2; // interrupt identification (read)
export const UART_FCR = 2; // FIFO control (write)
export const UART_LCR = 3; // line control
export const UART_MCR = 4; // modem control
export const UART_LSR = 5; // line status
export const UART_MSR = 6; // modem status
export const UART_SCR = 7; // scratch

export const UART_IER_ERBFI = 0x01; // received data available
export const UART_IER_ETBEI = 0x02; // transmitter holding register empty
export const UART_IER_ELSI = 0x04; // receiver line status
export const UART_IER_EDSSI = 0x08; // modem status
const UART_IER_MASK = 0x0f; // bits 4-7 are always 0 on a 16550

export const UART_IIR_NO_INT = 0x01; // bit 0 is 0 while an interrupt is pending
export const UART_IIR_MSI = 0x00; // modem status (priority 4)
export const UART_IIR_THRI = 0x02; // THR empty (priority 3)
export const UART_IIR_RDI = 0x04; // received data available (priority 2)
export const UART_IIR_RLSI = 0x06; // receiver line status (priority 1, highest)
export const UART_IIR_CTI = 0x0c; // character timeout (priority 2)
export const UART_IIR_FIFO_ENABLED = 0xc0;

export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
export const UART_FCR_CLEAR_XMIT = 0x04;
export const UART_FCR_DMA_SELECT = 0x08;
export const UART_FCR_TRIGGER_MASK = 0xc0;

export const UART_LCR_DLAB = 0x80;

export const UART_MCR_DTR = 0x01;
export const UART_MCR_RTS = 0x02;
export const UART_MCR_OUT1 = 0x04;
export const UART_MCR_OUT2 = 0x08;
export const UART_MCR_LOOP = 0x10;
const UART_MCR_MASK = 0x1f; // bits 5-7 are always 0

export const UART_LSR_DR = 0x01; // data ready
export const UART_LSR_OE = 0x02; // overrun error
export const UART_LSR_PE = 0x04; // parity error
export const UART_LSR_FE = 0x08; // framing error
export const UART_LSR_BI = 0x10; // break interrupt
export const UART_LSR_THRE = 0x20; // THR empty
export const UART_LSR_TEMT = 0x40; // transmitter empty
export const UART_LSR_FIFOE = 0x80; // error in receiver FIFO

export const UART_MSR_DCTS = 0x01;
export const UART_MSR_DDSR = 0x02;
export const UART_MSR_TERI = 0x04; // trailing edge of ring indicator
export const UART_MSR_DDCD = 0x08;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_RI = 0x40;
export const UART_MSR_DCD = 0x80;
const UART_MSR_DELTAS = 0x0f;

/** The line is always connected: the far end asserts CTS, DSR and DCD and never rings. */
const MSR_CONNECTED = UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;

/** receiver FIFO trigger levels selected by FCR bits 6-7 */
const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;

export interface Uart16550State {
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  dll: number;
  dlm: number;
  /** FCR as last programmed: FIFO enable and trigger level (the reset bits self-clear) */
  fcr: number;
  /** MSR: line states and the delta bits not yet read */
  msr: number;
  overrun: boolean;
  /** a THRE interrupt is latched (set when THR empties, cleared by reading it from IIR) */
  thrInterrupt: boolean;
  /** bytes waiting in the receiver, oldest first */
  rx: number[];
}

export interface Uart16550Options {
  /** the interrupt line to the PIC; driven only when its level changes */
  irq: IrqLine;
  /** takes each byte the guest transmits */
  output: (byte: number) => void;
  /** called when `receive()` would take bytes again after it turned some away */
  rxSpace?: () => void;
  state?: Uart16550State;
}

export class Uart16550 implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };

  readonly #irq: IrqLine;
  readonly #output: (byte: number) => void;
  readonly #rxSpace: (() => void) | undefined;

  #ier = 0;
  #lcr = 0;
  #mcr = 0;
  #scr = 0;
  // Firmware leaves 9600 baud (115200 / 12); the divisor changes nothing here.
  #dll = 0x0c;
  #dlm = 0;
  #fcr = 0;
  #msr = MSR_CONNECTED;
  #overrun = false;
  #thrInterrupt = false;

  readonly #rx = new Uint8Array(UART_RX_FIFO_SIZE);
  #rxHead = 0;
  #rxCount = 0;
  /** `receive()` turned bytes away: tell the owner when there is room again */
  #rxRefused = false;
  #irqLevel = false;
  /** where LSR is mirrored for other threads (see `mirrorLsr`) */
  #lsrMirror: Int32Array | undefined;
  #lsrMirrorIndex = 0;

  constructor(options: Uart16550Options) {
    this.#irq = options.irq;
    this.#output = options.output;
    this.#rxSpace = options.rxSpace;
    const s = options.state;
    if (s !== undefined) {
      this.#ier = s.ier & UART_IER_MASK;
      this.#lcr = s.lcr & 0xff;
      this.#mcr = s.mcr & UART_MCR_MASK;
      this.#scr = s.scr & 0xff;
      this.#dll = s.dll & 0xff;
      this.#dlm = s.dlm & 0xff;
      this.#fcr = s.fcr & (UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT | UART_FCR_TRIGGER_MASK);
      this.#msr = s.msr & 0xff;
      this.#overrun = s.overrun;
      this.#thrInterrupt = s.thrInterrupt;
      const n = Math.min(s.rx.length, this.#rxCapacity());
      for (let i = 0; i < n; i++) this.#rx[i] = s.rx[i]! & 0xff;
      this.#rxCount = n;
      // The line restored from a snapshot starts low; raise it if an interrupt is pending.
      this.#updateIrq();
    }
  }

  save(): Uart16550State {
    const rx: number[] = [];
    for (let i = 0; i < this.#rxCount; i++) rx.push(this.#rx[(this.#rxHead + i) % UART_RX_FIFO_SIZE]!);
    return {
      ier: this.#ier,
      lcr: this.#lcr,
      mcr: this.#mcr,
      scr: this.#scr,
      dll: this.#dll,
      dlm: this.#dlm,
      fcr: this.#fcr,
      msr: this.#msr,
      overrun: this.#overrun,
      thrInterrupt: this.#thrInterrupt,
      rx,
    };
  }

  /**
   * Keeps `cells[index]` equal to what an LSR read returns, or -1 while reading LSR has a
   * side effect (an overrun to clear) or follows the guest's own writes (loopback). A vCPU
   * thread answers LSR polls from it without waiting for this thread.
   */
  mirrorLsr(cells: Int32Array, index: number): void {
    this.#lsrMirror = cells;
    this.#lsrMirrorIndex = index;
    this.#publishLsr();
  }

  #publishLsr(): void {
    if (this.#lsrMirror === undefined) return;
    const v =
      this.#overrun || (this.#mcr & UART_MCR_LOOP) !== 0
        ? -1
        : UART_LSR_THRE | UART_LSR_TEMT | (this.#rxCount > 0 ? UART_LSR_DR : 0);
    Atomics.store(this.#lsrMirror, this.#lsrMirrorIndex, v);
  }

  /**
   * Host input for the guest. Takes as many bytes as the receiver has room for and returns
   * that count; the caller keeps the rest and offers them again when `rxSpace` fires.
   * In loopback mode the serial input is disconnected, so nothing is taken.
   */
  receive(bytes: Uint8Array): number {
    let taken = 0;
    if ((this.#mcr & UART_MCR_LOOP) === 0) {
      const room = this.#rxCapacity() - this.#rxCount;
      taken = Math.min(room, bytes.length);
      for (let i = 0; i < taken; i++) this.#rxPush(bytes[i]!);
    }
    if (taken < bytes.length) this.#rxRefused = true;
    if (taken > 0) this.#updateIrq();
    return taken;
  }

  read(offset: number, data: Uint8Array): void {
    // An 8-bit ISA device: a wider access reaches consecutive ports, one byte each.
    for (let i = 0; i < data.length; i++) data[i] = this.#readRegister(offset + i);
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.#writeRegister(offset + i, data[i]!);
  }

  #readRegister(port: number): number {
    const dlab = (this.#lcr & UART_LCR_DLAB) !== 0;
    switch (port) {
      case UART_RBR:
        return dlab ? this.#dll : this.#readRbr();
      case UART_IER:
        return dlab ? this.#dlm : this.#ier;
      case UART_IIR:
        return this.#readIir();
      case UART_LCR:
        return this.#lcr;
      case UART_MCR:
        return this.#mcr;
      case UART_LSR:
        return this.#readLsr();
      case UART_MSR:
        return this.#readMsr();
      case UART_SCR:
        return this.#scr;
      default:
        this.metrics.missedReads++;
        return 0xff;
    }
  }

  #writeRegister(port: number, value: number): void {
    const dlab = (this.#lcr & UART_LCR_DLAB) !== 0;
    switch (port) {
      case UART_THR:
        if (dlab) this.#dll = value;
        else this.#transmit(value);
        return;
      case UART_IER:
        if (dlab) this.#dlm = value;
        else this.#writeIer(value);
        return;
      case UART_FCR:
        this.#writeFcr(value);
        return;
      case UART_LCR:
        this.#lcr = value;
        return;
      case UART_MCR:
        this.#writeMcr(value);
        return;
      case UART_SCR:
        this.#scr = value;
        return;
      default:
        // LSR and MSR are for factory test only (datasheet); nothing else decodes.
        this.metrics.missedWrites++;
    }
  }

  #readRbr(): number {
    if (this.#rxCount === 0) return 0;
    const byte = this.#rx[this.#rxHead]!;
    this.#rxHead = (this.#rxHead + 1) % UART_RX_FIFO_SIZE;
    this.#rxCount--;
    this.#updateIrq();
    // Offer the owner room only once the FIFO is empty, so it refills in bursts
    // rather than one byte per guest read.
    if (this.#rxCount === 0) this.#notifyRxSpace();
    return byte;
  }

  #readIir(): number {
    const id = this.#pendingInterrupt();
    // Reading IIR clears a THRE interrupt, but only if that is the one it reports.
    if (id === UART_IIR_THRI) {
      this.#thrInterrupt = false;
      this.#updateIrq();
    }
    return id | (this.#fifoEnabled() ? UART_IIR_FIFO_ENABLED : 0);
  }

  #readLsr(): number {
    let lsr = UART_LSR_THRE | UART_LSR_TEMT;
    if (this.#rxCount > 0) lsr |= UART_LSR_DR;
    if (this.#overrun) {
      lsr |= UART_LSR_OE;
      // The error bits clear on an LSR read, and with them the line status interrupt.
      this.#overrun = false;
      this.#updateIrq();
    }
    return lsr;
  }

  #readMsr(): number {
    const msr = this.#msr;
    if ((msr & UART_MSR_DELTAS) !== 0) {
      this.#msr = msr & ~UART_MSR_DELTAS;
      this.#updateIrq();
    }
    return msr;
  }

  #transmit(byte: number): void {
    if ((this.#mcr & UART_MCR_LOOP) !== 0) this.#loopBack(byte);
    else this.#output(byte);
    // Writing THR clears a THRE interrupt; the byte leaves at once, so THR is empty again
    // and the interrupt is latched anew (a new edge if IIR had cleared it).
    this.#thrInterrupt = true;
    this.#updateIrq();
  }

  #loopBack(byte: number): void {
    if (this.#rxCount < this.#rxCapacity()) {
      this.#rxPush(byte);
      return;
    }
    this.#overrun = true;
    if (!this.#fifoEnabled()) {
      // Without FIFOs the new character overwrites the unread one in RBR; with FIFOs the
      // one in the shift register is lost and the FIFO is kept (datasheet, LSR bit 1).
      this.#rx[this.#rxHead] = byte;
    }
  }

  #writeIer(value: number): void {
    const old = this.#ier;
    this.#ier = value & UART_IER_MASK;
    // Enabling ETBEI while THR is empty (always, here) raises the THRE interrupt: drivers
    // (Linux's 8250 among them) test for this edge and fall back to polling without it.
    if ((this.#ier & ~old & UART_IER_ETBEI) !== 0) this.#thrInterrupt = true;
    else if ((this.#ier & UART_IER_ETBEI) === 0) this.#thrInterrupt = false;
    this.#updateIrq();
  }

  #writeFcr(value: number): void {
    const enable = (value & UART_FCR_ENABLE_FIFO) !== 0;
    // Switching between FIFO and 16450 mode clears the FIFOs.
    let clear = enable !== this.#fifoEnabled();
    if (!enable) {
      // FCR0 must be 1 for the other bits to be programmed.
      this.#fcr = 0;
    } else {
      this.#fcr = value & (UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT | UART_FCR_TRIGGER_MASK);
      if ((value & UART_FCR_CLEAR_RCVR) !== 0) clear = true;
      // UART_FCR_CLEAR_XMIT: the transmit FIFO is always empty.
    }
    if (clear) {
      this.#rxHead = 0;
      this.#rxCount = 0;
    }
    this.#updateIrq();
    if (clear) this.#notifyRxSpace();
  }

  #writeMcr(value: number): void {
    const oldInputs = this.#modemInputs();
    const wasLoop = (this.#mcr & UART_MCR_LOOP) !== 0;
    this.#mcr = value & UART_MCR_MASK;
    const inputs = this.#modemInputs();
    const changed = oldInputs ^ inputs;
    let deltas = 0;
    if (changed & UART_MSR_CTS) deltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) deltas |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD) deltas |= UART_MSR_DDCD;
    if (oldInputs & ~inputs & UART_MSR_RI) deltas |= UART_MSR_TERI;
    this.#msr = inputs | (this.#msr & UART_MSR_DELTAS) | deltas;
    this.#updateIrq();
    // Leaving loopback reconnects the serial input.
    if (wasLoop && (this.#mcr & UART_MCR_LOOP) === 0) this.#notifyRxSpace();
  }

  /** MSR bits 4-7: the far end's lines, or in loopback the UART's own MCR outputs. */
  #modemInputs(): number {
    const mcr = this.#mcr;
    if ((mcr & UART_MCR_LOOP) === 0) return MSR_CONNECTED;
    let msr = 0;
    if (mcr & UART_MCR_RTS) msr |= UART_MSR_CTS;
    if (mcr & UART_MCR_DTR) msr |= UART_MSR_DSR;
    if (mcr & UART_MCR_OUT1) msr |= UART_MSR_RI;
    if (mcr & UART_MCR_OUT2) msr |= UART_MSR_DCD;
    return msr;
  }

  /** The IIR interrupt ID of the highest-priority pending interrupt, or UART_IIR_NO_INT. */
  #pendingInterrupt(): number {
    const ier = this.#ier;
    if ((ier & UART_IER_ELSI) !== 0 && this.#overrun) return UART_IIR_RLSI;
    if ((ier & UART_IER_ERBFI) !== 0 && this.#rxCount > 0) {
      if (!this.#fifoEnabled() || this.#rxCount >= RX_TRIGGER_LEVELS[this.#fcr >>> 6]!) return UART_IIR_RDI;
      // Below the trigger level the 16550 reports a character timeout once four character
      // times pass with no input and no read. On this infinitely fast line they already
      // have by the time the guest can look.
      return UART_IIR_CTI;
    }
    if ((ier & UART_IER_ETBEI) !== 0 && this.#thrInterrupt) return UART_IIR_THRI;
    if ((ier & UART_IER_EDSSI) !== 0 && (this.#msr & UART_MSR_DELTAS) !== 0) return UART_IIR_MSI;
    return UART_IIR_NO_INT;
  }

  #updateIrq(): void {
    // On a PC the UART's INTR pin reaches the PIC through a buffer enabled by OUT2; loopback
    // forces OUT2 inactive, so in loopback no interrupt leaves the chip.
    const level =
      (this.#mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) === UART_MCR_OUT2 && this.#pendingInterrupt() !== UART_IIR_NO_INT;
    if (level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.#irq.set(level);
    }
    // Every change to the receiver, the overrun flag or loopback comes through here.
    this.#publishLsr();
  }

  #fifoEnabled(): boolean {
    return (this.#fcr & UART_FCR_ENABLE_FIFO) !== 0;
  }

  /** In 16450 mode RBR holds a single character. */
  #rxCapacity(): number {
    return this.#fifoEnabled() ? UART_RX_FIFO_SIZE : 1;
  }

  #rxPush(byte: number): void {
    this.#rx[(this.#rxHead + this.#rxCount) % UART_RX_FIFO_SIZE] = byte;
    this.#rxCount++;
  }

  /** Called last in an access, so the owner may call `receive()` from the callback. */
  #notifyRxSpace(): void {
    if (!this.#rxRefused) return;
    this.#rxRefused = false;
    this.#rxSpace?.();
  }
}
