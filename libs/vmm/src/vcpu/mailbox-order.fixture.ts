// Runs in a worker_thread for mailbox.test.ts: a second vCPU that writes once another vCPU's
// write is on its way, and says when its own write is posted.
import { workerData, parentPort } from 'node:worker_threads';
import { MailboxProducer } from './mailbox.js';

const mb = new MailboxProducer(workerData.sab as SharedArrayBuffer, workerData.counter as SharedArrayBuffer);
mb.write(false, 0x3f8, 1, 0x42, 0);
parentPort!.postMessage('posted');
