/**
 * A domain's screen through noVNC, over the daemon's VNC WebSocket. Shown 1:1 (no scaling),
 * so what the guest draws is what the page shows; keys and the pointer go to the guest while
 * the screen has the focus.
 */
import RFB from '@novnc/novnc';
import { socketUrl } from './api.js';

export interface View {
  close(): void;
}

export async function openDisplay(container: HTMLElement, name: string, status: (text: string) => void, cad: HTMLButtonElement): Promise<View> {
  const url = await socketUrl(`/v1/domains/${encodeURIComponent(name)}/vnc`, { domain: name });
  const rfb = new RFB(container, url, { wsProtocols: ['binary'], shared: true });
  rfb.scaleViewport = false;
  rfb.resizeSession = false;
  status('connecting…');
  rfb.addEventListener('connect', () => {
    status('connected: keys and the pointer go to the guest while the screen has the focus');
    rfb.focus();
  });
  rfb.addEventListener('disconnect', (e) => {
    const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
    status(clean ? 'disconnected' : 'the connection was lost (the domain stopped?)');
  });
  const sendCad = () => rfb.sendCtrlAltDel();
  cad.hidden = false;
  cad.addEventListener('click', sendCad);
  return {
    close() {
      cad.hidden = true;
      cad.removeEventListener('click', sendCad);
      rfb.disconnect();
      container.replaceChildren();
    },
  };
}
