// Unit tests of the web client's ClientSession (src/tidings/web/sync.js): what the shared
// vectors (vectors.test.mjs) do not reach, and the web client's own parts: the outbox
// and gap fill. Run with `node --test tests/web/*.test.mjs` (tests/web/test_node_units.py
// runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ClientSession, positionKey } from '../../src/tidings/web/sync.js';

const ev = (position, event) => ({ type: 'event', position, event });
const msg = (cid, seq, extra = {}) => ({ conversation_id: cid, seq, id: `m${seq}`, client_msg_id: `c${seq}`,
  sender_id: 'u2', body: `body ${seq}`, created_at: '2026-01-01T00:00:00Z', ...extra });
const types = (outcomes) => outcomes.map((o) => o.type);
const ready = (s, position = '1') => s.receive({ type: 'ready', position });

test('positionKey orders integer positions and leaves others opaque', () => {
  assert.equal(positionKey('42'), 42n);
  assert.equal(positionKey('18446744073709551617'), 18446744073709551617n);
  assert.equal(positionKey('abc'), null);
  assert.equal(positionKey('-1'), null);
  assert.equal(positionKey('٣'), null, 'only the digits 0-9');
});

test('the first auth frame has no since; ready gives the position to resume from', () => {
  const s = new ClientSession();
  assert.deepEqual(s.authFrame('tok'), { type: 'auth', token: 'tok' });
  assert.equal(s.ready, false);
  assert.deepEqual(s.receive({ type: 'ready', user: { id: 'u1' }, position: 10 }),
    [{ type: 'ready', user: { id: 'u1' }, position: '10' }]);
  assert.equal(s.ready, true);
  assert.equal(s.position, '10');
  assert.deepEqual(types(s.receive(ev('9', { kind: 'read' }))), ['dropped']);
  assert.deepEqual(s.receive(ev('11', { kind: 'read' })),
    [{ type: 'delivered', position: '11', event: { kind: 'read' }, out_of_order: false }]);
  assert.deepEqual(s.receive({ type: 'ready', user: 'not an object' })[0].user, null);
});

test('forgetPosition starts from nothing', () => {
  const s = new ClientSession({ since: '7' });
  s.track('c1', 3);
  s.forgetPosition();
  assert.equal(s.position, null);
  assert.deepEqual(s.authFrame('t'), { type: 'auth', token: 't' });
  ready(s, '20');
  assert.deepEqual(types(s.receive(ev('21', { kind: 'message', message: msg('c1', 9) }))), ['delivered'],
    'tracked history is forgotten with the position');
});

test('an old position is forgotten one by one only after many newer ones', () => {
  const s = new ClientSession();
  ready(s, '0');
  for (let i = 1; i <= 10005; i += 1) s.receive(ev(String(i), {}));
  assert.deepEqual(types(s.receive(ev('3', {}))), ['dropped'], 'below the floor');
  assert.deepEqual(types(s.receive(ev('10004', {}))), ['dropped'], 'remembered');
  assert.equal(s.position, '10005');
  assert.equal(s.duplicates, 2);
});

test('a request given up on is no longer pending', () => {
  const s = new ClientSession();
  ready(s);
  const a = s.request({ type: 'ping' });
  assert.deepEqual(s.pending, [a.ref]);
  assert.deepEqual(s.giveUp(a.ref), []);
  assert.deepEqual(s.giveUp(a.ref), []);
  assert.deepEqual(s.pending, []);
  assert.deepEqual(types(s.receive({ type: 'ack', ref: a.ref })), ['ignored']);
});

test('a send waits for ready, then is acknowledged by ref and leaves the outbox', () => {
  const s = new ClientSession();
  assert.equal(s.send({ conversation_id: 'c1', body: 'hi', client_msg_id: 'm-1', created_at: 'now' }), null,
    'not connected: kept as pending');
  assert.deepEqual(s.outbox.map((p) => [p.client_msg_id, p.status]), [['m-1', 'pending']]);
  ready(s);
  const [frame] = s.flush();
  assert.deepEqual(frame, { type: 'send', conversation_id: 'c1', client_msg_id: 'm-1', body: 'hi', ref: '1' });
  assert.deepEqual(s.flush(), [], 'a send in flight is not sent twice');
  assert.equal(s.send({ conversation_id: 'c1', body: 'hi', client_msg_id: 'm-1' }), null);
  const stored = msg('c1', 4, { client_msg_id: 'm-1', sender_id: 'u1' });
  const ack = { type: 'ack', ref: '1', message: stored };
  assert.deepEqual(s.receive(ack), [
    { type: 'answered', ref: '1', ok: true, frame: ack, client_msg_id: 'm-1' },
    { type: 'sent', client_msg_id: 'm-1', message: stored }]);
  assert.deepEqual(s.outbox, []);
  // The sender's own event follows the ack: an ordinary event, the outbox already settled.
  assert.deepEqual(types(s.receive(ev('2', { kind: 'message', message: stored }))), ['delivered']);
});

