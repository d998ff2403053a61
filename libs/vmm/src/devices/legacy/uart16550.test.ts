import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import { fuzzEveryRegister, inb, inw, outb, outw } from '../../testing/pio.js';
import {
  Uart16550,
  UART_DLL,
  UART_DLM,
  UART_FCR,
  UART_FCR_CLEAR_RCVR,
  UART_FCR_ENABLE_FIFO,
  UART_IER,
  UART_IER_EDSSI,
  UART_IER_ELSI,
  UART_IER_ERBFI,
  UART_IER_ETBEI,
  UART_IIR,
  UART_IIR_CTI,
  UART_IIR_FIFO_ENABLED,
  UART_IIR_MSI,
  UART_IIR_NO_INT,
  UART_IIR_RDI,
  UART_IIR_RLSI,
  UART_IIR_THRI,
  UART_LCR,
  UART_LCR_DLAB,
  UART_LSR,
  UART_LSR_DR,
  UART_LSR_OE,
  UART_LSR_TEMT,
  UART_LSR_THRE,
  UART_MCR,
  UART_MCR_DTR,
  UART_MCR_LOOP,
  UART_MCR_OUT1,
  UART_MCR_OUT2,
  UART_MCR_RTS,
  UART_MSR,
  UART_MSR_CTS,
  UART_MSR_DCD,
  UART_MSR_DCTS,
  UART_MSR_DDCD,
  UART_MSR_DDSR,
  UART_MSR_DSR,
  UART_MSR_RI,
  UART_MSR_TERI,
  UART_RBR,
  UART_SCR,
  UART_THR,
  UART_WINDOW,
} from './uart16550.js';

function setup(options: { rxSpace?: () => void } = {}) {
  const irq = new FakeIrqLine();
  const sent: number[] = [];
  const uart = new Uart16550({ irq, output: (b) => sent.push(b), ...options });
  return { uart, irq, sent };
}

/** What Linux's 8250 driver leaves: 8N1, FIFO on with a 1-byte trigger, OUT2 set. */
function linuxLike(uart: Uart16550): void {
  outb(uart, UART_LCR, 0x03);
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO);
  outb(uart, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
}

test('uart16550 sends a THR write to the output sink', () => {
  const { uart, sent } = setup();

  outb(uart, UART_THR, 0x41);
  outb(uart, UART_THR, 0x0a);

  assert.deepEqual(sent, [0x41, 0x0a]);
});

