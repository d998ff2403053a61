// TUN/TAP: tapOpen (with vnet headers and multi-queue), offloads, header size, queues, and
// Ethernet frames both ways through a real tap, read and written with readv/writev into guest
// RAM views, readiness from watchFd.
//
// Host networking is left alone: each tap is opened (it must be: TUNSETIFF creates the device
// in the caller's namespace) under a unique name and at once moved into a network namespace
// this file creates, `vmctl-test-<pid>`, where all addresses (10.213.x.x) and traffic live.
// The taps are not persistent, so they vanish with their fds even if this process dies; the
// namespace is deleted after the tests, and on exit if that did not run.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import {
  KvmError, closeFd, constants as C, eventfd, mmapGuestRam, munmapGuestRam, readv, tapGetFeatures, tapGetVnetHdrSize,
  tapOpen, tapSetOffload, tapSetQueue, tapSetVnetHdrSize, watchFd, writev, type FdWatch, type GuestRam,
} from '@vmctl/kvm-native';

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const missing = [
  process.getuid?.() === 0 ? '' : 'root',
  existsSync('/dev/net/tun') ? '' : '/dev/net/tun',
  which('ip') ? '' : 'ip(8)',
].filter(Boolean);
if (missing.length > 0) console.log(`SKIP: tap tests need ${missing.join(', ')}`);
const opts = { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : false };

const NS = `vmctl-test-${process.pid}`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const nsIp = (...args: string[]) => ip('-n', NS, ...args);
const nsExec = (...args: string[]) =>
  execFileSync('ip', ['netns', 'exec', NS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

let nsCreated = false;
function deleteNamespace(): void {
  if (!nsCreated) return;
  nsCreated = false;
  try {
    execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  } catch { /* already gone */ }
}
// Safety nets: after() normally does it. On SIGINT/SIGTERM, clean up and die of the signal.
process.on('exit', deleteNamespace);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    deleteNamespace();
    process.kill(process.pid, signal);
  });
}

const openFds = new Set<number>();
let tapCount = 0;

/** A new tap, opened here under a unique name and moved into the test namespace at once. */
function newTap(o: { vnetHdr?: boolean; multiQueue?: boolean } = {}): { fd: number; name: string } {
  const name = `vmt${process.pid}${String.fromCharCode(97 + tapCount++)}`;
  assert.ok(name.length <= 15);
  // Never attach to a device someone else made: TUNSETIFF on an existing tap joins it.
  assert.equal(existsSync(`/sys/class/net/${name}`), false, `${name} exists on the host`);
  const tap = tapOpen(name, o);
  openFds.add(tap.fd);
  ip('link', 'set', 'dev', name, 'netns', NS);
  return tap;
}

function closeTap(fd: number): void {
  if (openFds.delete(fd)) closeFd(fd);
}

const TAP_MAC = [0x02, 0x00, 0x0a, 0xd5, 0x00, 0x01]; // the namespace's side
const PEER_MAC = [0x02, 0x00, 0x0a, 0xd5, 0x00, 0x02]; // the "guest" behind the tap fd
const macString = (m: number[]) => m.map((b) => b.toString(16).padStart(2, '0')).join(':');

/** Addresses `${subnet}.1` (the tap, in the namespace) and `${subnet}.2` (the peer, static ARP). */
function configure(name: string, subnet: string): void {
  nsIp('link', 'set', 'dev', name, 'address', macString(TAP_MAC));
  nsIp('addr', 'add', `${subnet}.1/24`, 'dev', name);
  nsIp('link', 'set', 'dev', name, 'up');
  nsIp('neigh', 'replace', `${subnet}.2`, 'lladdr', macString(PEER_MAC), 'dev', name, 'nud', 'permanent');
}

/** `node -e script` inside the namespace; lines of its stdout, in order. */
function nsNode(script: string): { child: ChildProcess; line(match: RegExp, ms?: number): Promise<string>; done: Promise<number> } {
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  let stderr = '';
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    wake?.();
  });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<number>((resolve) => child.on('exit', (code) => { wake?.(); resolve(code ?? -1); }));
  return {
    child,
    done,
    async line(match, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = lines.findIndex((l) => match.test(l));
        if (i >= 0) return lines.splice(i, 1)[0];
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no line matching ${match} from the namespace's node (exit ${child.exitCode}): ${stderr}`);
        }
        await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
        wake = null;
      }
    },
  };
}

