// Unit tests of the web client's reducer (src/tidings/web/state.js).
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ACTIONS, apply, applyAll, initialState, normalizeConv, sortedConversations, unreadTotal, typingUsers,
  directPeer, displayName, canManage, canModerate, mayPost, msgStore, newestSeq, oldestSeq, TYPING_SHOW_MS,
  parseCommand, commandMatches, EPHEMERAL_KEPT, isSaved,
} from '../../src/tidings/web/state.js';

const ME = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'member' };
const conv = (id, extra = {}) => ({ id, kind: 'group', name: id, last_seq: 0, read_seq: 0,
  last_activity_at: '2026-01-01T00:00:00Z', ...extra });
const msg = (cid, seq, extra = {}) => ({ conversation_id: cid, seq, id: `m${seq}`, client_msg_id: `c${seq}`,
  sender_id: 'u2', body: `body ${seq}`, created_at: `2026-01-01T00:00:${String(seq).padStart(2, '0')}Z`, ...extra });
const effectTypes = (effects) => effects.map((e) => e.type);

// A signed-in state with conversations loaded and booted.
function world(conversations = [conv('c1')]) {
  return applyAll(initialState(), [
    { type: 'signed_in', user: ME },
    { type: 'initial_loaded', conversations, users: [{ id: 'u2', username: 'bob', display_name: 'Bob' }] },
    { type: 'booted' },
  ]).state;
}

// Deep snapshot of a state (Maps and Sets included), to check nothing was mutated.
function snapshot(value) {
  if (value instanceof Map) return ['Map', [...value].map(([k, v]) => [k, snapshot(v)])];
  if (value instanceof Set) return ['Set', [...value]];
  if (Array.isArray(value)) return value.map(snapshot);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, snapshot(v)]));
  return value;
}

test('unknown actions change nothing and the action list is complete', () => {
  const s = initialState();
  const r = apply(s, { type: 'no_such_action' });
  assert.equal(r.state, s);
  assert.deepEqual(r.effects, []);
  assert.ok(ACTIONS.includes('event') && ACTIONS.includes('routed'));
});

test('apply never mutates the state it is given', () => {
  let s = world([conv('c1'), conv('c2', { kind: 'direct' })]);
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg('c1', 1)], has_more: false }).state;
  s = apply(s, { type: 'detail_loaded', conversation: { ...conv('c1'), members: [{ user_id: 'u1' }, { user_id: 'u2' }] } }).state;
  const actions = [
    { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 2, { mentions: ['u1'] }) } },
    { type: 'event', event: { kind: 'reaction', conversation_id: 'c1', seq: 1, emoji: '👍', user_id: 'u2', added: true, count: 1 } },
    { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u2', seq: 2 } },
    { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u1', seq: 2 } },
    { type: 'event', event: { kind: 'member_removed', conversation_id: 'c1', user_id: 'u2' } },
    { type: 'event', event: { kind: 'member_removed', conversation_id: 'c2', user_id: 'u1' } },
    { type: 'event', event: { kind: 'conversation_updated', conversation: { id: 'c1', name: 'New' } } },
    { type: 'typing', conversation_id: 'c1', user_id: 'u2', now: 1000 },
    { type: 'presence', user_id: 'u2', state: 'away' },
    { type: 'routed', section: 'c', arg: 'c1' },
    { type: 'read_up_to', cid: 'c1', seq: 2 },
    { type: 'edit_started', message: msg('c1', 1) },
    { type: 'reply_started', message: msg('c1', 1) },
    { type: 'page_started', cid: 'c1', mode: 'older' },
    { type: 'conversations_refreshed', conversations: [conv('c1', { last_seq: 9 })] },
    { type: 'ephemeral', frame: { type: 'ephemeral', conversation_id: 'c1', body: 'hi', sender: { id: 'b1' } } },
    { type: 'commands_loaded', commands: [{ name: 'deploy' }] },
  ];
  for (const action of actions) {
    const before = snapshot(s);
    const next = apply(s, action).state;
    assert.deepEqual(snapshot(s), before, `${action.type} mutated its input`);
    s = next;
  }
});

test('signing in starts from a clean state; ready merges the user and asks to remember it', () => {
  const dirty = { ...world(), filter: 'x' };
  const s = apply(dirty, { type: 'signed_in', user: ME }).state;
  assert.equal(s.me, ME);
  assert.equal(s.convs.size, 0);
  assert.equal(s.filter, '');
  assert.equal(s.booted, false);
  const r = apply(s, { type: 'ready', user: { id: 'u1', display_name: 'Alice C.' } });
  assert.equal(r.state.me.display_name, 'Alice C.');
  assert.equal(r.state.me.username, 'alice');
  assert.equal(displayName(r.state, 'u1'), 'Alice C.');
  assert.deepEqual(r.effects, [{ type: 'remember_user', user: r.state.me }]);
  assert.equal(apply(initialState(), { type: 'ready', user: ME }).state.me, null, 'no session, nothing to merge');
});

test('a message from someone else counts as unread, a mention as a mention', () => {
  let s = world();
  let r = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 1) } });
  s = r.state;
  assert.equal(s.convs.get('c1').unread, 1);
  assert.equal(s.convs.get('c1').unread_mentions, 0);
  assert.equal(s.previews.get('c1').seq, 1);
  assert.ok(effectTypes(r.effects).includes('render'));
  r = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 2, { mentions: ['u1'] }) } });
  s = r.state;
  assert.equal(s.convs.get('c1').unread, 2);
  assert.equal(s.convs.get('c1').unread_mentions, 1);
  assert.equal(s.convs.get('c1').last_activity_at, msg('c1', 2).created_at);
  assert.equal(unreadTotal(s), 2);
  // A replayed old message changes no counter.
  const again = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 1) } }).state;
  assert.equal(again.convs.get('c1').unread, 2);
});

