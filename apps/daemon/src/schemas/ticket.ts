/**
 * Console tickets: what POST …/console-ticket and POST /v1/events/ticket answer, and the
 * `ticket` query parameter the WebSockets take in place of the bearer token.
 */
import { z } from 'zod';
import { Timestamp } from './common.js';

export const Ticket = z
  .object({
    ticket: z.string().meta({ description: 'Pass as `?ticket=` on the WebSocket URL; good for one connection' }),
    expires_at: Timestamp.meta({ description: 'Unused after this, the ticket is void (30 s after it was issued)' }),
  })
  .meta({ id: 'Ticket', description: 'A short-lived, single-use console ticket: it opens one WebSocket in place of the bearer token, so the token never sits in a URL.' });
export type Ticket = z.output<typeof Ticket>;

/** The query parameter; checked (and used up) before validation, by the authentication hook. */
export const TicketParam = z
  .string()
  .max(128)
  .optional()
  .meta({ description: 'A console ticket, in place of `Authorization: Bearer` (which browsers cannot send on a WebSocket). Used up by this request, valid or not.' });

export const TicketQuery = z.strictObject({ ticket: TicketParam });