test('a reply carries reply_to_seq; an ack without the message still settles the send', () => {
  const s = new ClientSession();
  ready(s);
  const frame = s.send({ conversation_id: 'c1', body: 'yes', reply_to_seq: 3, client_msg_id: 'm-2' });
  assert.equal(frame.reply_to_seq, 3);
  assert.deepEqual(s.receive({ type: 'ack', ref: frame.ref }).slice(1), [{ type: 'sent', client_msg_id: 'm-2', message: null }]);
  assert.deepEqual(s.outbox, []);
  assert.throws(() => s.send({ conversation_id: 'c1', body: 'x' }), /client_msg_id/);
  // Held (the client is not ready to take the ack): pending until the next flush.
  assert.equal(s.send({ conversation_id: 'c1', body: 'later', client_msg_id: 'm-3' }, { hold: true }), null);
  assert.deepEqual(s.outbox.map((p) => [p.client_msg_id, p.status]), [['m-3', 'pending']]);
  assert.deepEqual(s.flush().map((f) => f.client_msg_id), ['m-3']);
});

test('a send cut off by a lost connection is sent again with the same client_msg_id', () => {
  const s = new ClientSession();
  ready(s);
  const a = s.send({ conversation_id: 'c1', body: 'one', client_msg_id: 'm-1' });
  assert.deepEqual(s.connectionLost(1006),
    [{ type: 'ended', next: 'reconnect', unanswered: [a.ref], unanswered_sends: ['m-1'] }]);
  assert.deepEqual(s.outbox.map((p) => p.status), ['pending'], 'not failed by a disconnect');
  assert.deepEqual(types(s.receive({ type: 'ack', ref: a.ref })), ['ignored'], 'an answer for the old connection');
  s.authFrame('t');
  ready(s);
  const [again] = s.flush();
  assert.equal(again.client_msg_id, 'm-1');
  assert.notEqual(again.ref, a.ref);
});

test('the sender\'s own event settles a send whose ack has not come', () => {
  const s = new ClientSession();
  ready(s);
  const frame = s.send({ conversation_id: 'c1', body: 'one', client_msg_id: 'm-1' });
  const stored = msg('c1', 1, { client_msg_id: 'm-1' });
  assert.deepEqual(s.receive(ev('2', { kind: 'message', message: stored })),
    [{ type: 'delivered', position: '2', event: { kind: 'message', message: stored }, out_of_order: false },
      { type: 'sent', client_msg_id: 'm-1', message: stored }]);
  assert.deepEqual(s.pending, []);
  assert.deepEqual(types(s.receive({ type: 'ack', ref: frame.ref, message: stored })), ['ignored']);
});

test('a refused send fails; retry sends it again with the same client_msg_id', () => {
  const s = new ClientSession();
  ready(s);
  const frame = s.send({ conversation_id: 'c1', body: 'x', client_msg_id: 'm-1' });
  assert.deepEqual(s.receive({ type: 'error', ref: frame.ref, error: { code: 'rate_limited' } }).slice(1),
    [{ type: 'send_failed', client_msg_id: 'm-1', code: 'rate_limited' }]);
  assert.deepEqual(s.outbox.map((p) => [p.status, p.error]), [['failed', 'rate_limited']]);
  assert.deepEqual(s.flush(), [], 'failed sends wait for the user');
  const again = s.retry('m-1');
  assert.equal(again.client_msg_id, 'm-1');
  assert.equal(s.outbox[0].status, 'pending');
  assert.equal(s.outbox[0].error, undefined);
  assert.equal(s.retry('unknown'), null);
  // A send given up on (timeout) fails the same way.
  assert.deepEqual(s.giveUp(again.ref), [{ type: 'send_failed', client_msg_id: 'm-1', code: 'timeout' }]);
  // An error without a code still fails it.
  const third = s.retry('m-1');
  assert.deepEqual(s.receive({ type: 'error', ref: third.ref }).slice(1), [{ type: 'send_failed', client_msg_id: 'm-1', code: 'error' }]);
  // Retry with hold: pending for the next flush.
  assert.equal(s.retry('m-1', { hold: true }), null);
  assert.deepEqual(s.outbox.map((p) => [p.status, p.error]), [['pending', undefined]]);
  assert.deepEqual(s.flush().map((f) => f.client_msg_id), ['m-1']);
});