test('thread-only replies are the thread\'s unread, not the conversation\'s', () => {
  let s = world([conv('c1', { last_seq: 1, read_seq: 1 })]);
  const ev = (m) => ({ type: 'event', event: { kind: 'message', conversation_id: 'c1', message: m } });
  s = apply(s, ev(msg('c1', 2, { thread_root_seq: 1, mentions: ['u1'] }))).state;
  let c = s.convs.get('c1');
  assert.deepEqual([c.last_seq, c.unread, c.unread_mentions, unreadTotal(s)], [2, 0, 0, 0]);
  s = apply(s, ev(msg('c1', 3, { thread_root_seq: 1, also_to_conversation: true }))).state;
  s = apply(s, ev(msg('c1', 4))).state;
  s = apply(s, ev(msg('c1', 5, { thread_root_seq: 1 }))).state;
  c = s.convs.get('c1');
  assert.deepEqual([c.last_seq, c.unread, c.thread_only], [5, 2, 2]);
  // my read event says what is left (the server's count): 4 and 5 after 3, 4 only unread
  s = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u1', seq: 3, unread: 1 } }).state;
  c = s.convs.get('c1');
  assert.deepEqual([c.read_seq, c.unread], [3, 1]);
  // marked unread from 2 on (the server answered 2: messages 3 and 4)
  s = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u1', seq: 1, unread: 2 } }).state;
  assert.deepEqual([s.convs.get('c1').read_seq, s.convs.get('c1').unread], [1, 2]);
  // a fresh list: the server's unread stands, the thread-only replies left out
  s = apply(s, { type: 'conversations_refreshed', conversations: [conv('c1', { last_seq: 5, read_seq: 1, unread: 2 })] }).state;
  assert.equal(s.convs.get('c1').unread, 2);
  // reading everything leaves nothing
  s = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u1', seq: 5, unread: 0 } }).state;
  assert.deepEqual([s.convs.get('c1').unread, s.convs.get('c1').thread_only], [0, 0]);
  // a normalized list entry from the server keeps its unread
  assert.equal(normalizeConv(conv('c2', { last_seq: 9, read_seq: 2, unread: 3 })).unread, 3);
});

test('@all, @channel and @here count in the mention badge as the notification level allows', () => {
  const chan = (id, notifications) => conv(id, { kind: 'channel', notifications });
  let s = world([chan('c1', null), chan('c2', { level: 'none', muted: false }),
    chan('c3', { level: 'all', muted: true, muted_until: null }), conv('c4')]);
  const ev = (cid, seq, extra) => ({ type: 'event', event: { kind: 'message', conversation_id: cid, message: msg(cid, seq, extra) } });
  for (const cid of ['c1', 'c2', 'c3', 'c4']) {
    s = apply(s, ev(cid, 1, { mentions_everyone: 'here', body: '@here' })).state;
    s = apply(s, ev(cid, 2, { mentions_everyone: 'all', body: '@all', thread_root_seq: 1 })).state; // thread-only
  }
  const badge = (cid) => s.convs.get(cid).unread_mentions;
  assert.deepEqual(['c1', 'c2', 'c3', 'c4'].map(badge), [1, 0, 0, 1]);
  // a mute that has ended counts again; my own @all never counts
  s = world([chan('c5', { level: null, muted: true, muted_until: '2025-01-01T00:00:00Z' })]);
  s = apply(s, ev('c5', 1, { mentions_everyone: 'channel' })).state;
  assert.equal(s.convs.get('c5').unread_mentions, 1);
  s = apply(s, { type: 'message_stored', message: msg('c5', 2, { sender_id: 'u1', mentions_everyone: 'all' }) }).state;
  assert.equal(s.convs.get('c5').unread_mentions, 0);
});

test('one\'s own message moves the read position and clears the counters', () => {
  let s = world();
  s = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 1, { mentions: ['u1'] }) } }).state;
  const r = apply(s, { type: 'message_stored', message: msg('c1', 2, { sender_id: 'u1' }) });
  const c = r.state.convs.get('c1');
  assert.deepEqual([c.last_seq, c.read_seq, c.unread, c.unread_mentions], [2, 2, 0, 0]);
  assert.equal(apply(s, { type: 'message_stored', message: null }).state, s);
  assert.equal(apply(s, { type: 'message_stored', message: { conversation_id: 'c1' } }).state, s);
});

test('a message for an unknown conversation asks for a refresh of the list', () => {
  const r = apply(world(), { type: 'event', event: { kind: 'message', conversation_id: 'c9', message: msg('c9', 1) } });
  assert.ok(effectTypes(r.effects).includes('refresh_conversations'));
  assert.equal(r.state.convs.has('c9'), false);
  assert.equal(r.state.previews.get('c9').seq, 1);
});

