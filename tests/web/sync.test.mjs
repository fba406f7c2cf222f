// Unit tests of the web client's connection rules (src/tidings/web/sync.js).
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ClientSession, positionKey } from '../../src/tidings/web/sync.js';

const ev = (position, event) => ({ type: 'event', position, event });
const msg = (cid, seq, extra = {}) => ({ conversation_id: cid, seq, id: `m${seq}`, client_msg_id: `c${seq}`,
  sender_id: 'u2', body: `body ${seq}`, created_at: '2026-01-01T00:00:00Z', ...extra });
const types = (outcomes) => outcomes.map((o) => o.type);

test('positionKey orders integer positions and leaves others opaque', () => {
  assert.equal(positionKey('42'), 42n);
  assert.equal(positionKey('18446744073709551617'), 18446744073709551617n);
  assert.equal(positionKey('abc'), null);
  assert.equal(positionKey('-1'), null);
});

test('the first auth frame has no since; ready gives the position to resume from', () => {
  const s = new ClientSession();
  assert.deepEqual(s.authFrame('tok'), { type: 'auth', token: 'tok', ref: 'auth' });
  assert.equal(s.ready, false);
  assert.deepEqual(s.receive({ type: 'ready', user: { id: 'u1' }, position: '10' }),
    [{ type: 'ready', user: { id: 'u1' }, position: '10' }]);
  assert.equal(s.ready, true);
  assert.equal(s.position, '10');
  // Anything at or below the head we subscribed at was already part of the REST state.
  assert.deepEqual(types(s.receive(ev('9', { kind: 'read' }))), ['duplicate']);
  assert.deepEqual(s.receive(ev('11', { kind: 'read' })), [{ type: 'event', position: '11', event: { kind: 'read' } }]);
  s.closed();
  assert.deepEqual(s.authFrame('tok'), { type: 'auth', token: 'tok', ref: 'auth', since: '11' });
});

test('a session resumed with since keeps it until newer events arrive', () => {
  const s = new ClientSession({ since: '5' });
  assert.equal(s.authFrame('t').since, '5');
  s.receive({ type: 'ready', position: '8' });
  assert.equal(s.position, '5', 'the replay of 6..8 follows; the ready head is not a resume point');
  assert.deepEqual(types(s.receive(ev('5', {}))), ['duplicate']);
  assert.deepEqual(types(s.receive(ev('6', {}))), ['event']);
  assert.equal(s.position, '6');
});

test('replayed events at the reconnect boundary are dropped exactly once', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '0' });
  for (const p of ['1', '2', '3']) assert.deepEqual(types(s.receive(ev(p, {}))), ['event']);
  s.closed();
  assert.equal(s.authFrame('t').since, '3');
  s.receive({ type: 'ready', position: '5' });
  const seen = ['2', '3', '4', '5', '4'].map((p) => types(s.receive(ev(p, {})))[0]);
  assert.deepEqual(seen, ['duplicate', 'duplicate', 'event', 'event', 'duplicate']);
  assert.equal(s.position, '5');
});

test('an event below the last position that was never seen is kept, not lost', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  s.receive(ev('3', {}));
  assert.deepEqual(types(s.receive(ev('2', {}))), ['event']);
  assert.equal(s.position, '3', 'the resume position never goes back');
  assert.deepEqual(types(s.receive(ev('2', {}))), ['duplicate']);
});

test('opaque positions are de-duplicated by value', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: 'x-0' });
  assert.deepEqual(types(s.receive(ev('x-1', {}))), ['event']);
  assert.deepEqual(types(s.receive(ev('x-1', {}))), ['duplicate']);
  assert.deepEqual(types(s.receive(ev('x-0', {}))), ['duplicate']);
  assert.equal(s.position, 'x-1');
});

test('malformed frames and unknown types produce nothing', () => {
  const s = new ClientSession();
  assert.deepEqual(s.receive(null), []);
  assert.deepEqual(s.receive({ type: 'mystery' }), []);
  s.receive({ type: 'ready', position: '1' });
  assert.deepEqual(s.receive({ type: 'event', position: '2' }), []);
  assert.deepEqual(s.receive({ type: 'event', event: {} }), []);
  assert.equal(s.position, '1');
});

test('typing, presence and reconnect frames pass through', () => {
  const s = new ClientSession();
  const typing = { type: 'typing', conversation_id: 'c', user_id: 'u' };
  assert.deepEqual(s.receive(typing), [{ type: 'typing', frame: typing }]);
  assert.deepEqual(s.receive({ type: 'presence', user_id: 'u', state: 'away' })[0].type, 'presence');
  assert.deepEqual(s.receive({ type: 'reconnect' }), [{ type: 'reconnect' }]);
});

