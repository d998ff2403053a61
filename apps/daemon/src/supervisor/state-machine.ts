/**
 * The domain lifecycle as data:
 *
 *   shutoff ─start─▶ starting ─▶ running ⇄ paused
 *                                  │  shutdown/stop │
 *                                  ▼                ▼
 *                               stopping ─────▶ shutoff
 *   any state with a worker ─(worker or guest dies)─▶ crashed ─start─▶ starting
 *
 * `ACTION_FROM` says in which states a user action is allowed; `TRANSITIONS` which state
 * changes the supervisor may make. An action outside its states is a 409 with a stable code.
 */
import { ApiError } from '../errors.js';
import type { Action, DomainStateName } from '../schemas/domain.js';

export const ACTION_FROM: Record<Action, readonly DomainStateName[]> = {
  start: ['shutoff', 'crashed'],
  shutdown: ['running', 'paused'],
  stop: ['starting', 'running', 'paused', 'stopping', 'crashed'],
  reboot: ['running'],
  reset: ['running', 'paused'],
  pause: ['running'],
  resume: ['paused'],
};

export const TRANSITIONS: Record<DomainStateName, readonly DomainStateName[]> = {
  shutoff: ['starting'],
  starting: ['running', 'paused', 'stopping', 'shutoff', 'crashed'],
  running: ['paused', 'stopping', 'shutoff', 'crashed'],
  paused: ['running', 'stopping', 'shutoff', 'crashed'],
  stopping: ['shutoff', 'crashed'],
  crashed: ['starting', 'shutoff'],
};

/** States in which the domain has (or should have) a live worker. */
export const ACTIVE_STATES: readonly DomainStateName[] = ['starting', 'running', 'paused', 'stopping'];

export function isActive(state: DomainStateName): boolean {
  return ACTIVE_STATES.includes(state);
}

export function canTransition(from: DomainStateName, to: DomainStateName): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws INVALID_STATE_TRANSITION unless `action` is allowed in `state`. */
export function checkAction(name: string, state: DomainStateName, action: Action): void {
  if (!ACTION_FROM[action].includes(state)) {
    throw new ApiError(
      'INVALID_STATE_TRANSITION',
      `Cannot ${action} domain "${name}": it is ${state} (${action} is allowed when ${ACTION_FROM[action].join(', ')})`,
      { state },
    );
  }
}