test('messages go into a loaded store; the open conversation checks its read position', () => {
  let s = world();
  s = apply(s, { type: 'routed', section: 'c', arg: 'c1' }).state;
  // Not loaded yet: nothing is kept (the first page brings it).
  s = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 1) } }).state;
  assert.equal(msgStore(s, 'c1').bySeq.size, 0);
  let r = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' });
  s = r.state;
  assert.equal(msgStore(s, 'c1').loading, true);
  assert.equal(apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state, s, 'one load at a time');
  // Live while the page loads: kept, and not overwritten by the (older) page.
  s = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 2, { body: 'live' }) } }).state;
  s = apply(s, { type: 'event', event: { kind: 'message_edited', conversation_id: 'c1', message: msg('c1', 1, { body: 'edited' }) } }).state;
  r = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg('c1', 1), msg('c1', 2, { body: 'stale' })], has_more: false });
  s = r.state;
  const store = msgStore(s, 'c1');
  assert.deepEqual([...store.bySeq.values()].sort((a, b) => a.seq - b.seq).map((m) => m.body), ['edited', 'live']);
  assert.equal(store.loaded, true);
  assert.equal(store.loading, false);
  assert.equal(store.touched, null);
  assert.deepEqual(r.effects.find((e) => e.type === 'track_history'), { type: 'track_history', cid: 'c1', newest: 2 });
  r = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 3) } });
  assert.ok(effectTypes(r.effects).includes('check_read'));
  assert.equal(newestSeq(msgStore(r.state, 'c1')), 3);
  assert.equal(oldestSeq(msgStore(r.state, 'c1')), 1);
  assert.equal(oldestSeq(msgStore(r.state, 'nope')), 0);
});

test('older pages and gap pages add to the store without replacing what is there', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'older' }).state;
  assert.equal(msgStore(s, 'c1').loading, false, 'no older page before the first one');
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg('c1', 51), msg('c1', 52)], has_more: true }).state;
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'older' }).state;
  assert.equal(msgStore(s, 'c1').loading, true);
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'older', messages: [msg('c1', 50), msg('c1', 51, { body: 'x' })], has_more: true }).state;
  assert.deepEqual([...msgStore(s, 'c1').bySeq.keys()].sort((a, b) => a - b), [50, 51, 52]);
  assert.equal(msgStore(s, 'c1').bySeq.get(51).body, 'body 51');
  assert.equal(msgStore(s, 'c1').hasMore, true);
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'gap', messages: [msg('c1', 53), msg('c1', 52, { body: 'x' })] }).state;
  assert.equal(msgStore(s, 'c1').bySeq.get(52).body, 'body 52');
  assert.equal(msgStore(s, 'c1').bySeq.has(53), true);
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'older' }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'older', messages: [], has_more: true }).state;
  assert.equal(msgStore(s, 'c1').hasMore, false, 'an empty page ends the history');
  assert.equal(apply(s, { type: 'history_complete', cid: 'c1' }).state, s);
});

test('history_complete and page_failed', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  let r = apply(s, { type: 'page_failed', cid: 'c1', mode: 'latest', status: 404 });
  assert.equal(msgStore(r.state, 'c1').loading, false);
  assert.deepEqual(r.effects.filter((e) => e.type !== 'render'),
    [{ type: 'toast', key: 'error.not_found', kind: 'error' }, { type: 'navigate', hash: '#/' }]);
  r = apply(s, { type: 'page_failed', cid: 'c1', mode: 'latest', status: 0 });
  assert.deepEqual(effectTypes(r.effects), ['render']);
  assert.equal(apply(s, { type: 'page_failed', cid: 'c9', mode: 'latest' }).state, s);
  s = apply(r.state, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg('c1', 1)], has_more: true }).state;
  assert.equal(apply(s, { type: 'history_complete', cid: 'c1' }).state.msgs.get('c1').hasMore, false);
});

test('edits, recalls and reactions replace a held message and its preview', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg('c1', 1)], has_more: false }).state;
  s = apply(s, { type: 'event', event: { kind: 'message_deleted', conversation_id: 'c1', message: msg('c1', 1, { deleted: true, body: '' }) } }).state;
  assert.equal(msgStore(s, 'c1').bySeq.get(1).deleted, true);
  assert.equal(s.previews.get('c1').deleted, true);
  // A change to a message not held is ignored (it comes with its page).
  s = apply(s, { type: 'message_updated', message: msg('c1', 7, { body: 'not held' }) }).state;
  assert.equal(msgStore(s, 'c1').bySeq.has(7), false);
  assert.equal(apply(s, { type: 'message_updated', message: null }).state, s);
  assert.equal(apply(s, { type: 'event', event: { kind: 'reaction', conversation_id: 'c1' } }).state, s);
});

// A reaction event carries the change only (issue 13, item 3), not the message.
const reaction = (seq, emoji, uid, added, count) => ({ type: 'event', event: {
  kind: 'reaction', conversation_id: 'c1', seq, emoji, user_id: uid, added, count } });

test('a reaction event applies its change to the held message and the preview', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg('c1', 1), msg('c1', 2)], has_more: false }).state;
  const r = apply(s, reaction(2, '👍', 'u2', true, 1));
  assert.deepEqual(effectTypes(r.effects), ['render']);
  s = r.state;
  s = apply(s, reaction(2, '👍', 'u1', true, 2)).state;
  s = apply(s, reaction(1, '🎉', 'u1', true, 1)).state;
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(2).reactions, { '👍': ['u2', 'u1'] });
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(1).reactions, { '🎉': ['u1'] });
  assert.deepEqual(s.previews.get('c1').reactions, { '👍': ['u2', 'u1'] });
  assert.equal(msgStore(s, 'c1').bySeq.get(2).body, 'body 2', 'the rest of the message is kept');
  // the same change again changes nothing; taking back removes the user, then the emoji
  assert.equal(apply(s, reaction(2, '👍', 'u1', true, 2)).state.msgs.get('c1').bySeq.get(2), msgStore(s, 'c1').bySeq.get(2));
  s = apply(s, reaction(2, '👍', 'u2', false, 1)).state;
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(2).reactions, { '👍': ['u1'] });
  s = apply(s, reaction(2, '👍', 'u1', false, 0)).state;
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(2).reactions, {});
  // a change to a message not held (and no page on its way) waits for nothing
  assert.equal(apply(s, reaction(9, '👍', 'u2', true, 1)).state.msgs.get('c1').bySeq.has(9), false);
});

