/**
 * The daemon's API from the page: fetch with the bearer token (when this listener wants one),
 * and WebSockets opened with a console ticket, so the token never sits in a URL. The token
 * lives in sessionStorage: this tab only, gone when it closes.
 */

const TOKEN_KEY = 'vmctl.token';

export interface Problem {
  code: string;
  title: string;
  detail: string;
  status: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem ? `${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** One API call; resolves with the JSON body of a 2xx answer, rejects with ApiError. */
export async function api<T>(method: string, path: string): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  const res = await fetch(path, { method, headers, cache: 'no-store' });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) throw new ApiError(res.status, body as Problem | undefined);
  return body as T;
}

/** What a ticket opens: a domain's console and display, or the events stream. */
export type TicketFor = { domain: string } | 'events';

/**
 * The ws:// URL of an API WebSocket with a fresh ticket in it. Tickets are asked for on
 * every listener: on the Unix socket they are not needed, but they do no harm.
 */
export async function socketUrl(path: string, what: TicketFor): Promise<string> {
  const ticketPath = what === 'events' ? '/v1/events/ticket' : `/v1/domains/${encodeURIComponent(what.domain)}/console-ticket`;
  const { ticket } = await api<{ ticket: string }>('POST', ticketPath);
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('ticket', ticket);
  return url.href;
}