function ipv4(s: string): number[] {
  return s.split('.').map(Number);
}

function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Ethernet + IPv4 + UDP (checksum 0: "none", valid for IPv4). */
function udpFrame(o: { srcIp: string; dstIp: string; sport: number; dport: number; payload: Uint8Array }): Uint8Array {
  const frame = new Uint8Array(14 + 20 + 8 + o.payload.length);
  const v = new DataView(frame.buffer);
  frame.set(TAP_MAC, 0);
  frame.set(PEER_MAC, 6);
  v.setUint16(12, 0x0800);
  frame[14] = 0x45;
  v.setUint16(16, 20 + 8 + o.payload.length);
  v.setUint16(20, 0x4000); // DF
  frame[22] = 64; // TTL
  frame[23] = 17; // UDP
  frame.set(ipv4(o.srcIp), 26);
  frame.set(ipv4(o.dstIp), 30);
  v.setUint16(24, ~checksum(frame.subarray(14, 34)) & 0xffff);
  v.setUint16(34, o.sport);
  v.setUint16(36, o.dport);
  v.setUint16(38, 8 + o.payload.length);
  frame.set(o.payload, 42);
  return frame;
}

interface UdpSeen { frame: Uint8Array; hdr: Uint8Array | null }

/**
 * Reads frames from the tap as watchFd reports it readable, with readv into guest RAM views
 * (the virtio-net header, when there is one, into its own view), until a UDP frame to
 * `dport` comes. Other traffic (IPv6 router solicitations, MLD...) is skipped.
 */
function readUdpFrame(fd: number, ram: GuestRam, hdrSize: number, dport: number, ms = 10_000): Promise<UdpSeen> {
  const mem = new Uint8Array(ram.chunks[0]);
  const hdrView = mem.subarray(0x100, 0x100 + hdrSize);
  const frameView = mem.subarray(0x1000, 0x1000 + 2048);
  return new Promise((resolve, reject) => {
    let w: FdWatch | null = null;
    const timer = setTimeout(() => { w?.close(); reject(new Error(`no UDP frame to port ${dport} from the tap`)); }, ms);
    w = watchFd(fd, 'r', (events) => {
      assert.equal(events, C.UV_READABLE);
      for (;;) {
        hdrView.fill(0xab);
        const n = readv(fd, hdrSize > 0 ? [hdrView, frameView] : [frameView]);
        if (n === -1) return; // drained: wait for the next callback
        const frame = frameView.slice(0, n - hdrSize);
        const v = new DataView(frame.buffer);
        if (frame.length >= 42 && v.getUint16(12) === 0x0800 && frame[23] === 17 && v.getUint16(36) === dport) {
          clearTimeout(timer);
          w!.close();
          resolve({ frame, hdr: hdrSize > 0 ? hdrView.slice() : null });
          return;
        }
      }
    });
  });
}

let ram: GuestRam;