test('reactions that come while the first page loads are applied to the page', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  s = apply(s, reaction(1, '👍', 'u2', true, 1)).state;
  s = apply(s, reaction(1, '🎉', 'u2', true, 1)).state;
  s = apply(s, reaction(1, '🎉', 'u2', false, 0)).state;
  s = apply(s, reaction(2, '👀', 'u1', true, 1)).state;
  // the page was read after the first change (it has it) and before the others
  const page = [msg('c1', 1, { reactions: { '👍': ['u2'] } }), msg('c1', 2)];
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: page, has_more: false }).state;
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(1).reactions, { '👍': ['u2'] });
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(2).reactions, { '👀': ['u1'] });
  assert.deepEqual(s.previews.get('c1').reactions, { '👀': ['u1'] });
  assert.equal(msgStore(s, 'c1').pendingReactions, null);
});

test('read events: mine move my counters, others\' move their receipts', () => {
  let s = world([conv('c1', { last_seq: 5, read_seq: 1 })]);
  assert.equal(s.convs.get('c1').unread, 4);
  s = apply(s, { type: 'detail_loaded', conversation: { ...conv('c1', { last_seq: 5 }), members: [{ user_id: 'u1', read_seq: 1 }, { user_id: 'u2', read_seq: 0 }] } }).state;
  s = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u1', seq: 5 } }).state;
  assert.equal(s.convs.get('c1').unread, 0);
  s = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u2', seq: 4 } }).state;
  assert.equal(s.details.get('c1').members.find((m) => m.user_id === 'u2').read_seq, 4);
  // a position moved back (POST …/unread) is the position now: events come in order
  s = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u2', seq: 2 } }).state;
  assert.equal(s.details.get('c1').members.find((m) => m.user_id === 'u2').read_seq, 2, 'marked unread');
  const r = apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u1', seq: 3 } });
  assert.deepEqual([r.state.convs.get('c1').read_seq, r.state.convs.get('c1').unread], [3, 2]);
  assert.ok(r.effects.some((e) => e.type === 'refresh_conversations'), 'mention counts from the server');
  assert.equal(apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c9', user_id: 'u1', seq: 1 } }).state, s);
  assert.equal(apply(s, { type: 'event', event: { kind: 'read', conversation_id: 'c1', user_id: 'u7', seq: 1 } }).state, s);
});

test('read_up_to marks the open conversation read and posts the position once', () => {
  let s = world([conv('c1', { last_seq: 3, read_seq: 0, unread_mentions: 1 })]);
  const r = apply(s, { type: 'read_up_to', cid: 'c1', seq: 3 });
  s = r.state;
  assert.deepEqual([s.convs.get('c1').read_seq, s.convs.get('c1').unread, s.convs.get('c1').unread_mentions], [3, 0, 0]);
  assert.deepEqual(r.effects.filter((e) => e.type === 'post_read'), [{ type: 'post_read', cid: 'c1', seq: 3 }]);
  assert.equal(apply(s, { type: 'read_up_to', cid: 'c1', seq: 3 }).state, s);
  assert.equal(apply(s, { type: 'read_up_to', cid: 'c9', seq: 3 }).state, s);
});

test('being removed from the open conversation toasts, navigates home and forgets it', () => {
  let s = world([conv('c1'), conv('c2')]);
  s = apply(s, { type: 'routed', section: 'c', arg: 'c1' }).state;
  let r = apply(s, { type: 'event', event: { kind: 'member_removed', conversation_id: 'c1', user_id: 'u1' } });
  assert.equal(r.state.convs.has('c1'), false);
  assert.deepEqual(r.effects.filter((e) => e.type !== 'render'), [
    { type: 'forget_history', cid: 'c1' }, { type: 'toast', key: 'conversation.removed' }, { type: 'navigate', hash: '#/' }]);
  r = apply(s, { type: 'event', event: { kind: 'member_removed', conversation_id: 'c2', user_id: 'u1' } });
  assert.deepEqual(r.effects.filter((e) => e.type !== 'render'), [{ type: 'forget_history', cid: 'c2' }]);
  // Someone else removed: the member list and count shrink.
  s = apply(s, { type: 'conversation_upserted', conversation: conv('c2', { member_count: 2 }) }).state;
  s = apply(s, { type: 'detail_loaded', conversation: { ...conv('c2'), members: [{ user_id: 'u1' }, { user_id: 'u2' }] } }).state;
  s = apply(s, { type: 'event', event: { kind: 'member_removed', conversation_id: 'c2', user_id: 'u2' } }).state;
  assert.deepEqual(s.details.get('c2').members, [{ user_id: 'u1' }]);
  assert.equal(s.convs.get('c2').member_count, 1);
  assert.equal(apply(s, { type: 'event', event: { kind: 'member_removed', conversation_id: 'c7', user_id: 'u2' } }).state, s);
  s = apply(s, { type: 'conversation_left', cid: 'c2' }).state;
  assert.equal(s.convs.has('c2'), false);
});

test('membership and conversation events keep the list and the details current', () => {
  let s = world([conv('c1')]);
  let r = apply(s, { type: 'event', event: { kind: 'member_added', conversation_id: 'c5', user_ids: ['u1'],
    conversation: { id: 'c5', kind: 'direct', last_seq: 0 } } });
  assert.ok(r.state.convs.has('c5'));
  assert.deepEqual(r.effects.filter((e) => e.type !== 'render'),
    [{ type: 'load_detail', cid: 'c5' }, { type: 'refresh_conversations' }]);
  s = apply(r.state, { type: 'detail_loaded', conversation: { ...conv('c1'), members: [{ user_id: 'u1' }] } }).state;
  r = apply(s, { type: 'event', event: { kind: 'member_added', conversation_id: 'c1', user_ids: ['u3'], conversation: conv('c1', { member_count: 2 }) } });
  assert.equal(r.state.convs.get('c1').member_count, 2);
  assert.deepEqual(r.effects.filter((e) => e.type === 'load_detail'), [{ type: 'load_detail', cid: 'c1' }]);
  r = apply(s, { type: 'event', event: { kind: 'member_added', conversation_id: 'c8', user_ids: ['u3'] } });
  assert.equal(r.state, s, 'not ours, not known: nothing');
  r = apply(s, { type: 'event', event: { kind: 'conversation_created', conversation: conv('c6') } });
  assert.ok(r.state.convs.has('c6'));
  assert.ok(effectTypes(r.effects).includes('refresh_conversations'));
  r = apply(s, { type: 'event', event: { kind: 'conversation_updated', conversation: { id: 'c1', topic: 'T' } } });
  assert.equal(r.state.convs.get('c1').topic, 'T');
  assert.equal(r.state.details.get('c1').topic, 'T');
  assert.deepEqual(r.state.details.get('c1').members, [{ user_id: 'u1' }]);
  assert.equal(apply(s, { type: 'event', event: { kind: 'conversation_updated' } }).state, s);
  assert.equal(apply(s, { type: 'event', event: { kind: 'something_new' } }).state, s);
  assert.equal(apply(s, { type: 'event' }).state, s);
});

test('details bring unknown users and presence to load', () => {
  const s = world([conv('c1', { kind: 'channel' })]);
  const members = Array.from({ length: 120 }, (_, i) => ({ user_id: `x${i}` }));
  let r = apply(s, { type: 'detail_loaded', conversation: { ...conv('c1', { kind: 'channel' }), members } });
  assert.equal(r.effects.find((e) => e.type === 'load_users').ids.length, 50);
  assert.equal(r.effects.find((e) => e.type === 'load_presence'), undefined, 'no presence for a big channel');
  r = apply(s, { type: 'detail_loaded', conversation: { ...conv('c2'), members: [{ user_id: 'u1' }, { user_id: 'u2' }] } });
  assert.deepEqual(r.effects.find((e) => e.type === 'load_presence'), { type: 'load_presence', ids: ['u2'] });
  assert.equal(r.effects.find((e) => e.type === 'load_users'), undefined);
  let t = apply(r.state, { type: 'users_loaded', users: [{ id: 'u3', username: 'cy' }] }).state;
  assert.equal(displayName(t, 'u3'), 'cy');
  assert.equal(apply(t, { type: 'users_loaded', users: [] }).state, t);
  t = apply(t, { type: 'presence_loaded', presence: { u2: 'away' } }).state;
  assert.equal(t.presence.get('u2'), 'away');
});

test('a refresh merges the server\'s counters and drops conversations we left', () => {
  let s = world([conv('c1', { last_seq: 4, read_seq: 4, kind: 'channel' }), conv('c2')]);
  const r = apply(s, { type: 'conversations_refreshed', conversations: [
    conv('c1', { last_seq: 6, read_seq: 4, unread_mentions: 2, kind: 'channel' }), conv('c3', { kind: 'direct' })] });
  s = r.state;
  assert.deepEqual([...s.convs.keys()], ['c1', 'c3']);
  assert.deepEqual([s.convs.get('c1').unread, s.convs.get('c1').unread_mentions], [2, 2]);
  assert.deepEqual(r.effects.filter((e) => e.type === 'load_detail'), [{ type: 'load_detail', cid: 'c3' }]);
});

test('normalizeConv never moves positions back', () => {
  const old = normalizeConv(conv('c1', { last_seq: 9, read_seq: 7, last_activity_at: '2026-02-01T00:00:00Z', role: 'owner' }));
  const merged = normalizeConv({ id: 'c1', last_seq: 3, read_seq: 2, last_activity_at: '2026-01-01T00:00:00Z' }, old);
  assert.deepEqual([merged.last_seq, merged.read_seq, merged.unread, merged.role], [9, 7, 2, 'owner']);
  assert.equal(merged.last_activity_at, '2026-02-01T00:00:00Z');
  assert.equal(normalizeConv({ id: 'c', last_seq: 3 }).unread, 0, 'no read_seq: all read');
});

test('typing shows for a while, never for oneself, and a message ends it', () => {
  let s = world();
  const r = apply(s, { type: 'typing', conversation_id: 'c1', user_id: 'u2', now: 1000 });
  s = r.state;
  assert.deepEqual(typingUsers(s, 'c1', 1000 + TYPING_SHOW_MS - 1), ['u2']);
  assert.deepEqual(typingUsers(s, 'c1', 1000 + TYPING_SHOW_MS), []);
  assert.deepEqual(typingUsers(s, 'c9', 0), []);
  assert.deepEqual(r.effects.find((e) => e.type === 'render_later'), { type: 'render_later', delay: TYPING_SHOW_MS + 50, parts: ['typing', 'list'] });
  assert.equal(apply(s, { type: 'typing', conversation_id: 'c1', user_id: 'u1', now: 1 }).state, s);
  s = apply(s, { type: 'event', event: { kind: 'message', conversation_id: 'c1', message: msg('c1', 1) } }).state;
  assert.deepEqual(typingUsers(s, 'c1', 1000), []);
});

test('routing opens a conversation, remembers where unread began, and guards admin', () => {
  let s = world([conv('c1', { last_seq: 5, read_seq: 2 })]);
  s = apply(s, { type: 'edit_started', message: msg('c1', 1) }).state;
  s = apply(s, { type: 'routed', section: 'c', arg: 'c1' }).state;
  assert.deepEqual([s.view, s.cid, s.editing, s.firstUnread.get('c1')], ['chat', 'c1', null, 2]);
  assert.equal(unreadTotal(s), 0, 'the open conversation shows no unread');
  const same = apply({ ...s, firstUnread: new Map() }, { type: 'routed', section: 'c', arg: 'c1' }).state;
  assert.equal(same.firstUnread.size, 0, 'the same conversation again keeps its divider');
  s = apply(s, { type: 'routed', section: 'admin', arg: 'departments' }).state;
  assert.equal(s.view, 'home', 'members do not get the admin pages');
  const admin = apply({ ...s, me: { ...ME, role: 'admin' } }, { type: 'routed', section: 'admin', arg: 'departments' }).state;
  assert.deepEqual([admin.view, admin.adminTab], ['admin', 'departments']);
  assert.equal(apply(admin, { type: 'routed', section: 'admin' }).state.adminTab, 'users');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'sso' }).state.adminTab, 'sso');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'nonsense' }).state.adminTab, 'users');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'identity' }).state.adminTab, 'identity');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'nope' }).state.adminTab, 'users');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'jobs' }).state.adminTab, 'jobs');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'scim' }).state.adminTab, 'scim');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'webhooks' }).state.adminTab, 'webhooks');
  assert.equal(apply(s, { type: 'routed', section: 'channels' }).state.view, 'channels');
  const dir = apply(s, { type: 'routed', section: 'directory', arg: '', arg2: 'd1' }).state;
  assert.deepEqual([dir.view, dir.viewArg, dir.cid], ['directory', 'd1', null]);
});

