import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createMailbox, createWriteCounter, MailboxConsumer, MailboxProducer, MB_RING } from './mailbox.js';

test('mailbox applies posted writes in order and a read sees every earlier write', async () => {
  const sab = createMailbox();
  let sum = 0;
  let bytes = 0;
  const log: string[] = [];
  const consumer = new MailboxConsumer(sab, (mmio, isRead, addr, data) => {
    const dv = new DataView(data.buffer, data.byteOffset, data.length);
    if (!isRead) {
      if (mmio) sum += dv.getUint32(0, true);
      else bytes++;
      return;
    }
    if (addr === 0xd0000000) dv.setUint32(0, sum, true);
    else {
      log.push(`read ${mmio ? 'mmio' : 'pio'} 0x${addr.toString(16)}/${data.length}`);
      dv.setUint32(0, 0x11223344, true);
      dv.setUint32(4, 0x55667788, true);
    }
  });
  consumer.start();
  const rounds = 3 * MB_RING;
  // The fixture is TypeScript: register tsx's loader inside the worker before importing it.
  const fixture = new URL('./mailbox.fixture.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(fixture)}); })`;
  const w = new Worker(boot, { eval: true, workerData: { sab, rounds } });
  const result = await new Promise<{ seen: number[]; hi: number; lo: number }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  consumer.close();
  let expect = 0;
  result.seen.forEach((v, i) => {
    expect += i + 1;
    assert.equal(v, expect | 0, `read ${i} saw the writes before it`);
  });
  assert.equal(bytes, rounds);
  assert.equal(result.lo, 0x11223344);
  assert.equal(result.hi, 0x55667788);
  assert.deepEqual(log, ['read mmio 0x100000010/8']);
});

test('a producer is idle only once the device thread has applied all it posted', () => {
  const sab = createMailbox();
  const applied: number[] = [];
  const consumer = new MailboxConsumer(sab, (_mmio, _isRead, addr) => {
    // the write is applied before the producer sees the mailbox idle
    assert.equal(producer.idle(), false);
    applied.push(addr);
  });
  const producer = new MailboxProducer(sab);
  assert.equal(producer.idle(), true);
  producer.write(false, 0x3fc, 1, 0x13, 0);
  producer.write(false, 0x3fa, 1, 0x07, 0);
  assert.equal(producer.idle(), false);
  consumer.drain();
  assert.deepEqual(applied, [0x3fc, 0x3fa]);
  assert.equal(producer.idle(), true);
  consumer.close();
});

test('with a shared write counter, a vCPU posts only after other vCPUs\' writes have landed', async () => {
  const counter = createWriteCounter();
  const order: string[] = [];
  const a = createMailbox();
  const b = createMailbox();
  const ca = new MailboxConsumer(a, (_m, _r, addr, data) => order.push(`a 0x${addr.toString(16)}=${data[0]}`), counter);
  const cb = new MailboxConsumer(b, (_m, _r, addr, data) => order.push(`b 0x${addr.toString(16)}=${data[0]}`), counter);
  const pa = new MailboxProducer(a, counter);
  pa.write(false, 0x3f8, 1, 0x41, 0); // vCPU a's byte, not applied yet
  assert.equal(pa.settled(), false);

  const fixture = new URL('./mailbox-order.fixture.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(fixture)}); })`;
  const w = new Worker(boot, { eval: true, workerData: { sab: b, counter } });
  let posted = false;
  w.on('message', () => (posted = true));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(posted, false, 'vCPU b waits while a\'s write is on its way');
  cb.drain();
  assert.deepEqual(order, [], 'nothing of b was posted');

  ca.drain();
  while (!posted) await new Promise((r) => setTimeout(r, 10));
  cb.drain();
  assert.deepEqual(order, ['a 0x3f8=65', 'b 0x3f8=66']);
  assert.equal(pa.settled(), true);
  await w.terminate();
  ca.close();
  cb.close();
});

test('a mark tells when what a vCPU posted so far is applied; othersSettled ignores its own writes', () => {
  const counter = createWriteCounter();
  const sab = createMailbox();
  const consumer = new MailboxConsumer(sab, () => {}, counter);
  const producer = new MailboxProducer(sab, counter);
  const before = producer.mark();
  assert.equal(producer.applied(before), true);
  producer.write(false, 0x3fc, 1, 0x0b, 0);
  const mark = producer.mark();
  producer.write(false, 0x3f8, 1, 0x41, 0);
  assert.equal(producer.applied(mark), false);
  assert.equal(producer.othersSettled(), true, 'only its own writes are on their way');
  assert.equal(producer.settled(), false);
  const other = new MailboxProducer(createMailbox(), counter);
  assert.equal(other.othersSettled(), false, 'another vCPU sees them');
  consumer.drain();
  assert.equal(producer.applied(mark), true);
  assert.equal(producer.settled(), true);
  assert.equal(other.othersSettled(), true);
  consumer.close();
});