test('an error before ready answers the auth frame; invalid_position starts fresh', () => {
  const fresh = new ClientSession();
  assert.deepEqual(fresh.receive({ type: 'error', error: { code: 'unauthenticated' } }),
    [{ type: 'auth_error', code: 'unauthenticated' }]);
  const s = new ClientSession({ since: '7' });
  s.track('c1', 3);
  assert.deepEqual(s.receive({ type: 'error', ref: 'auth', error: { code: 'invalid_position' } }),
    [{ type: 'resume_failed' }]);
  assert.equal(s.position, null);
  assert.deepEqual(s.authFrame('t'), { type: 'auth', token: 't', ref: 'auth' });
  assert.deepEqual(s.receive(ev('1', { kind: 'message', message: msg('c1', 9) })).map((o) => o.type), ['event'],
    'tracked history is forgotten with the position');
  assert.deepEqual(new ClientSession().receive({ type: 'error', error: { code: 'invalid_position' } }),
    [{ type: 'auth_error', code: 'invalid_position' }], 'without a position there is nothing to reset');
});

test('requests are matched to their ack or error by ref', () => {
  const s = new ClientSession();
  assert.equal(s.request({ type: 'ping' }), null, 'nothing is sent before ready');
  s.receive({ type: 'ready', position: '1' });
  const a = s.request({ type: 'ping' });
  const b = s.request({ type: 'presence', state: 'away' });
  assert.notEqual(a.ref, b.ref);
  assert.deepEqual(s.receive({ type: 'ack', ref: b.ref }), [{ type: 'ack', ref: b.ref, frame: { type: 'ack', ref: b.ref } }]);
  assert.deepEqual(s.receive({ type: 'ack', ref: b.ref }), [], 'a second ack for the same ref is ignored');
  assert.deepEqual(s.receive({ type: 'ack', ref: 'unknown' }), []);
  assert.deepEqual(s.receive({ type: 'ack' }), []);
  const err = s.receive({ type: 'error', ref: a.ref, error: { code: 'rate_limited', message: 'slow' } });
  assert.deepEqual(err, [{ type: 'error', ref: a.ref, code: 'rate_limited', error: { code: 'rate_limited', message: 'slow' } }]);
  assert.deepEqual(s.receive({ type: 'error', ref: 'nope', error: {} }),
    [{ type: 'error', ref: 'nope', code: 'error', error: {} }], 'an unmatched error is still reported');
});

test('closing fails requests in flight; expiring one fails it with timeout', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const a = s.request({ type: 'ping' });
  const b = s.request({ type: 'ping' });
  assert.deepEqual(s.expire(b.ref), [{ type: 'error', ref: b.ref, code: 'timeout', error: { code: 'timeout' } }]);
  assert.deepEqual(s.expire(b.ref), []);
  assert.deepEqual(s.closed(), [{ type: 'error', ref: a.ref, code: 'disconnected', error: { code: 'disconnected' } }]);
  assert.equal(s.ready, false);
  assert.deepEqual(s.receive({ type: 'ack', ref: a.ref }), []);
});

test('a send waits for ready, then is acknowledged by ref and leaves the outbox', () => {
  const s = new ClientSession();
  const first = s.send({ conversation_id: 'c1', body: 'hi', client_msg_id: 'm-1', created_at: 'now' });
  assert.equal(first, null, 'not connected: kept as pending');
  assert.deepEqual(s.outbox.map((p) => [p.client_msg_id, p.status]), [['m-1', 'pending']]);
  s.receive({ type: 'ready', position: '1' });
  const [frame] = s.flush();
  assert.deepEqual({ ...frame, ref: undefined },
    { type: 'send', conversation_id: 'c1', client_msg_id: 'm-1', body: 'hi', ref: undefined });
  assert.deepEqual(s.flush(), [], 'a send in flight is not sent twice');
  const stored = msg('c1', 4, { client_msg_id: 'm-1', sender_id: 'u1' });
  assert.deepEqual(s.receive({ type: 'ack', ref: frame.ref, message: stored }),
    [{ type: 'sent', client_msg_id: 'm-1', message: stored }]);
  assert.deepEqual(s.outbox, []);
  // The sender's own event follows the ack: an ordinary event, the outbox is already settled.
  assert.deepEqual(types(s.receive(ev('2', { kind: 'message', message: stored }))), ['event']);
});