test('UI actions: filter, members panel, picker, action bar, edit and reply', () => {
  let s = world([conv('b', { name: 'Beta', last_activity_at: '2026-01-02T00:00:00Z' }), conv('a', { name: 'Alpha' })]);
  const title = (c) => c.name;
  assert.deepEqual(sortedConversations(s, title).map((c) => c.id), ['b', 'a']);
  s = apply(s, { type: 'filter_changed', filter: ' alp ' }).state;
  assert.deepEqual(sortedConversations(s, title).map((c) => c.id), ['a']);
  s = apply(s, { type: 'members_toggled' }).state;
  assert.equal(s.membersOpen, true);
  s = apply(s, { type: 'members_toggled', open: false }).state;
  assert.equal(s.membersOpen, false);
  s = apply(s, { type: 'picker_toggled', key: 's-1' }).state;
  assert.equal(s.pickerFor, 's-1');
  assert.equal(apply(s, { type: 'picker_toggled', key: 's-1' }).state.pickerFor, null);
  s = apply(s, { type: 'picker_closed' }).state;
  assert.equal(s.pickerFor, null);
  assert.equal(apply(s, { type: 'picker_closed' }).state, s);
  s = apply(s, { type: 'actions_toggled', key: 's-2' }).state;
  assert.equal(s.actionsFor, 's-2');
  s = apply(s, { type: 'edit_started', message: msg('a', 2, { body: 'old' }) }).state;
  assert.deepEqual([s.editing, s.actionsFor], [{ cid: 'a', seq: 2, text: 'old' }, null]);
  s = apply(s, { type: 'edit_changed', text: 'new' }).state;
  assert.equal(s.editing.text, 'new');
  s = apply(s, { type: 'edit_ended' }).state;
  assert.equal(s.editing, null);
  assert.equal(apply(s, { type: 'edit_changed', text: 'x' }).state, s);
  s = apply(s, { type: 'reply_started', message: msg('a', 2) }).state;
  assert.equal(s.replyTo.get('a'), 2);
  s = apply(s, { type: 'reply_cleared', cid: 'a' }).state;
  assert.equal(s.replyTo.has('a'), false);
  assert.equal(apply(s, { type: 'reply_cleared', cid: 'a' }).state, s);
});

