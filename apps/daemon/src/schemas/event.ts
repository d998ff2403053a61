/**
 * Lifecycle events: what /v1/events pushes, one JSON text message per event. Events are
 * kept in the store (the newest 10,000), so a client that reconnects with `?since=<id>`
 * misses nothing that is still kept.
 */
import { z } from 'zod';
import { DomainName, Timestamp, Uuid } from './common.js';
import { DomainStateName } from './domain.js';
import { TicketParam } from './ticket.js';

export const EVENT_TYPES = ['domain-created', 'domain-updated', 'domain-deleted', 'state-changed', 'guest-reboot'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const Event = z
  .object({
    id: z.int().meta({ description: 'Increasing; pass the last one seen as `since` when reconnecting' }),
    at: Timestamp,
    type: z.enum(EVENT_TYPES),
    domain: DomainName,
    uuid: Uuid,
    state: DomainStateName.optional().meta({ description: 'state-changed: the new state' }),
    previous: DomainStateName.optional().meta({ description: 'state-changed: the state before' }),
    reason: z.string().optional().meta({ description: 'Why: `user`, `poweroff`, `worker-exited`, `guest-crashed`, `shutdown-timeout`, `daemon-restart`, …' }),
    detail: z.string().optional(),
  })
  .meta({ id: 'Event', description: 'A lifecycle event.' });
export type Event = z.output<typeof Event>;
export type NewEvent = Omit<Event, 'id' | 'at'>;

export const EventsQuery = z.strictObject({
  domain: DomainName.optional().meta({ description: 'Only events of this domain' }),
  since: z
    .string()
    .regex(/^\d{1,15}$/, 'must be an event id')
    .transform(Number)
    .optional()
    .meta({ description: 'First replay the kept events with a larger id, then stream' }),
  ticket: TicketParam,
});
