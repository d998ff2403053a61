/**
 * A domain's serial console in xterm.js, over the daemon's console WebSocket: the daemon
 * replays the last 1 MiB of output first, then streams; keys go to the guest as bytes.
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { socketUrl } from './api.js';
import type { View } from './display.js';

export async function openTerminal(container: HTMLElement, name: string, status: (text: string) => void): Promise<View> {
  const term = new Terminal({ cursorBlink: true, scrollback: 10000, fontFamily: 'DejaVu Sans Mono, monospace', fontSize: 14 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(container);
  fit.fit();
  const onResize = () => fit.fit();
  window.addEventListener('resize', onResize);

  const ws = new WebSocket(await socketUrl(`/v1/domains/${encodeURIComponent(name)}/console`, { domain: name }));
  ws.binaryType = 'arraybuffer';
  status('connecting…');
  ws.addEventListener('open', () => {
    status('connected: what you type goes to the guest\'s serial port');
    term.focus();
  });
  ws.addEventListener('message', (m: MessageEvent<ArrayBuffer | string>) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data)));
  ws.addEventListener('close', (e) => {
    status(`closed: ${e.reason || (e.code === 1000 ? 'the domain\'s worker ended' : `code ${e.code}`)}`);
  });
  const encoder = new TextEncoder();
  const send = (bytes: Uint8Array) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
  };
  const data = term.onData((s) => send(encoder.encode(s)));
  // xterm reports some input (mouse reports, for one) as binary strings, one byte per char
  const binary = term.onBinary((s) => send(Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)));
  return {
    close() {
      window.removeEventListener('resize', onResize);
      data.dispose();
      binary.dispose();
      ws.close(1000, 'closed');
      term.dispose();
      container.replaceChildren();
    },
  };
}