test('status, booting and selectors', () => {
  let s = apply(initialState(), { type: 'signed_in', user: { ...ME, role: 'owner' } }).state;
  assert.equal(s.status, 'connecting');
  let r = apply(s, { type: 'status', status: 'online' });
  assert.deepEqual(r.effects, [{ type: 'render', parts: ['banner'] }]);
  assert.equal(apply(r.state, { type: 'status', status: 'online' }).state, r.state);
  s = apply(r.state, { type: 'initial_loaded', conversations: [conv('d', { kind: 'direct' })] }).state;
  s = apply(s, { type: 'booted' }).state;
  assert.equal(s.booted, true);
  assert.equal(apply(s, { type: 'unbooted' }).state.booted, false);
  assert.equal(directPeer(s, 'd'), null);
  s = apply(s, { type: 'detail_loaded', conversation: { ...conv('d', { kind: 'direct' }), members: [{ user_id: 'u1' }, { user_id: 'u2' }] } }).state;
  assert.equal(directPeer(s, 'd'), 'u2');
  assert.equal(displayName(s, 'nobody'), null);
  assert.equal(canModerate(s, null), true, 'an owner moderates everything');
  const member = { ...s, me: ME };
  assert.equal(canModerate(member, { role: 'owner' }), true);
  assert.equal(canModerate(member, { role: 'member' }), false);
});

test('preview_loaded keeps the newest message per conversation', () => {
  let s = world();
  let r = apply(s, { type: 'preview_loaded', message: msg('c1', 4) });
  s = r.state;
  assert.equal(s.previews.get('c1').seq, 4);
  assert.deepEqual(r.effects, [{ type: 'render', parts: ['list'] }]);
  r = apply(s, { type: 'preview_loaded', message: msg('c1', 2) });
  assert.equal(r.state, s, 'an older message is no preview');
});

