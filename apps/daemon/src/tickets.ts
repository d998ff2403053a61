/**
 * Console tickets: short-lived, single-use secrets that open one WebSocket in place of the
 * bearer token, as Proxmox's VNC tickets do. A browser cannot put an Authorization header on
 * a WebSocket, and a token in a URL ends up in logs and history; a ticket there is worth one
 * connection for a few seconds.
 *
 * A ticket is bound to what it opens: a domain's console and VNC sockets, or the events
 * stream. It is redeemed (and forgotten) on first use, right or wrong. The store keeps only a
 * SHA-256 of each ticket, so looking one up leaks nothing useful through timing. Tickets live
 * in the daemon's memory: a daemon restart voids them all, which costs a client one request.
 */
import { createHash, randomBytes } from 'node:crypto';

export type TicketScope = { kind: 'domain'; uuid: string } | { kind: 'events' };

/** Why a ticket was refused: for the problem's detail, never a different status. */
export type TicketRefusal = 'unknown' | 'expired' | 'wrong-scope';

export interface IssuedTicket {
  ticket: string;
  expiresAt: Date;
}

export interface TicketStoreOptions {
  /** how long a ticket is good for (default 30 s) */
  ttlMs?: number;
  /** outstanding tickets kept at most; beyond, the oldest are dropped (default 1024) */
  max?: number;
  now?: () => number;
}

export const TICKET_TTL_MS = 30_000;
const DEFAULT_MAX = 1024;

function digest(ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url');
}

function sameScope(a: TicketScope, b: TicketScope): boolean {
  return a.kind === b.kind && (a.kind !== 'domain' || a.uuid === (b as { uuid: string }).uuid);
}

export class TicketStore {
  readonly ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;
  /** digest → what the ticket opens and until when; in issue order (a Map keeps it) */
  readonly #tickets = new Map<string, { scope: TicketScope; expires: number }>();

  constructor(opts: TicketStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? TICKET_TTL_MS;
    this.#max = opts.max ?? DEFAULT_MAX;
    this.#now = opts.now ?? Date.now;
  }

  /** A new ticket for `scope`: 32 random bytes, base64url (43 characters). */
  issue(scope: TicketScope): IssuedTicket {
    this.#sweep();
    // a client that asks for tickets and never uses them cannot grow the daemon
    while (this.#tickets.size >= this.#max) this.#tickets.delete(this.#tickets.keys().next().value!);
    const ticket = randomBytes(32).toString('base64url');
    const expires = this.#now() + this.ttlMs;
    this.#tickets.set(digest(ticket), { scope, expires });
    return { ticket, expiresAt: new Date(expires) };
  }

  /** Uses up `ticket`; undefined when it opens `scope`, else why not. */
  redeem(ticket: string, scope: TicketScope): TicketRefusal | undefined {
    const key = digest(ticket);
    const t = this.#tickets.get(key);
    if (!t) return 'unknown';
    this.#tickets.delete(key);
    if (t.expires <= this.#now()) return 'expired';
    return sameScope(t.scope, scope) ? undefined : 'wrong-scope';
  }

  get size(): number {
    return this.#tickets.size;
  }

  #sweep(): void {
    const now = this.#now();
    // issue order is expiry order: stop at the first that is still good
    for (const [k, t] of this.#tickets) {
      if (t.expires > now) break;
      this.#tickets.delete(k);
    }
  }
}
