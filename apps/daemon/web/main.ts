/**
 * vmctl's web console: the domains with their state, kept live by /v1/events; start, shut
 * down and stop; a domain's screen (noVNC) and serial console (xterm.js). Plain DOM, no
 * framework. On vmctld's TCP listener it asks for the bearer token first (see api.ts).
 *
 * URLs: /ui/ lists the domains; #/domains/NAME/display and #/domains/NAME/console open a view.
 */
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { api, ApiError, setToken, socketUrl, token } from './api.js';
import { openDisplay, type View } from './display.js';
import { openTerminal } from './terminal.js';

interface Domain {
  name: string;
  state: string;
  vcpus: number;
  memory_mib: number;
  display: { type: string } | null;
}

interface DomainEvent {
  id: number;
  type: string;
  domain: string;
  state?: string;
}

interface Host {
  hostname: string;
  versions: { vmctl: string };
}

type ViewKind = 'display' | 'console';

/** The buttons of a row, and the states the daemon allows each in (its state machine). */
const ACTIONS: { action: string; label: string; from: string[] }[] = [
  { action: 'start', label: 'Start', from: ['shutoff', 'crashed'] },
  { action: 'shutdown', label: 'Shut down', from: ['running', 'paused'] },
  { action: 'stop', label: 'Stop', from: ['starting', 'running', 'paused', 'stopping', 'crashed'] },
];
const LIVE = ['running', 'paused'];

const el = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const domains = new Map<string, Domain>();
let events: WebSocket | undefined;
let signedIn = false;
let reloadTimer: number | undefined;
let current: { name: string; kind: ViewKind; view?: View } | undefined;

function say(text: string, error = false): void {
  const s = el('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

function describe(err: unknown): string {
  return err instanceof ApiError ? err.message : String((err as Error)?.message ?? err);
}

/** A 401 means the token is wrong or gone: back to the login form. */
function handle(err: unknown): void {
  if (err instanceof ApiError && err.status === 401 && err.problem?.code === 'UNAUTHORIZED') {
    signOut('The daemon refused the token.');
    return;
  }
  say(describe(err), true);
}

// ─── signing in ────────────────────────────────────────────────────────────────────────

function showLogin(message = ''): void {
  el('login').hidden = false;
  el('domains').hidden = true;
  el('viewer').hidden = true;
  el('logout').hidden = true;
  el('login-error').textContent = message;
  el<HTMLInputElement>('token').focus();
}

function signOut(message = ''): void {
  signedIn = false;
  setToken(null);
  closeView();
  events?.close();
  events = undefined;
  domains.clear();
  showLogin(message);
}

async function start(): Promise<void> {
  let host: Host;
  try {
    host = await api<Host>('GET', '/v1/host');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      const tried = token() !== null;
      setToken(null);
      showLogin(tried ? 'The daemon refused this token.' : '');
    } else showLogin(describe(err));
    return;
  }
  signedIn = true;
  el('host').textContent = `${host.hostname} · vmctl ${host.versions.vmctl}`;
  el('login').hidden = true;
  el('domains').hidden = false;
  el('logout').hidden = token() === null;
  connectEvents();
}

el('login').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(el<HTMLInputElement>('token').value.trim());
  void start();
});
el('logout').addEventListener('click', () => signOut());

// ─── the domain list, live ─────────────────────────────────────────────────────────────

async function loadDomains(): Promise<void> {
  try {
    const { items } = await api<{ items: Domain[] }>('GET', '/v1/domains');
    domains.clear();
    for (const d of items) domains.set(d.name, d);
    render();
    if (!current) openFromHash();
  } catch (err) {
    handle(err);
  }
}

function scheduleReload(): void {
  clearTimeout(reloadTimer);
  reloadTimer = window.setTimeout(() => void loadDomains(), 100);
}

function connectEvents(): void {
  if (!signedIn) return;
  socketUrl('/v1/events', 'events').then((url) => {
    const ws = new WebSocket(url);
    events = ws;
    ws.addEventListener('open', () => void loadDomains());
    ws.addEventListener('message', (m: MessageEvent<string>) => onEvent(JSON.parse(m.data) as DomainEvent));
    ws.addEventListener('close', () => {
      if (events !== ws) return;
      events = undefined;
      // the daemon restarted, or the network blinked: the list is reloaded on reconnect
      window.setTimeout(connectEvents, 1000);
    });
  }, (err) => {
    handle(err);
    if (signedIn) window.setTimeout(connectEvents, 2000);
  });
}

function onEvent(e: DomainEvent): void {
  const d = domains.get(e.domain);
  if (e.type === 'state-changed' && d && e.state) {
    domains.set(d.name, { ...d, state: e.state });
    render();
  } else scheduleReload();
}

function render(): void {
  const rows = [...domains.values()].sort((a, b) => a.name.localeCompare(b.name)).map(row);
  el('domain-rows').replaceChildren(...rows);
  el('empty').hidden = rows.length > 0;
}

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(label: string, enabled: boolean, onClick: () => void, name: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.disabled = !enabled;
  b.dataset.action = name;
  b.addEventListener('click', onClick);
  return b;
}

function row(d: Domain): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.domain = d.name;
  const actions = document.createElement('td');
  actions.className = 'actions';
  for (const a of ACTIONS) actions.append(button(a.label, a.from.includes(d.state), () => void act(d.name, a.action), a.action));
  const live = LIVE.includes(d.state);
  actions.append(
    button('Console', live, () => void openView(d.name, 'console'), 'console'),
    button('Display', live && d.display !== null, () => void openView(d.name, 'display'), 'display'),
  );
  tr.append(
    cell(d.name, 'name'),
    cell(d.state, `state state-${d.state}`),
    cell(String(d.vcpus)),
    cell(d.memory_mib >= 1024 && d.memory_mib % 1024 === 0 ? `${d.memory_mib / 1024} GiB` : `${d.memory_mib} MiB`),
    cell(d.display ? d.display.type.toUpperCase() : '—'),
    actions,
  );
  return tr;
}

async function act(name: string, action: string): Promise<void> {
  say(`${name}: ${action}…`);
  try {
    await api('POST', `/v1/domains/${encodeURIComponent(name)}/actions/${action}`);
    say(`${name}: ${action} done`);
  } catch (err) {
    handle(err);
  }
}

// ─── the viewer: one domain's display or console ───────────────────────────────────────

function closeView(): void {
  current?.view?.close();
  current = undefined;
  el('viewer').hidden = true;
  if (location.hash) history.replaceState(null, '', location.pathname);
}

async function openView(name: string, kind: ViewKind): Promise<void> {
  closeView();
  const me: { name: string; kind: ViewKind; view?: View } = { name, kind };
  current = me;
  history.replaceState(null, '', `#/domains/${encodeURIComponent(name)}/${kind}`);
  el('viewer').hidden = false;
  el('viewer-title').textContent = `${name} — ${kind === 'display' ? 'display' : 'serial console'}`;
  const status = (text: string) => {
    if (current === me) el('viewer-state').textContent = text;
  };
  try {
    const view = kind === 'display'
      ? await openDisplay(el('screen'), name, status, el<HTMLButtonElement>('viewer-cad'))
      : await openTerminal(el('terminal'), name, status);
    if (current === me) me.view = view;
    else view.close();
  } catch (err) {
    status(describe(err));
    handle(err);
  }
}

el('viewer-close').addEventListener('click', closeView);

function openFromHash(): void {
  const m = /^#\/domains\/([^/]+)\/(display|console)$/.exec(location.hash);
  if (m) void openView(decodeURIComponent(m[1]!), m[2] as ViewKind);
}

void start();
