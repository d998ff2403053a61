/**
 * The event bus: every lifecycle event is stored first (so `?since=` replays see it) and
 * then handed, synchronously and in order, to the live subscribers (the /v1/events sockets).
 */
import type { Event, NewEvent } from './schemas/event.js';
import type { EventRepository } from './store/event-repository.js';

export type EventListener = (e: Event) => void;

export class EventBus {
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly repo: EventRepository) {}

  publish(e: NewEvent): Event {
    const event = this.repo.append(e, new Date().toISOString());
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a broken subscriber must not stop the others, nor the state change that published
      }
    }
    return event;
  }

  /** Returns the function that unsubscribes. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stored events after `since`, for replays. */
  since(since: number, domain?: string): Event[] {
    return this.repo.since(since, domain);
  }
}