test('uart16550 reports THRE and TEMT after a THR write: the host drains at once', () => {
  const { uart } = setup();

  outb(uart, UART_THR, 0x41);

  assert.equal(inb(uart, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
});

test('uart16550 maps offsets 0 and 1 to the divisor latch while DLAB is set', () => {
  const { uart, sent } = setup();

  outb(uart, UART_LCR, UART_LCR_DLAB | 0x03);
  outb(uart, UART_DLL, 0x01);
  outb(uart, UART_DLM, 0x02);
  const dll = inb(uart, UART_DLL);
  const dlm = inb(uart, UART_DLM);
  outb(uart, UART_LCR, 0x03);

  assert.deepEqual([dll, dlm], [0x01, 0x02]);
  assert.deepEqual(sent, []);
  assert.equal(inb(uart, UART_IER), 0);
});

test('uart16550 drains the rx fifo on RBR read, oldest byte first', () => {
  const { uart } = setup();
  linuxLike(uart);
  uart.receive(new Uint8Array([1, 2, 3]));

  const bytes = [inb(uart, UART_RBR), inb(uart, UART_RBR), inb(uart, UART_RBR)];

  assert.deepEqual(bytes, [1, 2, 3]);
  assert.equal(inb(uart, UART_LSR) & UART_LSR_DR, 0);
});

test('uart16550 sets LSR.DR while received data waits', () => {
  const { uart } = setup();

  uart.receive(new Uint8Array([0x55]));

  assert.equal(inb(uart, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
});

test('uart16550 takes 16 bytes with the FIFO on and 1 without', () => {
  const withFifo = setup().uart;
  outb(withFifo, UART_FCR, UART_FCR_ENABLE_FIFO);
  const without = setup().uart;

  const takenWithFifo = withFifo.receive(new Uint8Array(20));
  const takenWithout = without.receive(new Uint8Array(20));

  assert.equal(takenWithFifo, 16);
  assert.equal(takenWithout, 1);
});

test('uart16550 calls rxSpace once the fifo drains after turning bytes away', () => {
  let calls = 0;
  const { uart } = setup({ rxSpace: () => calls++ });
  linuxLike(uart);
  uart.receive(new Uint8Array(17));

  for (let i = 0; i < 15; i++) inb(uart, UART_RBR);
  const before = calls;
  inb(uart, UART_RBR);

  assert.equal(before, 0);
  assert.equal(calls, 1);
});

test('uart16550 does not call rxSpace when nothing was turned away', () => {
  let calls = 0;
  const { uart } = setup({ rxSpace: () => calls++ });
  linuxLike(uart);
  uart.receive(new Uint8Array(3));

  for (let i = 0; i < 3; i++) inb(uart, UART_RBR);

  assert.equal(calls, 0);
});

test('uart16550 lets the owner refill from inside rxSpace', () => {
  let uart!: Uart16550;
  ({ uart } = setup({ rxSpace: () => void uart.receive(new Uint8Array([9])) }));
  linuxLike(uart);
  uart.receive(new Uint8Array(17));

  for (let i = 0; i < 16; i++) inb(uart, UART_RBR);

  assert.equal(inb(uart, UART_RBR), 9);
});

test('uart16550 raises its irq for received data only while OUT2 is set', () => {
  const { uart, irq } = setup();
  outb(uart, UART_IER, UART_IER_ERBFI);
  uart.receive(new Uint8Array([1]));
  const withoutOut2 = irq.level;

  outb(uart, UART_MCR, UART_MCR_OUT2);

  assert.equal(withoutOut2, false);
  assert.equal(irq.level, true);
});

test('uart16550 lowers its irq when the last received byte is read', () => {
  const { uart, irq } = setup();
  linuxLike(uart);
  outb(uart, UART_IER, UART_IER_ERBFI);
  uart.receive(new Uint8Array([1, 2]));

  inb(uart, UART_RBR);
  const afterFirst = irq.level;
  inb(uart, UART_RBR);

  assert.equal(afterFirst, true);
  assert.equal(irq.level, false);
});

test('uart16550 reports a character timeout below the trigger level and data available at it', () => {
  const { uart } = setup();
  linuxLike(uart);
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO | 0x40); // trigger at 4 bytes
  outb(uart, UART_IER, UART_IER_ERBFI);

  uart.receive(new Uint8Array(3));
  const below = inb(uart, UART_IIR);
  uart.receive(new Uint8Array(1));
  const at = inb(uart, UART_IIR);

  assert.equal(below, UART_IIR_FIFO_ENABLED | UART_IIR_CTI);
  assert.equal(at, UART_IIR_FIFO_ENABLED | UART_IIR_RDI);
});

test('uart16550 reports FIFO mode in IIR bits 6-7 and clears the rx fifo on FCR reset', () => {
  const { uart } = setup();
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO);
  uart.receive(new Uint8Array(5));

  const iir = inb(uart, UART_IIR);
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);

  assert.equal(iir & UART_IIR_FIFO_ENABLED, UART_IIR_FIFO_ENABLED);
  assert.equal(inb(uart, UART_LSR) & UART_LSR_DR, 0);
});

test('uart16550 clears the fifos when leaving FIFO mode', () => {
  const { uart } = setup();
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO);
  uart.receive(new Uint8Array(5));

  outb(uart, UART_FCR, 0);

  assert.equal(inb(uart, UART_LSR) & UART_LSR_DR, 0);
  assert.equal(inb(uart, UART_IIR) & UART_IIR_FIFO_ENABLED, 0);
});

test('uart16550 raises the THRE interrupt when ETBEI is enabled', () => {
  const { uart, irq } = setup();
  linuxLike(uart);

  outb(uart, UART_IER, UART_IER_ETBEI);

  assert.equal(irq.level, true);
  assert.equal(inb(uart, UART_IIR) & 0x0f, UART_IIR_THRI);
});

test('uart16550 clears the THRE interrupt on the IIR read that reports it', () => {
  const { uart, irq } = setup();
  linuxLike(uart);
  outb(uart, UART_IER, UART_IER_ETBEI);

  inb(uart, UART_IIR);

  assert.equal(irq.level, false);
  assert.equal(inb(uart, UART_IIR) & 0x0f, UART_IIR_NO_INT);
});

test('uart16550 raises the THRE interrupt again with a new edge after a THR write', () => {
  const { uart, irq } = setup();
  linuxLike(uart);
  outb(uart, UART_IER, UART_IER_ETBEI);
  inb(uart, UART_IIR);
  irq.clearHistory();

  outb(uart, UART_THR, 0x41);

  assert.deepEqual(irq.history, [true]);
});

test('uart16550 keeps the THRE interrupt when IIR reports a higher-priority one', () => {
  const { uart } = setup();
  linuxLike(uart);
  outb(uart, UART_IER, UART_IER_ETBEI | UART_IER_ERBFI);
  uart.receive(new Uint8Array([1]));

  const first = inb(uart, UART_IIR) & 0x0f;
  inb(uart, UART_RBR);
  const second = inb(uart, UART_IIR) & 0x0f;

  assert.equal(first, UART_IIR_RDI);
  assert.equal(second, UART_IIR_THRI);
});