test('stale state + events == a fresh load (list counters)', () => {
  // A server's view of one conversation, moved on by sends and reads; the client got the
  // list at the start and then only the events.
  const server = { last_seq: 3, read_seq: 1, mentions: new Set([2]) };
  const fresh = () => conv('c1', { last_seq: server.last_seq, read_seq: server.read_seq,
    unread_mentions: [...server.mentions].filter((seq) => seq > server.read_seq).length });
  let s = world([fresh()]);
  const events = [];
  const send = (sender, mention) => {
    server.last_seq += 1;
    if (sender === 'u1') server.read_seq = server.last_seq;
    if (mention) server.mentions.add(server.last_seq);
    events.push({ kind: 'message', conversation_id: 'c1',
      message: msg('c1', server.last_seq, { sender_id: sender, mentions: mention ? ['u1'] : [] }) });
  };
  const read = (seq) => {
    server.read_seq = Math.max(server.read_seq, seq);
    events.push({ kind: 'read', conversation_id: 'c1', user_id: 'u1', seq });
  };
  send('u2', true);
  send('u2', false);
  read(4);
  send('u2', true);
  send('u1', false);
  send('u2', true);
  send('u2', false);
  for (const event of events) s = apply(s, { type: 'event', event }).state;
  const loaded = world([fresh()]);
  const pick = (st) => {
    const c = st.convs.get('c1');
    return [c.last_seq, c.read_seq, c.unread, c.unread_mentions];
  };
  assert.deepEqual(pick(s), pick(loaded));
  assert.deepEqual(pick(s), [9, 7, 2, 1]);
});

const COMMANDS = [
  { name: 'deploy', description: 'deploy', usage: '[svc]' },
  { name: 'dice' },
  { name: 'off', disabled: true },
];

test('a registered /command is parsed; anything else is a message', () => {
  assert.deepEqual(parseCommand('/deploy api v2', COMMANDS), { command: 'deploy', text: 'api v2' });
  assert.deepEqual(parseCommand('  /DEPLOY\n  line two ', COMMANDS), { command: 'deploy', text: 'line two' });
  assert.deepEqual(parseCommand('/dice', COMMANDS), { command: 'dice', text: '' });
  for (const text of ['/unknown x', 'deploy now', '/off', '/ deploy', '//deploy', 'a /deploy']) {
    assert.equal(parseCommand(text, COMMANDS), null, text);
  }
  assert.equal(parseCommand('/deploy', []), null);
});

test('the composer offers the commands that start with what is typed', () => {
  assert.deepEqual(commandMatches(COMMANDS, '/').map((c) => c.name), ['deploy', 'dice']);
  assert.deepEqual(commandMatches(COMMANDS, '/de').map((c) => c.name), ['deploy']);
  assert.deepEqual(commandMatches(COMMANDS, '/o'), []); // disabled
  assert.deepEqual(commandMatches(COMMANDS, '/deploy x'), []); // arguments started
  assert.deepEqual(commandMatches(COMMANDS, 'de'), []);
});

test('ephemeral replies are kept per conversation, bounded, and dismissed', () => {
  let s = world();
  const frame = (i) => ({ type: 'ephemeral', conversation_id: 'c1', body: `only you ${i}`, at: `2026-01-01T00:00:0${i % 10}Z`,
    command: 'deploy', invocation_id: `i${i}`, sender: { id: 'b1', username: 'cmd.x', display_name: '/deploy', bot: true } });
  const r = apply(s, { type: 'ephemeral', frame: frame(1) });
  assert.deepEqual(effectTypes(r.effects), ['render']);
  s = r.state;
  const [e] = s.ephemeral.get('c1');
  assert.equal(e.body, 'only you 1');
  assert.equal(e.sender_id, 'b1');
  assert.equal(displayName(s, 'b1'), '/deploy'); // the sender is known for its name
  assert.equal(s.msgs.get('c1'), undefined); // nothing is stored as a message
  for (let i = 2; i <= EPHEMERAL_KEPT + 5; i += 1) s = apply(s, { type: 'ephemeral', frame: frame(i) }).state;
  assert.equal(s.ephemeral.get('c1').length, EPHEMERAL_KEPT);
  assert.equal(s.ephemeral.get('c1')[0].body, 'only you 6');
  const key = s.ephemeral.get('c1')[0].key;
  s = apply(s, { type: 'ephemeral_dismissed', cid: 'c1', key }).state;
  assert.equal(s.ephemeral.get('c1').length, EPHEMERAL_KEPT - 1);
  assert.equal(apply(s, { type: 'ephemeral', frame: { type: 'ephemeral' } }).state, s); // no conversation
});

test('the admin page has an integrations tab', () => {
  const admin = apply(initialState(), { type: 'signed_in', user: { ...ME, role: 'admin' } }).state;
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'integrations' }).state.adminTab, 'integrations');
  assert.equal(apply(admin, { type: 'routed', section: 'admin', arg: 'nope' }).state.adminTab, 'users');
});

test('user_updated replaces the user held; on the own copy the preferences come into force', () => {
  let s = world();
  const bob = { id: 'u2', username: 'bob', display_name: 'Bob Chen', status: { text: 'Away', emoji: '🌴', until: null } };
  let r = apply(s, { type: 'event', event: { kind: 'user_updated', conversation_id: 'c1', user: bob } });
  assert.equal(r.state.users.get('u2').display_name, 'Bob Chen');
  assert.deepEqual(r.state.users.get('u2').status, bob.status);
  assert.equal(displayName(r.state, 'u2'), 'Bob Chen');
  assert.ok(!effectTypes(r.effects).includes('apply_preferences'));
  // the same event twice: the same state (one copy per shared conversation)
  const again = apply(r.state, { type: 'event', event: { kind: 'user_updated', conversation_id: 'c2', user: bob } });
  assert.deepEqual(snapshot(again.state.users), snapshot(r.state.users));
  s = r.state;
  const prefs = { language: 'zh-CN', time_zone: 'Asia/Shanghai', theme: 'dark' };
  r = apply(s, { type: 'event', event: { kind: 'user_updated', conversation_id: null,
    user: { ...ME, display_name: 'Alice Lee', status: null }, preferences: prefs } });
  assert.equal(r.state.me.display_name, 'Alice Lee');
  assert.deepEqual(r.effects.find((e) => e.type === 'apply_preferences'), { type: 'apply_preferences', preferences: prefs });
  assert.equal(apply(s, { type: 'event', event: { kind: 'user_updated', user: null } }).state, s);
});

