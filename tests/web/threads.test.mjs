// Threads in the web client's reducer (src/tidings/web/state.js, issue 17): what the
// main timeline shows, summaries from `thread_updated`, the thread's own unread from
// replies (a replayed one counted once), `thread_read` and the open panel's replies.
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { apply, applyAll, initialState, inTimeline, threadKey, threadUnread } from '../../src/tidings/web/state.js';

const ME = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'member' };
const conv = { id: 'c1', kind: 'group', name: 'c1', last_seq: 1, read_seq: 1, last_activity_at: '2026-01-01T00:00:00Z' };
const reply = (seq, extra = {}) => ({ conversation_id: 'c1', seq, id: `m${seq}`, client_msg_id: `c${seq}`,
  sender_id: 'u2', body: `r${seq}`, created_at: '2026-01-01T00:01:00Z', thread_root_seq: 1, ...extra });
const event = (ev) => ({ type: 'event', event: { conversation_id: 'c1', at: '2026-01-01T00:01:00Z', ...ev } });

function world() {
  return applyAll(initialState(), [
    { type: 'signed_in', user: ME },
    { type: 'initial_loaded', conversations: [conv], users: [] },
    { type: 'booted' },
    { type: 'threads_loaded', cid: 'c1', threads: [{ root_seq: 1, reply_count: 0, following: true, read_seq: 0, unread: 0,
      participants: [] }] },
  ]).state;
}

test('the main timeline shows roots, plain messages and replies also sent to it', () => {
  assert.equal(inTimeline({ seq: 1 }), true);
  assert.equal(inTimeline(reply(2)), false);
  assert.equal(inTimeline(reply(3, { also_to_conversation: true })), true);
});

test('replies count as the followed thread\'s unread once; own replies move its read position', () => {
  let s = world();
  s = apply(s, event({ kind: 'message', message: reply(2) })).state;
  s = apply(s, event({ kind: 'message', message: reply(2) })).state; // replayed: not again
  assert.equal(s.threads.get(threadKey('c1', 1)).unread, 1);
  assert.equal(threadUnread(s, 'c1'), 1);
  s = apply(s, event({ kind: 'message', message: reply(3, { sender_id: 'u1' }) })).state;
  assert.equal(s.threads.get(threadKey('c1', 1)).read_seq, 3);
  const summary = { root_seq: 1, reply_count: 2, last_reply_seq: 3, last_reply_at: '2026-01-01T00:01:00Z',
    participants: ['u1', 'u2'] };
  s = apply(s, event({ kind: 'thread_updated', thread: summary })).state;
  const held = s.threads.get(threadKey('c1', 1));
  assert.deepEqual([held.reply_count, held.participants, held.following], [2, ['u1', 'u2'], true]);
  // unfollowed on another device: nothing unread here, and the exact state is fetched
  const r = apply(s, event({ kind: 'thread_read', root_seq: 1, user_id: 'u1', following: false, read_seq: 3 }));
  assert.equal(threadUnread(r.state, 'c1'), 0);
  assert.ok(r.effects.some((e) => e.type === 'load_thread' && e.root === 1));
  // someone else's thread_read is not mine
  assert.equal(apply(s, event({ kind: 'thread_read', root_seq: 1, user_id: 'u2', following: false, read_seq: 3 })).state, s);
});

test('the open thread panel holds its replies, live ones and edits included', () => {
  let s = world();
  const opened = apply(s, { type: 'thread_opened', cid: 'c1', root: 1 });
  assert.ok(opened.effects.some((e) => e.type === 'load_thread_replies'));
  s = apply(opened.state, { type: 'thread_replies_loaded', cid: 'c1', root: 1, messages: [reply(2)] }).state;
  s = apply(s, event({ kind: 'message', message: reply(3) })).state;
  s = apply(s, event({ kind: 'message_deleted', message: reply(2, { deleted: true, body: '' }), by: 'u2' })).state;
  const held = s.threadReplies.get(threadKey('c1', 1));
  assert.deepEqual([...held.keys()], [2, 3]);
  assert.equal(held.get(2).deleted, true);
  s = apply(s, { type: 'thread_closed' }).state;
  assert.equal(s.thread, null);
  assert.equal(s.threadReplies.size, 0);
});