test('uart16550 drops the THRE interrupt when ETBEI is disabled', () => {
  const { uart, irq } = setup();
  linuxLike(uart);
  outb(uart, UART_IER, UART_IER_ETBEI);

  outb(uart, UART_IER, 0);

  assert.equal(irq.level, false);
});

test('uart16550 orders interrupts: line status, received data, THRE, modem status', () => {
  const { uart } = setup();
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO);
  outb(uart, UART_MCR, UART_MCR_LOOP);
  for (let i = 0; i < 17; i++) outb(uart, UART_THR, i); // the 17th overruns
  outb(uart, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS); // sets DCTS

  outb(uart, UART_IER, UART_IER_ELSI | UART_IER_ERBFI | UART_IER_ETBEI | UART_IER_EDSSI);
  const order = [inb(uart, UART_IIR) & 0x0f];
  inb(uart, UART_LSR);
  order.push(inb(uart, UART_IIR) & 0x0f);
  for (let i = 0; i < 16; i++) inb(uart, UART_RBR);
  order.push(inb(uart, UART_IIR) & 0x0f); // reports and clears THRE
  order.push(inb(uart, UART_IIR) & 0x0f);
  inb(uart, UART_MSR);
  order.push(inb(uart, UART_IIR) & 0x0f);

  assert.deepEqual(order, [UART_IIR_RLSI, UART_IIR_RDI, UART_IIR_THRI, UART_IIR_MSI, UART_IIR_NO_INT]);
});

test('uart16550 loops THR back to the receiver in loopback mode, not to the output', () => {
  const { uart, sent } = setup();
  outb(uart, UART_MCR, UART_MCR_LOOP);

  outb(uart, UART_THR, 0x5a);

  assert.deepEqual(sent, []);
  assert.equal(inb(uart, UART_RBR), 0x5a);
});

test('uart16550 sets OE on a loopback overrun and clears it on LSR read', () => {
  const { uart } = setup();
  outb(uart, UART_MCR, UART_MCR_LOOP);
  outb(uart, UART_THR, 1);

  outb(uart, UART_THR, 2);
  const first = inb(uart, UART_LSR);
  const second = inb(uart, UART_LSR);

  assert.equal(first & UART_LSR_OE, UART_LSR_OE);
  assert.equal(second & UART_LSR_OE, 0);
  assert.equal(inb(uart, UART_RBR), 2); // without FIFOs the new byte overwrites RBR
});

test('uart16550 raises the line status interrupt on overrun', () => {
  const { uart } = setup();
  outb(uart, UART_MCR, UART_MCR_LOOP);
  outb(uart, UART_IER, UART_IER_ELSI);
  outb(uart, UART_THR, 1);

  outb(uart, UART_THR, 2);

  assert.equal(inb(uart, UART_IIR) & 0x0f, UART_IIR_RLSI);
});