test('discarding drops a message; its late answers settle nothing', () => {
  const s = new ClientSession();
  ready(s);
  const frame = s.send({ conversation_id: 'c1', body: 'x', client_msg_id: 'm-1' });
  s.discard('m-1');
  assert.deepEqual(s.outbox, []);
  assert.deepEqual(types(s.receive({ type: 'error', ref: frame.ref, error: { code: 'rate_limited' } })), ['answered']);
  const other = s.send({ conversation_id: 'c1', body: 'y', client_msg_id: 'm-2' });
  s.discard('m-2');
  assert.deepEqual(s.giveUp(other.ref), []);
});

test('an outbox restored from storage is sent after ready, failed ones stay failed', () => {
  const s = new ClientSession({ since: '4', outbox: [
    { client_msg_id: 'a', conversation_id: 'c1', body: 'one', status: 'pending', created_at: 't', inflight: true },
    { client_msg_id: 'b', conversation_id: 'c1', body: 'two', status: 'failed', error: 'rate_limited' },
    null, { body: 'no id' },
  ] });
  assert.deepEqual(s.outbox, [
    { client_msg_id: 'a', conversation_id: 'c1', body: 'one', reply_to_seq: null, status: 'pending', created_at: 't' },
    { client_msg_id: 'b', conversation_id: 'c1', body: 'two', reply_to_seq: null, status: 'failed', created_at: null,
      error: 'rate_limited' },
  ]);
  ready(s, '9');
  assert.deepEqual(s.flush().map((f) => f.client_msg_id), ['a']);
});

test('a seq gap in a tracked conversation asks for the history in between, page by page', () => {
  const s = new ClientSession();
  ready(s);
  s.track('c1', 5);
  assert.deepEqual(types(s.receive(ev('2', { kind: 'message', message: msg('c1', 6) }))), ['delivered']);
  const out = s.receive(ev('3', { kind: 'message', message: msg('c1', 10) }));
  assert.deepEqual(out[1], { type: 'fill_gap', conversation_id: 'c1', after_seq: 6, until_seq: 10 });
  // One fill at a time per conversation.
  assert.deepEqual(types(s.receive(ev('4', { kind: 'message', message: msg('c1', 12) }))), ['delivered']);
  assert.deepEqual(s.gapPage('c1', 10, [msg('c1', 7), msg('c1', 8)], true),
    [{ type: 'fill_gap', conversation_id: 'c1', after_seq: 8, until_seq: 10 }]);
  assert.deepEqual(s.gapPage('c1', 10, [msg('c1', 9), msg('c1', 10)], false), []);
  assert.deepEqual(types(s.receive(ev('5', { kind: 'message', message: msg('c1', 11) }))), ['delivered']);
  assert.deepEqual(s.gapPage('c1', 10, [], false), [], 'a page for no fill under way is ignored');
});

test('untracked conversations, old seqs, failed fills and forgotten history', () => {
  const s = new ClientSession();
  ready(s);
  assert.deepEqual(types(s.receive(ev('2', { kind: 'message', message: msg('c9', 50) }))), ['delivered'],
    'no history held: nothing to fill');
  s.track('c1', 0);
  assert.deepEqual(types(s.receive(ev('3', { kind: 'message', message: msg('c1', 4) }))), ['delivered'],
    'an empty conversation has no gap to fill');
  s.track('c1', 4);
  s.track('c1', 2); // tracking never goes back
  assert.deepEqual(types(s.receive(ev('4', { kind: 'message', message: msg('c1', 3) }))), ['delivered']);
  assert.deepEqual(types(s.receive(ev('5', { kind: 'message', message: msg('c1', 7) }))), ['delivered', 'fill_gap']);
  s.gapFailed('c1');
  // The next message finds the gap again.
  assert.deepEqual(s.receive(ev('6', { kind: 'message', message: msg('c1', 8) }))[1],
    { type: 'fill_gap', conversation_id: 'c1', after_seq: 4, until_seq: 8 });
  s.untrack('c1');
  assert.deepEqual(types(s.receive(ev('7', { kind: 'message', message: msg('c1', 20) }))), ['delivered']);
  // The ack of one's own send also reveals a gap.
  s.track('c2', 1);
  const frame = s.send({ conversation_id: 'c2', body: 'x', client_msg_id: 'own' });
  assert.deepEqual(types(s.receive({ type: 'ack', ref: frame.ref, message: msg('c2', 3, { client_msg_id: 'own' }) })),
    ['answered', 'sent', 'fill_gap']);
  s.forgetHistory();
  assert.deepEqual(types(s.receive(ev('8', { kind: 'message', message: msg('c2', 9) }))), ['delivered']);
  assert.deepEqual(s.gapPage('c2', 3, [msg('c2', 2)], true), []);
  // A message event with something else than a message object is an ordinary event.
  assert.deepEqual(types(s.receive(ev('9', { kind: 'message', message: 'x' }))), ['delivered']);
});