describe('TUN/TAP', opts, () => {
  before(() => {
    ip('netns', 'add', NS);
    nsCreated = true;
    nsIp('link', 'set', 'lo', 'up');
    ram = mmapGuestRam(64 * 1024);
  });
  after(() => {
    for (const fd of [...openFds]) closeTap(fd);
    deleteNamespace();
    if (ram) munmapGuestRam(ram.address);
  });

  it('tapGetFeatures() reports what TUNSETIFF takes', () => {
    const f = tapGetFeatures();
    for (const flag of [C.IFF_TAP, C.IFF_NO_PI, C.IFF_VNET_HDR, C.IFF_MULTI_QUEUE]) {
      assert.equal(f & flag, flag, `feature 0x${flag.toString(16)}`);
    }
  });

  it('tapOpen() makes a non-blocking tap; frames go both ways with writev/readv (no vnet header)', async () => {
    const tap = newTap();
    assert.match(tap.name, /^vmt\d+[a-z]$/);
    assert.equal(readv(tap.fd, [new Uint8Array(2048)]), -1, 'down, nothing queued: non-blocking, -1');
    configure(tap.name, '10.213.1');

    // Namespace → tap: a datagram from 10.213.1.1 to the peer 10.213.1.2 arrives as a frame.
    const payload = 'hello from the namespace';
    const seen = readUdpFrame(tap.fd, ram, 0, 5555);
    const sender = nsNode(`
      const s = require('node:dgram').createSocket('udp4');
      s.bind(4444, '10.213.1.1', () => s.send(${JSON.stringify(payload)}, 5555, '10.213.1.2', (e) => { if (e) throw e; s.close(); }));
    `);
    assert.equal(await sender.done, 0);
    const { frame } = await seen;
    const v = new DataView(frame.buffer);
    assert.deepEqual([...frame.subarray(0, 6)], PEER_MAC, 'to the peer (static ARP entry)');
    assert.deepEqual([...frame.subarray(6, 12)], TAP_MAC, 'from the tap');
    assert.deepEqual([...frame.subarray(26, 30)], ipv4('10.213.1.1'));
    assert.deepEqual([...frame.subarray(30, 34)], ipv4('10.213.1.2'));
    assert.equal(v.getUint16(34), 4444);
    assert.equal(Buffer.from(frame.subarray(42)).toString(), payload);
    // Without offloads the kernel computed the full UDP checksum.
    const pseudo = new Uint8Array([...frame.subarray(26, 34), 0, 17, ...frame.subarray(38, 40)]);
    assert.equal(checksum(frame.subarray(34), checksum(pseudo)), 0xffff, 'valid UDP checksum');

    // Tap → namespace: a frame written from guest RAM views reaches a socket there.
    const listener = nsNode(`
      const s = require('node:dgram').createSocket('udp4');
      s.on('message', (m, r) => { console.log(JSON.stringify({ msg: m.toString(), from: r.address, port: r.port })); s.close(); });
      s.bind(6666, '10.213.1.1', () => console.log('listening'));
    `);
    await listener.line(/^listening$/);
    const out = udpFrame({ srcIp: '10.213.1.2', dstIp: '10.213.1.1', sport: 7777, dport: 6666,
      payload: new TextEncoder().encode('hello from the guest') });
    const mem = new Uint8Array(ram.chunks[0]);
    mem.set(out.subarray(0, 14), 0x2000); // Ethernet header and the rest in separate views
    mem.set(out.subarray(14), 0x3000);
    assert.equal(writev(tap.fd, [mem.subarray(0x2000, 0x2000 + 14), mem.subarray(0x3000, 0x3000 + out.length - 14)]), out.length);
    assert.deepEqual(JSON.parse(await listener.line(/^\{/)), { msg: 'hello from the guest', from: '10.213.1.2', port: 7777 });
    assert.equal(await listener.done, 0);
    closeTap(tap.fd);
  });

  it('with vnetHdr: 12-byte virtio-net headers both ways, and TUN_F_CSUM leaves the checksum to the guest', async () => {
    const tap = newTap({ vnetHdr: true });
    assert.equal(tapGetVnetHdrSize(tap.fd), 10, 'the kernel default: struct virtio_net_hdr');
    tapSetVnetHdrSize(tap.fd, 12); // virtio 1.x: virtio_net_hdr_v1 (num_buffers included)
    assert.equal(tapGetVnetHdrSize(tap.fd), 12);
    assert.throws(() => tapSetVnetHdrSize(tap.fd, 4), { ioctl: 'TUNSETVNETHDRSZ', code: 'EINVAL' });
    // TSO and UFO only with CSUM; unknown bits are refused. All of it is accepted.
    assert.throws(() => tapSetOffload(tap.fd, C.TUN_F_TSO4), { ioctl: 'TUNSETOFFLOAD', code: 'EINVAL' });
    assert.throws(() => tapSetOffload(tap.fd, C.TUN_F_CSUM | 0x10000), { ioctl: 'TUNSETOFFLOAD', code: 'EINVAL' });
    tapSetOffload(tap.fd, C.TUN_F_CSUM | C.TUN_F_TSO4 | C.TUN_F_TSO6 | C.TUN_F_TSO_ECN | C.TUN_F_UFO);
    tapSetOffload(tap.fd, C.TUN_F_CSUM);
    configure(tap.name, '10.213.2');

    const seen = readUdpFrame(tap.fd, ram, 12, 5556);
    const sender = nsNode(`
      const s = require('node:dgram').createSocket('udp4');
      s.bind(4445, '10.213.2.1', () => s.send('offloaded', 5556, '10.213.2.2', (e) => { if (e) throw e; s.close(); }));
    `);
    assert.equal(await sender.done, 0);
    const { frame, hdr } = await seen;
    assert.equal(Buffer.from(frame.subarray(42)).toString(), 'offloaded', 'the frame starts right after 12 header bytes');
    const h = new DataView(hdr!.buffer);
    const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
    assert.equal(h.getUint8(0), VIRTIO_NET_HDR_F_NEEDS_CSUM, 'flags: the guest finishes the checksum');
    assert.equal(h.getUint8(1), 0, 'gso_type NONE');
    assert.equal(h.getUint16(6, true), 14 + 20, 'csum_start: the UDP header');
    assert.equal(h.getUint16(8, true), 6, 'csum_offset: UDP checksum field');

    const listener = nsNode(`
      const s = require('node:dgram').createSocket('udp4');
      s.on('message', (m, r) => { console.log(JSON.stringify({ msg: m.toString(), from: r.address })); s.close(); });
      s.bind(6667, '10.213.2.1', () => console.log('listening'));
    `);
    await listener.line(/^listening$/);
    const out = udpFrame({ srcIp: '10.213.2.2', dstIp: '10.213.2.1', sport: 7778, dport: 6667,
      payload: new TextEncoder().encode('with a header') });
    const vnetHdr = new Uint8Array(12); // flags 0, GSO_NONE, num_buffers 0
    assert.equal(writev(tap.fd, [vnetHdr, out]), 12 + out.length);
    assert.deepEqual(JSON.parse(await listener.line(/^\{/)), { msg: 'with a header', from: '10.213.2.2' });
    assert.equal(await listener.done, 0);
    closeTap(tap.fd);
  });

  it('multiQueue: several fds on one device; tapSetQueue() detaches and re-attaches a queue', () => {
    const name = `vmt${process.pid}${String.fromCharCode(97 + tapCount++)}`;
    assert.equal(existsSync(`/sys/class/net/${name}`), false);
    const q0 = tapOpen(name, { vnetHdr: true, multiQueue: true });
    openFds.add(q0.fd);
    const q1 = tapOpen(name, { vnetHdr: true, multiQueue: true });
    openFds.add(q1.fd);
    // Flags must match the device's: a single-queue open of a multi-queue tap is refused.
    assert.throws(() => tapOpen(name, { vnetHdr: true }), { ioctl: 'TUNSETIFF', code: 'EINVAL' });
    ip('link', 'set', 'dev', name, 'netns', NS);
    assert.equal(q1.name, name);

    const rxQueues = () => nsExec('ls', `/sys/class/net/${name}/queues`).split(/\s+/).filter((q) => q.startsWith('rx-')).length;
    assert.equal(rxQueues(), 2);
    tapSetQueue(q1.fd, false);
    assert.equal(rxQueues(), 1);
    assert.throws(() => tapSetQueue(q1.fd, false), { ioctl: 'TUNSETQUEUE', code: 'EINVAL' }, 'already detached');
    tapSetQueue(q1.fd, true);
    assert.equal(rxQueues(), 2);
    closeTap(q1.fd);
    assert.equal(rxQueues(), 1);
    closeTap(q0.fd);
    assert.equal(nsIp('link').includes(name), false, 'the device went with its last fd');
  });

  it('refuses bad names and non-tap fds', () => {
    assert.throws(() => tapOpen('a-name-longer-than-15', {}), RangeError);
    assert.throws(() => tapOpen(42 as never, {}), TypeError);
    const fd = eventfd();
    assert.throws(() => tapSetOffload(fd, C.TUN_F_CSUM), (e: unknown) =>
      e instanceof KvmError && e.ioctl === 'TUNSETOFFLOAD' && e.code === 'ENOTTY');
    assert.throws(() => tapSetVnetHdrSize(fd, 12), { ioctl: 'TUNSETVNETHDRSZ', code: 'ENOTTY' });
    closeFd(fd);
  });
});