test('a reply carries reply_to_seq; an ack without the message still settles the send', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const frame = s.send({ conversation_id: 'c1', body: 'yes', reply_to_seq: 3, client_msg_id: 'm-2' });
  assert.equal(frame.reply_to_seq, 3);
  assert.deepEqual(s.receive({ type: 'ack', ref: frame.ref }), [{ type: 'sent', client_msg_id: 'm-2', message: null }]);
  assert.deepEqual(s.outbox, []);
  assert.throws(() => s.send({ conversation_id: 'c1', body: 'x' }), /client_msg_id/);
  // Held (the client is not ready to take the ack): pending until the next flush.
  assert.equal(s.send({ conversation_id: 'c1', body: 'later', client_msg_id: 'm-3' }, { hold: true }), null);
  assert.deepEqual(s.outbox.map((p) => [p.client_msg_id, p.status]), [['m-3', 'pending']]);
  assert.deepEqual(s.flush().map((f) => f.client_msg_id), ['m-3']);
});

test('a send interrupted by a disconnect is sent again with the same client_msg_id', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const a = s.send({ conversation_id: 'c1', body: 'one', client_msg_id: 'm-1' });
  assert.deepEqual(s.closed(), [], 'sends are not failed by a disconnect');
  assert.deepEqual(s.outbox.map((p) => p.status), ['pending']);
  assert.deepEqual(s.receive({ type: 'ack', ref: a.ref, message: msg('c1', 1, { client_msg_id: 'm-1' }) }), [],
    'an ack from the old connection is not trusted');
  s.receive({ type: 'ready', position: '1' });
  const [again] = s.flush();
  assert.equal(again.client_msg_id, 'm-1');
  assert.notEqual(again.ref, a.ref);
});

test('the sender\'s own event settles a send whose ack was lost', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const frame = s.send({ conversation_id: 'c1', body: 'one', client_msg_id: 'm-1' });
  const stored = msg('c1', 1, { client_msg_id: 'm-1' });
  assert.deepEqual(s.receive(ev('2', { kind: 'message', message: stored })),
    [{ type: 'event', position: '2', event: { kind: 'message', message: stored } },
      { type: 'sent', client_msg_id: 'm-1', message: stored }]);
  assert.deepEqual(s.receive({ type: 'ack', ref: frame.ref, message: stored }), [], 'the late ack is ignored');
});

test('a refused send fails; retry sends it again with the same client_msg_id', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const frame = s.send({ conversation_id: 'c1', body: 'x', client_msg_id: 'm-1' });
  assert.deepEqual(s.receive({ type: 'error', ref: frame.ref, error: { code: 'rate_limited' } }),
    [{ type: 'send_failed', client_msg_id: 'm-1', code: 'rate_limited' }]);
  assert.deepEqual(s.outbox.map((p) => [p.status, p.error]), [['failed', 'rate_limited']]);
  assert.deepEqual(s.flush(), [], 'failed sends wait for the user');
  const again = s.retry('m-1');
  assert.equal(again.client_msg_id, 'm-1');
  assert.equal(s.outbox[0].status, 'pending');
  assert.equal(s.outbox[0].error, undefined);
  assert.equal(s.retry('unknown'), null);
  assert.equal(s.retry('unknown', { hold: true }), null);
  // A send timing out fails it the same way.
  assert.deepEqual(s.expire(again.ref), [{ type: 'send_failed', client_msg_id: 'm-1', code: 'timeout' }]);
});

test('discarding drops a message and ignores its late answers', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const frame = s.send({ conversation_id: 'c1', body: 'x', client_msg_id: 'm-1' });
  s.discard('m-1');
  assert.deepEqual(s.outbox, []);
  assert.deepEqual(s.receive({ type: 'error', ref: frame.ref, error: { code: 'rate_limited' } }),
    [{ type: 'error', ref: frame.ref, code: 'rate_limited', error: { code: 'rate_limited' } }]);
  assert.deepEqual(s.expire(frame.ref), []);
});

test('an outbox restored from storage is sent after ready, failed ones stay failed', () => {
  const s = new ClientSession({ since: '4', outbox: [
    { client_msg_id: 'a', conversation_id: 'c1', body: 'one', status: 'pending', created_at: 't', inflight: true },
    { client_msg_id: 'b', conversation_id: 'c1', body: 'two', status: 'failed', error: 'rate_limited' },
  ] });
  assert.deepEqual(s.outbox, [
    { client_msg_id: 'a', conversation_id: 'c1', body: 'one', reply_to_seq: null, status: 'pending', created_at: 't' },
    { client_msg_id: 'b', conversation_id: 'c1', body: 'two', reply_to_seq: null, status: 'failed', created_at: null,
      error: 'rate_limited' },
  ]);
  s.receive({ type: 'ready', position: '9' });
  assert.deepEqual(s.flush().map((f) => f.client_msg_id), ['a']);
  // Sending a known client_msg_id again reuses the entry (no duplicate in the outbox).
  s.send({ conversation_id: 'c1', body: 'two', client_msg_id: 'b' });
  assert.equal(s.outbox.length, 2);
});

