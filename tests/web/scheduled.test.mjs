// Scheduled messages in the web client's reducer (src/tidings/web/state.js, issue 17):
// loaded from GET /scheduled, then kept by scheduled_message_created / _updated /
// _deleted (mine only; sent or cancelled ones leave the list), the soonest first; and
// the time helpers of the "Send later" dialog (scheduled.js, imported with the DOM shim).
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { apply, applyAll, initialState, scheduledList } from '../../src/tidings/web/state.js';

const ME = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'member' };
const conv = { id: 'c1', kind: 'group', name: 'c1', last_seq: 0, read_seq: 0, last_activity_at: '2026-01-01T00:00:00Z' };
const item = (id, extra = {}) => ({ id, conversation_id: 'c1', body: `b ${id}`, send_at: '2026-01-02T10:00:00Z',
  state: 'pending', version: 1, failure: null, sent_seq: null, ...extra });
const event = (kind, extra) => ({ type: 'event', event: { kind, conversation_id: 'c1', at: '2026-01-01T00:01:00Z',
  user_id: 'u1', ...extra } });

function world() {
  return applyAll(initialState(), [
    { type: 'signed_in', user: ME },
    { type: 'initial_loaded', conversations: [conv], users: [] },
    { type: 'booted' },
  ]).state;
}

const ids = (state, cid) => scheduledList(state, cid).map((x) => x.id);

test('scheduled: loaded, then kept by the events, the soonest first', () => {
  let r = apply(world(), { type: 'scheduled_loaded', scheduled: [
    item('b', { send_at: '2026-01-03T00:00:00Z' }), item('a'), item('x', { state: 'sent' }), { bogus: 1 }] });
  assert.deepEqual(ids(r.state), ['a', 'b']);
  assert.ok(r.effects.some((e) => e.type === 'render' && e.parts.includes('scheduled')));
  const v = r.state.scheduledVersion;
  r = apply(r.state, event('scheduled_message_created', { scheduled: item('c', { conversation_id: 'c2',
    send_at: '2026-01-01T12:00:00Z' }) }));
  assert.deepEqual(ids(r.state), ['c', 'a', 'b']);
  assert.deepEqual(ids(r.state, 'c1'), ['a', 'b']);
  assert.equal(r.state.scheduledVersion, v + 1, 'an open panel redraws');
  // edited to later: it moves
  r = apply(r.state, event('scheduled_message_updated', { scheduled: item('a', { send_at: '2026-01-04T00:00:00Z',
    body: 'edited', version: 2 }) }));
  assert.deepEqual(ids(r.state), ['c', 'b', 'a']);
  assert.equal(r.state.scheduled.get('a').body, 'edited');
  // being sent, then sent: it leaves the list
  r = apply(r.state, event('scheduled_message_updated', { scheduled: item('b', { state: 'sending' }) }));
  assert.equal(r.state.scheduled.get('b').state, 'sending');
  r = apply(r.state, event('scheduled_message_updated', { scheduled: item('b', { state: 'sent', sent_seq: 4 }) }));
  assert.deepEqual(ids(r.state), ['c', 'a']);
  // failed: stays, with why
  r = apply(r.state, event('scheduled_message_updated', { scheduled: item('c', { state: 'failed',
    failure: 'not_found: conversation not found' }) }));
  assert.equal(r.state.scheduled.get('c').failure, 'not_found: conversation not found');
  // cancelled or dismissed
  r = apply(r.state, event('scheduled_message_deleted', { scheduled_id: 'c' }));
  assert.deepEqual(ids(r.state), ['a']);
  const same = r.state;
  assert.equal(apply(same, event('scheduled_message_deleted', { scheduled_id: 'c' })).state, same);
  // someone else's (never sent to me, but never applied either), or malformed
  assert.equal(apply(same, event('scheduled_message_created', { user_id: 'u2', scheduled: item('z') })).state, same);
  assert.equal(apply(same, event('scheduled_message_created', { scheduled: null })).state, same);
});

test('scheduled: stale list + events == a fresh list', () => {
  const fresh = [item('a', { body: 'edited', version: 2, send_at: '2026-01-01T11:00:00Z' }),
    item('d', { send_at: '2026-01-05T00:00:00Z' })];
  let s = apply(world(), { type: 'scheduled_loaded', scheduled: [item('a'), item('b')] }).state;
  s = applyAll(s, [
    event('scheduled_message_updated', { scheduled: fresh[0] }),
    event('scheduled_message_deleted', { scheduled_id: 'b' }),
    event('scheduled_message_created', { scheduled: fresh[1] }),
  ]).state;
  const loaded = apply(world(), { type: 'scheduled_loaded', scheduled: fresh }).state;
  assert.deepEqual(scheduledList(s), scheduledList(loaded));
});

test('send later: the time input round-trips and the default is ahead', async () => {
  await import('./dom_shim.mjs');
  const { toLocalInput, fromLocalInput, defaultSendAt } = await import('../../src/tidings/web/scheduled.js');
  const d = new Date(2026, 0, 2, 9, 5);
  assert.equal(toLocalInput(d), '2026-01-02T09:05');
  assert.equal(fromLocalInput('2026-01-02T09:05'), d.toISOString());
  for (const bad of ['', 'tomorrow', '2026-13-40T99:99', null, '2026-01-02']) assert.equal(fromLocalInput(bad), null, bad);
  const now = new Date(2026, 0, 2, 9, 40);
  const at = defaultSendAt(now);
  assert.ok(at - now >= 30 * 60 * 1000 && at.getMinutes() === 0);
});