test('uart16550 reflects MCR in MSR in loopback mode, with delta bits cleared on read', () => {
  const { uart } = setup();
  outb(uart, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
  inb(uart, UART_MSR);

  outb(uart, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_DTR | UART_MCR_OUT2);
  const msr = inb(uart, UART_MSR);

  assert.equal(msr, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD | UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD | UART_MSR_TERI);
  assert.equal(inb(uart, UART_MSR) & 0x0f, 0);
});

test('uart16550 reports CTS, DSR and DCD of a connected line outside loopback', () => {
  const { uart } = setup();

  const msr = inb(uart, UART_MSR);

  assert.equal(msr, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
  assert.equal(msr & UART_MSR_RI, 0);
});

test('uart16550 keeps interrupts inside the chip in loopback: OUT2 is forced inactive', () => {
  const { uart, irq } = setup();
  outb(uart, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
  outb(uart, UART_IER, UART_IER_ERBFI);

  outb(uart, UART_THR, 1);

  assert.equal(inb(uart, UART_IIR) & 0x0f, UART_IIR_RDI);
  assert.equal(irq.level, false);
});

test('uart16550 takes no host input in loopback and calls rxSpace when it ends', () => {
  let calls = 0;
  const { uart } = setup({ rxSpace: () => calls++ });
  outb(uart, UART_MCR, UART_MCR_LOOP);

  const taken = uart.receive(new Uint8Array([1]));
  outb(uart, UART_MCR, UART_MCR_OUT2);

  assert.equal(taken, 0);
  assert.equal(calls, 1);
});

test('uart16550 keeps what the guest writes to the scratch register', () => {
  const { uart } = setup();

  outb(uart, UART_SCR, 0xa5);

  assert.equal(inb(uart, UART_SCR), 0xa5);
});

test('uart16550 masks IER and MCR to the bits a 16550 has', () => {
  const { uart } = setup();

  outb(uart, UART_IER, 0xff);
  outb(uart, UART_MCR, 0xff & ~UART_MCR_LOOP);

  assert.equal(inb(uart, UART_IER), 0x0f);
  assert.equal(inb(uart, UART_MCR), 0x0f);
});

test('uart16550 drives its irq only when the level changes', () => {
  const { uart, irq } = setup();
  linuxLike(uart);
  outb(uart, UART_IER, UART_IER_ERBFI | UART_IER_ETBEI);

  for (let i = 0; i < 10; i++) outb(uart, UART_THR, i);
  uart.receive(new Uint8Array(8));
  for (let i = 0; i < 8; i++) inb(uart, UART_RBR);
  inb(uart, UART_IIR);

  assert.equal(irq.hasRedundantSets, false);
});

test('uart16550 restores registers, the rx fifo and a pending interrupt from saved state', () => {
  const { uart } = setup();
  linuxLike(uart);
  outb(uart, UART_SCR, 0x99);
  outb(uart, UART_IER, UART_IER_ERBFI);
  uart.receive(new Uint8Array([7, 8, 9]));
  inb(uart, UART_RBR);

  const state = JSON.parse(JSON.stringify(uart.save()));
  const irq = new FakeIrqLine();
  const restored = new Uart16550({ irq, output: () => {}, state });

  assert.deepEqual(restored.save(), uart.save());
  assert.equal(irq.level, true);
  assert.equal(inb(restored, UART_RBR), 8);
  assert.equal(inb(restored, UART_SCR), 0x99);
});

test('uart16550 splits a wider access into byte accesses at consecutive ports', () => {
  const { uart } = setup();

  outw(uart, UART_MCR, 0xff00 | UART_MCR_OUT2); // MCR, then LSR (ignored)
  const lcrMcr = inw(uart, UART_LCR);

  assert.equal(lcrMcr, UART_MCR_OUT2 << 8);
  assert.equal(uart.metrics.missedWrites, 1);
});

test('uart16550 counts accesses past its eight registers and answers 0xff', () => {
  const { uart } = setup();

  const value = inb(uart, UART_WINDOW);
  outb(uart, UART_WINDOW + 3, 1);

  assert.equal(value, 0xff);
  assert.deepEqual(uart.metrics, { missedReads: 1, missedWrites: 1 });
});

test('uart16550 never throws on any value, offset or width', () => {
  const { uart } = setup();

  assert.doesNotThrow(() => fuzzEveryRegister(uart, UART_WINDOW));
  assert.doesNotThrow(() => uart.receive(new Uint8Array(100)));
  assert.doesNotThrow(() => JSON.stringify(uart.save()));
});

test('uart16550 mirrors LSR as a read would return it, through input, reads and FIFO resets', () => {
  const { uart } = setup();
  const cells = new Int32Array(new SharedArrayBuffer(8));
  uart.mirrorLsr(cells, 1);
  linuxLike(uart);
  assert.equal(cells[1], UART_LSR_THRE | UART_LSR_TEMT);
  assert.equal(cells[1], inb(uart, UART_LSR));

  uart.receive(Uint8Array.of(0x41, 0x42));
  assert.equal(cells[1], UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR);
  assert.equal(cells[1], inb(uart, UART_LSR));
  inb(uart, UART_RBR);
  assert.equal(cells[1] & UART_LSR_DR, UART_LSR_DR, 'one byte still waits');
  inb(uart, UART_RBR);
  assert.equal(cells[1], UART_LSR_THRE | UART_LSR_TEMT, 'the receiver is empty');

  uart.receive(Uint8Array.of(0x43));
  outb(uart, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
  assert.equal(cells[1], UART_LSR_THRE | UART_LSR_TEMT, 'a FIFO reset empties the receiver');
  assert.equal(cells[0], 0, 'only its own cell is written');
});

test('uart16550 withholds the LSR mirror while a read would clear an overrun, and in loopback', () => {
  const { uart } = setup();
  const cells = new Int32Array(new SharedArrayBuffer(4));
  uart.mirrorLsr(cells, 0);
  outb(uart, UART_MCR, UART_MCR_LOOP);
  assert.equal(cells[0], -1, 'in loopback LSR follows the guest\'s own THR writes');
  outb(uart, UART_THR, 1);
  outb(uart, UART_THR, 2);
  assert.equal(cells[0], -1);
  outb(uart, UART_MCR, 0);
  assert.equal(cells[0], -1, 'the overrun is still to be read');
  assert.equal(inb(uart, UART_LSR) & UART_LSR_OE, UART_LSR_OE);
  assert.equal(cells[0], UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR, 'once read, the mirror holds again');
});
