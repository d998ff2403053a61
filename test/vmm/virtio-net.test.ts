/**
 * virtio-net end to end over a real tap: `vmm run --net tap=NAME,mac=...` runs inside a
 * network namespace of this test's own, where the VMM creates the tap; the test gives the
 * tap's host end 10.213.0.1/24 and answers the guest from a UDP responder (node dgram) on
 * port 7777. The test guest (test/guests/guests/virtio-net.c) resolves 10.213.0.1 by ARP,
 * sends `vmctl-net ping seq=K`, and echoes back the first datagram it receives: the
 * responder's token. So frames go guest → host (ARP, ping, echo) and host → guest (ARP
 * reply, token). Nothing leaves the namespace; it is deleted at the end, even on failure,
 * and the processes started here are ended by pid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { haveKvm } from '../lib/kvm.js';
import { NetNamespace, netnsMissing } from '../lib/netns.js';
import { guest, VMM, VmmProcess } from '../lib/vmm-process.js';

const HOST_IP = '10.213.0.1';
const GUEST_IP = '10.213.0.2';
const GUEST_MAC = '52:54:00:12:34:56';
const PORT = 7777;

/** Whether this build of `vmm run` takes --net (the flag is wired by the builder's owner). */
function vmmHasNet(): boolean {
  try {
    return execFileSync(process.execPath, [VMM, '--help'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().includes('--net');
  } catch {
    return false;
  }
}

const missing = [
  haveKvm() ? '' : '/dev/kvm',
  netnsMissing(),
  existsSync(guest('virtio-net')) ? '' : 'test/guests/out/virtio-net.elf (make -C test/guests)',
  vmmHasNet() ? '' : '`vmm run --net` (not in this build of libs/vmm/src/cli.ts)',
].filter(Boolean);
if (missing.length > 0) console.log(`SKIP: virtio-net end to end needs ${missing.join(', ')}`);
const opts = { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : false, timeout: 60_000 } as const;

/** Answers every `vmctl-net ping…` with `token`, prints every datagram as a JSON line, ends when the token comes back. */
function responderScript(token: string): string {
  return `
    const s = require('node:dgram').createSocket('udp4');
    const token = ${JSON.stringify(token)};
    s.on('message', (m, r) => {
      const text = m.toString('latin1');
      console.log(JSON.stringify({ text, from: r.address, port: r.port }));
      if (text.startsWith('vmctl-net ping')) s.send(token, r.port, r.address);
      else if (text === token) s.close();
    });
    s.bind(${PORT}, () => console.log('listening'));
  `;
}

for (const variant of ['', 'indirect']) {
  const name = variant === '' ? '' : ` (${variant})`;
  test(`a guest exchanges UDP with the host over vmm run --net tap=…: both directions${name}`, opts, async () => {
    const ns = NetNamespace.create(`vmctl-net-${process.pid}`);
    const tap = `vmn${process.pid}`.slice(0, 15);
    try {
      const token = `vmctl-net token ${randomBytes(8).toString('hex')}`;
      const responder = ns.node(responderScript(token));
      await responder.line(/^listening$/);
      const cmdline = `src=${GUEST_IP} dst=${HOST_IP} port=${PORT} sport=${PORT} ${variant}`.trim();
      const vmm = new VmmProcess(
        ['run', '--kernel', guest('virtio-net'), '--memory', '64M', '--net', `tap=${tap},mac=${GUEST_MAC}`, '--cmdline', cmdline],
        { prefix: ns.prefix },
      );
      ns.track(vmm.child);
      // The VMM creates the tap inside the namespace; give its host end an address and
      // bring it up while the guest is still asking by ARP (5 tries, ~1 s apart).
      await ns.waitForLink(tap);
      ns.ip('addr', 'add', `${HOST_IP}/24`, 'dev', tap);
      ns.ip('link', 'set', 'dev', tap, 'up');
      const tapMac = /link\/ether ([0-9a-f:]{17})/.exec(ns.ip('link', 'show', 'dev', tap))![1];

      await vmm.waitFor(/net: echoed \d+ bytes/, 30_000);
      const echo = JSON.parse(await responder.line(new RegExp(`"text":"${token}"`)));
      const ping = JSON.parse(await responder.line(/"text":"vmctl-net ping/));
      const { code } = await vmm.finish();

      assert.match(vmm.stdout, new RegExp(`net: mac=${GUEST_MAC}\\n`), 'the MAC from --net, in configuration space');
      assert.match(vmm.stdout, /net: link up/);
      assert.match(vmm.stdout, new RegExp(`net: arp ${HOST_IP.replace(/\./g, '\\.')} is-at ${tapMac}`), 'the host answered the guest\'s ARP');
      assert.deepEqual(ping, { text: ping.text, from: GUEST_IP, port: PORT }, 'guest → host');
      assert.match(ping.text, /^vmctl-net ping seq=\d+$/);
      assert.match(vmm.stdout, new RegExp(`net: udp from ${HOST_IP.replace(/\./g, '\\.')}:${PORT} len=${token.length}`), 'host → guest');
      assert.deepEqual(echo, { text: token, from: GUEST_IP, port: PORT }, 'the token went to the guest and came back');
      assert.doesNotMatch(vmm.stdout, /net: note: num_buffers/, '§5.1.6.4.1: num_buffers is 1 without MRG_RXBUF');
      assert.equal(await responder.done, 0, responder.stderr);
      assert.equal(code, 0, `${vmm.stdout}\n${vmm.stderr}`);
    } finally {
      ns.delete();
    }
  });
}
