// Runs in a worker_thread for mailbox.test.ts: plays a vCPU that posts writes and reads.
import { workerData, parentPort } from 'node:worker_threads';
import { MailboxProducer } from './mailbox.js';

const mb = new MailboxProducer(workerData.sab as SharedArrayBuffer);
const seen: number[] = [];
for (let i = 1; i <= workerData.rounds; i++) {
  mb.write(false, 0x3f8, 1, i & 0xff, 0);
  mb.write(true, 0xd0000000 + 8, 4, i, 0);
  // a read must observe both writes posted before it
  seen.push(mb.read(true, 0xd0000000, 4));
}
const hi = mb.read(true, 0x1_0000_0000 + 16, 8);
parentPort!.postMessage({ seen, hi: mb.respHi(), lo: hi });
