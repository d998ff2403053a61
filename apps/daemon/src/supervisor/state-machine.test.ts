import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import { ACTIONS, DOMAIN_STATES } from '../schemas/domain.js';
import { ACTION_FROM, canTransition, checkAction, TRANSITIONS } from './state-machine.js';

test('checkAction() allows start only from shutoff and crashed', () => {
  for (const s of DOMAIN_STATES) {
    if (s === 'shutoff' || s === 'crashed') assert.doesNotThrow(() => checkAction('d', s, 'start'));
    else assert.throws(() => checkAction('d', s, 'start'), (e: ApiError) => e.code === 'INVALID_STATE_TRANSITION' && e.extensions.state === s);
  }
});

test('checkAction() names the domain, the action and the state in its message', () => {
  assert.throws(() => checkAction('web', 'shutoff', 'pause'), /Cannot pause domain "web": it is shutoff/);
});

test('every action is defined for at least one state, and only for real states', () => {
  for (const a of ACTIONS) {
    assert.ok(ACTION_FROM[a].length > 0, a);
    for (const s of ACTION_FROM[a]) assert.ok(DOMAIN_STATES.includes(s), `${a}: ${s}`);
  }
});

test('the transitions follow shutoff → starting → running ⇄ paused → stopping → shutoff, plus crashed', () => {
  assert.ok(canTransition('shutoff', 'starting'));
  assert.ok(canTransition('starting', 'running'));
  assert.ok(canTransition('running', 'paused') && canTransition('paused', 'running'));
  assert.ok(canTransition('running', 'stopping') && canTransition('stopping', 'shutoff'));
  assert.ok(canTransition('running', 'crashed') && canTransition('crashed', 'starting'));
  assert.ok(!canTransition('shutoff', 'running'), 'no skipping starting');
  assert.ok(!canTransition('stopping', 'running'), 'a stop is not undone');
  for (const s of DOMAIN_STATES) assert.ok(!TRANSITIONS[s].includes(s), `${s} does not list itself`);
});