test('a seq gap in a tracked conversation asks for the history in between, page by page', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  s.track('c1', 5);
  assert.deepEqual(types(s.receive(ev('2', { kind: 'message', message: msg('c1', 6) }))), ['event']);
  const out = s.receive(ev('3', { kind: 'message', message: msg('c1', 10) }));
  assert.deepEqual(out[1], { type: 'fill_gap', conversation_id: 'c1', after_seq: 6, until_seq: 10 });
  // One fill at a time per conversation.
  assert.deepEqual(types(s.receive(ev('4', { kind: 'message', message: msg('c1', 12) }))), ['event']);
  assert.deepEqual(s.gapPage('c1', 10, [msg('c1', 7), msg('c1', 8)], true),
    [{ type: 'fill_gap', conversation_id: 'c1', after_seq: 8, until_seq: 10 }]);
  assert.deepEqual(s.gapPage('c1', 10, [msg('c1', 9), msg('c1', 10)], false), []);
  assert.deepEqual(types(s.receive(ev('5', { kind: 'message', message: msg('c1', 11) }))), ['event']);
  assert.deepEqual(s.gapPage('c1', 10, [], false), [], 'a page for no fill under way is ignored');
});

test('untracked conversations, old seqs and failed fills', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  assert.deepEqual(types(s.receive(ev('2', { kind: 'message', message: msg('c9', 50) }))), ['event'],
    'no history held: nothing to fill');
  s.track('c1', 0);
  assert.deepEqual(types(s.receive(ev('3', { kind: 'message', message: msg('c1', 4) }))), ['event'],
    'an empty conversation has no gap to fill');
  s.track('c1', 4);
  s.track('c1', 2); // tracking never goes back
  assert.deepEqual(types(s.receive(ev('4', { kind: 'message', message: msg('c1', 3) }))), ['event']);
  assert.deepEqual(types(s.receive(ev('5', { kind: 'message', message: msg('c1', 7) }))), ['event', 'fill_gap']);
  s.gapFailed('c1');
  // The next message finds the gap again.
  assert.deepEqual(s.receive(ev('6', { kind: 'message', message: msg('c1', 8) }))[1],
    { type: 'fill_gap', conversation_id: 'c1', after_seq: 4, until_seq: 8 });
  s.untrack('c1');
  assert.deepEqual(types(s.receive(ev('7', { kind: 'message', message: msg('c1', 20) }))), ['event']);
  // An ack of one's own send also reveals a gap.
  s.track('c2', 1);
  const frame = s.send({ conversation_id: 'c2', body: 'x', client_msg_id: 'own' });
  assert.deepEqual(s.receive({ type: 'ack', ref: frame.ref, message: msg('c2', 3, { client_msg_id: 'own' }) }).map((o) => o.type),
    ['sent', 'fill_gap']);
});

test('an old replayed position is forgotten only after many newer ones', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '0' });
  for (let i = 1; i <= 10005; i += 1) s.receive(ev(String(i), {}));
  assert.deepEqual(types(s.receive(ev('3', {}))), ['duplicate']);
  assert.deepEqual(types(s.receive(ev('10004', {}))), ['duplicate']);
  assert.equal(s.position, '10005');
});

test('retry with hold marks a failed message pending for the next flush', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  const frame = s.send({ conversation_id: 'c1', body: 'x', client_msg_id: 'm-1' });
  s.receive({ type: 'error', ref: frame.ref, error: { code: 'rate_limited' } });
  assert.equal(s.retry('m-1', { hold: true }), null);
  assert.deepEqual(s.outbox.map((p) => [p.status, p.error]), [['pending', undefined]]);
  assert.deepEqual(s.flush().map((f) => f.client_msg_id), ['m-1']);
});

test('forgetHistory stops gap fill for every conversation', () => {
  const s = new ClientSession();
  s.receive({ type: 'ready', position: '1' });
  s.track('c1', 2);
  s.track('c2', 2);
  s.receive(ev('2', { kind: 'message', message: msg('c2', 9) }));
  s.forgetHistory();
  assert.deepEqual(types(s.receive(ev('3', { kind: 'message', message: msg('c1', 9) }))), ['event']);
  assert.deepEqual(s.gapPage('c2', 9, [msg('c2', 3)], true), []);
});