test('member_role_changed updates the member list and the caller\'s own role; who may post', () => {
  let s = world([conv('c1', { role: 'member', announcement: true })]);
  s = apply(s, { type: 'detail_loaded', conversation: { ...conv('c1'), members: [{ user_id: 'u1', role: 'member' }, { user_id: 'u2', role: 'owner' }] } }).state;
  assert.equal(mayPost(s, s.convs.get('c1')), false, 'a plain member of an announcement channel');
  let r = apply(s, { type: 'event', event: { kind: 'member_role_changed', conversation_id: 'c1', user_id: 'u1', role: 'moderator', by: 'u2' } });
  assert.equal(r.state.convs.get('c1').role, 'moderator');
  assert.deepEqual(r.state.details.get('c1').members.map((m) => m.role), ['moderator', 'owner']);
  assert.equal(mayPost(r.state, r.state.convs.get('c1')), true, 'a moderator posts');
  assert.equal(canModerate(r.state, r.state.convs.get('c1')), true);
  assert.equal(canManage(r.state, r.state.convs.get('c1')), false, 'a moderator does not manage');
  assert.ok(r.effects.some((e) => e.type === 'render' && e.parts.includes('members')));
  r = apply(s, { type: 'event', event: { kind: 'member_role_changed', conversation_id: 'c1', user_id: 'u2', role: 'member' } });
  assert.equal(r.state.convs.get('c1').role, 'member', 'someone else\'s role leaves mine');
  assert.equal(r.state.details.get('c1').members[1].role, 'member');
  assert.equal(apply(s, { type: 'event', event: { kind: 'member_role_changed', conversation_id: 'c1' } }).state, s);
  assert.equal(mayPost(s, conv('c2')), true, 'no announcement: anyone posts');
});

test('pin events count per conversation, so that an open pins panel reloads', () => {
  const s = world([conv('c1')]);
  let r = apply(s, { type: 'event', event: { kind: 'message_pinned', conversation_id: 'c1', seq: 1, by: 'u2' } });
  assert.equal(r.state.pinsVersion.get('c1'), 1);
  r = apply(r.state, { type: 'event', event: { kind: 'message_unpinned', conversation_id: 'c1', seq: 1, by: 'u2' } });
  assert.equal(r.state.pinsVersion.get('c1'), 2);
  assert.equal(s.pinsVersion.get('c1'), undefined, 'the state given is not changed');
  assert.equal(apply(s, { type: 'event', event: { kind: 'message_pinned' } }).state, s);
});

test('my saved messages: loaded from GET /saved, then kept by message_saved / message_unsaved', () => {
  const s = world([conv('c1')]);
  let r = apply(s, { type: 'saved_loaded', saved: [{ conversation_id: 'c1', seq: 2 }] });
  assert.equal(isSaved(r.state, 'c1', 2), true);
  assert.equal(isSaved(r.state, 'c1', 3), false);
  const before = r.state.savedVersion;
  r = apply(r.state, { type: 'event', event: { kind: 'message_saved', conversation_id: 'c1', seq: 3, user_id: 'u1' } });
  assert.equal(isSaved(r.state, 'c1', 3), true);
  assert.equal(r.state.savedVersion, before + 1, 'an open saved panel reloads');
  assert.ok(r.effects.some((e) => e.type === 'render' && e.parts.includes('messages')));
  r = apply(r.state, { type: 'event', event: { kind: 'message_unsaved', conversation_id: 'c1', seq: 2, user_id: 'u1' } });
  assert.equal(isSaved(r.state, 'c1', 2), false);
  assert.equal(isSaved(s, 'c1', 2), false, 'the state given is not changed');
  assert.equal(apply(s, { type: 'event', event: { kind: 'message_saved' } }).state, s);
});

test('marked unread: the counters move back and the open conversation is not read again until left', () => {
  let s = world([conv('c1', { last_seq: 5, read_seq: 5 }), conv('c2', { last_seq: 1, read_seq: 1 })]);
  s = apply(s, { type: 'routed', section: 'c', arg: 'c1' }).state;
  let r = apply(s, { type: 'marked_unread', cid: 'c1', read_seq: 2, unread: 3 });
  s = r.state;
  assert.deepEqual([s.convs.get('c1').read_seq, s.convs.get('c1').unread], [2, 3]);
  assert.equal(s.firstUnread.get('c1'), 2, 'the divider above the first unread message');
  assert.equal(apply(s, { type: 'read_up_to', cid: 'c1', seq: 5 }).state, s, 'held while it stays open');
  s = apply(s, { type: 'routed', section: 'c', arg: 'c2' }).state;
  assert.equal(s.readHold, null);
  s = apply(s, { type: 'routed', section: 'c', arg: 'c1' }).state;
  r = apply(s, { type: 'read_up_to', cid: 'c1', seq: 5 });
  assert.equal(r.state.convs.get('c1').unread, 0, 'opened again: read as usual');
  assert.equal(apply(s, { type: 'marked_unread', cid: 'c9', read_seq: 0 }).state, s);
});
