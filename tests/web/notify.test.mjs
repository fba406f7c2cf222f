// The browser's notification policy (src/tidings/web/notify.js), the mirror of the
// server's core/notify.py: the same rules, the same cases as tests/unit/core/test_notify.py
// (levels and defaults, own messages, mute until a time, do not disturb until a time and
// by a daily schedule across midnight and in time zones, @all/@channel/@here); the
// reducer's notification settings events; the title badge; the @all confirmation.
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  badgeTitle, defaultLevel, dndActive, everyoneMention, isMentioned, localMinutes, mutedAt,
  needsEveryoneConfirm, scheduleCovers, shouldNotify,
} from '../../src/tidings/web/notify.js';
import { apply, applyAll, initialState } from '../../src/tidings/web/state.js';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const H = 3600e3;
const notify = (o = {}) => shouldNotify({ dnd: null, zone: 'UTC', member: null, kind: 'group', mentioned: false,
  own: false, now: NOW, ...o });
const iso = (ms) => new Date(ms).toISOString();

test('defaults: all in direct and group conversations, mentions in channels', () => {
  assert.equal(defaultLevel('direct'), 'all');
  assert.equal(defaultLevel('group'), 'all');
  assert.equal(defaultLevel('channel'), 'mentions');
  assert.equal(notify({ kind: 'direct' }), true);
  assert.equal(notify({ kind: 'channel' }), false);
  assert.equal(notify({ kind: 'channel', mentioned: true }), true);
  assert.equal(notify({ member: { level: null, muted: false, muted_until: null }, kind: 'channel' }), false);
});

test('own messages never notify; the levels', () => {
  assert.equal(notify({ own: true, mentioned: true, member: { level: 'all' } }), false);
  for (const kind of ['direct', 'group', 'channel']) {
    assert.equal(notify({ kind, member: { level: 'all' } }), true);
    assert.equal(notify({ kind, member: { level: 'mentions' } }), false);
    assert.equal(notify({ kind, member: { level: 'mentions' }, mentioned: true }), true);
    assert.equal(notify({ kind, member: { level: 'none' }, mentioned: true }), false);
  }
});

test('a mute silences everything until its time (the end is not muted)', () => {
  const forever = { level: 'all', muted: true, muted_until: null };
  assert.equal(mutedAt(forever, NOW + 3650 * 24 * H), true);
  assert.equal(notify({ member: forever, mentioned: true }), false);
  const until = { level: null, muted: true, muted_until: iso(NOW + H) };
  assert.equal(notify({ member: until, now: NOW + H - 1000 }), false);
  assert.equal(notify({ member: until, now: NOW + H }), true);
  assert.equal(notify({ member: { muted: false, muted_until: iso(NOW + H) } }), true);
});

test('do not disturb until a time', () => {
  const dnd = { until: iso(NOW + 30 * 60e3), schedule: null };
  assert.equal(dndActive(dnd, 'UTC', NOW), true);
  assert.equal(notify({ dnd, kind: 'direct', mentioned: true }), false);
  assert.equal(dndActive(dnd, 'UTC', NOW + 30 * 60e3), false);
  assert.equal(dndActive({ until: iso(NOW - 1000), schedule: null }, 'UTC', NOW), false);
  assert.equal(dndActive(null, 'UTC', NOW), false);
});

test('a schedule within a day, and across midnight', () => {
  const lunch = { start: '12:00', end: '13:30' };
  assert.deepEqual([11 * 60 + 59, 12 * 60, 13 * 60 + 29, 13 * 60 + 30].map((m) => scheduleCovers(lunch, m)),
    [false, true, true, false]);
  const night = { start: '22:00', end: '07:00' };
  const at = (d, h, m) => Date.parse(`2026-12-0${d}T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:30Z`);
  for (const [d, h, m, on] of [[3, 21, 59, false], [3, 22, 0, true], [3, 23, 59, true], [4, 0, 0, true],
    [4, 6, 59, true], [4, 7, 0, false], [4, 12, 0, false]]) {
    assert.equal(dndActive({ schedule: night }, 'UTC', at(d, h, m)), on, `${d} ${h}:${m}`);
  }
  assert.equal(scheduleCovers({ start: '22:00', end: '22:00' }, 22 * 60), false); // refused by the server
  assert.equal(scheduleCovers({ start: '7:00', end: '08:00' }, 7 * 60 + 30), false); // malformed: none
});

test('the schedule follows the time zone, summer time included', () => {
  const night = { schedule: { start: '22:00', end: '07:00' } };
  const utc1430 = Date.parse('2026-12-03T14:30:00Z'); // 22:30 in Shanghai, 09:30 in New York
  assert.equal(localMinutes(utc1430, 'Asia/Shanghai'), 22 * 60 + 30);
  assert.equal(dndActive(night, 'Asia/Shanghai', utc1430), true);
  assert.equal(dndActive(night, 'America/New_York', utc1430), false);
  assert.equal(notify({ dnd: night, zone: 'Asia/Shanghai', now: utc1430 }), false);
  assert.equal(notify({ dnd: night, zone: 'America/New_York', now: utc1430 }), true);
  const july = Date.parse('2026-07-01T02:00:00Z'); // 22:00 EDT
  assert.equal(dndActive(night, 'America/New_York', july), true);
  assert.equal(dndActive(night, 'America/New_York', july - 60e3), false);
  // an unknown zone: the device's, never an exception
  assert.equal(typeof localMinutes(utc1430, 'Mars/Olympus_Mons'), 'number');
});

test('mentions: by name, everyone, and @here while online', () => {
  assert.equal(isMentioned('u1', { mentions: ['u1'] }), true);
  assert.equal(isMentioned('u1', { mentions: ['u2'] }), false);
  assert.equal(isMentioned('u1', { mentions: [], mentions_everyone: 'all' }, false), true);
  assert.equal(isMentioned('u1', { mentions: [], mentions_everyone: 'channel' }, false), true);
  assert.equal(isMentioned('u1', { mentions: [], mentions_everyone: 'here' }, true), true);
  assert.equal(isMentioned('u1', { mentions: [], mentions_everyone: 'here' }, false), false);
});

test('@all / @channel / @here are parsed as the server does, and confirmed above the limit', () => {
  assert.equal(everyoneMention('@all hi'), 'all');
  assert.equal(everyoneMention('hi @Channel.'), 'channel');
  assert.equal(everyoneMention('请@here看一下'), 'here');
  assert.equal(everyoneMention('@here and @all'), 'all');
  for (const none of ['all hands', 'a@all.com', '@allison', '@@all', '@here_now', '']) {
    assert.equal(everyoneMention(none), null, none);
  }
  assert.equal(needsEveryoneConfirm('@all standup', 11, 10), 'all');
  assert.equal(needsEveryoneConfirm('@all standup', 10, 10), null);
  assert.equal(needsEveryoneConfirm('standup', 500, 10), null);
  assert.equal(needsEveryoneConfirm('@here', 2, 0), 'here'); // 0: always asked
});

test('the title badge', () => {
  assert.equal(badgeTitle(0, 'Tidings'), 'Tidings');
  assert.equal(badgeTitle(3, 'Tidings'), '(3) Tidings');
  assert.equal(badgeTitle(120, 'Tidings'), '(99+) Tidings');
});

const ME = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'member' };
const chan = { id: 'c1', kind: 'channel', name: 'news', last_seq: 1, read_seq: 1, last_activity_at: '2026-01-01T00:00:00Z',
  notifications: { level: null, muted: false, muted_until: null } };
const event = (ev) => ({ type: 'event', event: { conversation_id: 'c1', at: '2026-01-01T00:01:00Z', ...ev } });

test('the reducer keeps my settings from their events, and asks about new messages', () => {
  let { state } = applyAll(initialState(), [
    { type: 'signed_in', user: ME },
    { type: 'initial_loaded', conversations: [chan], users: [] },
    { type: 'booted' },
    { type: 'notify_prefs_loaded', prefs: { dnd: { until: null, schedule: null }, time_zone: 'Asia/Shanghai',
      mention_all: { confirm_members: 10 } } },
  ]);
  const muted = { level: 'all', muted: true, muted_until: '2026-01-02T00:00:00Z' };
  state = apply(state, event({ kind: 'notifications_updated', user_id: 'u1', notifications: muted })).state;
  assert.deepEqual(state.convs.get('c1').notifications, muted);
  // someone else's (never sent to me, but ignored if it were)
  const still = apply(state, event({ kind: 'notifications_updated', user_id: 'u2', notifications: {} })).state;
  assert.deepEqual(still.convs.get('c1').notifications, muted);
  // a conversation_updated carries no settings: they stay
  state = apply(state, event({ kind: 'conversation_updated', conversation: { ...chan, notifications: undefined,
    name: 'renamed' } })).state;
  assert.deepEqual(state.convs.get('c1').notifications, muted);
  const dnd = { until: null, schedule: { start: '22:00', end: '07:00' } };
  state = apply(state, { type: 'event', event: { kind: 'dnd_updated', conversation_id: null, user_id: 'u1', dnd } }).state;
  assert.deepEqual(state.notifyPrefs.dnd, dnd);
  assert.equal(state.notifyPrefs.time_zone, 'Asia/Shanghai');
  // a new message from someone else: the shell is asked; my own: not
  const msg = (seq, sender) => ({ conversation_id: 'c1', seq, id: `m${seq}`, client_msg_id: `c${seq}`, sender_id: sender,
    body: '@all hi', mentions: [], mentions_everyone: 'all', created_at: '2026-01-01T00:02:00Z' });
  const theirs = apply(state, event({ kind: 'message', message: msg(2, 'u2') }));
  assert.deepEqual(theirs.effects.filter((e) => e.type === 'notify_message').map((e) => e.message.seq), [2]);
  const again = apply(theirs.state, event({ kind: 'message', message: msg(2, 'u2') })); // replayed: not new
  assert.equal(again.effects.filter((e) => e.type === 'notify_message').length, 0);
  const mine = apply(theirs.state, event({ kind: 'message', message: msg(3, 'u1') }));
  assert.equal(mine.effects.filter((e) => e.type === 'notify_message').length, 0);
  // the list's own answer after a PUT
  const back = apply(state, { type: 'conversation_notifications', cid: 'c1', notifications: chan.notifications }).state;
  assert.deepEqual(back.convs.get('c1').notifications, chan.notifications);
});

test('a message that mentions everyone shows @all like a mention of me', async () => {
  const { parseMarkdown } = await import('../../src/tidings/web/markdown.js');
  const alsoMe = new Set(['all', 'channel', 'here']);
  const nodes = parseMarkdown('@all standup, @bob', { me: 'alice', alsoMe, isMember: () => true });
  assert.deepEqual(nodes.filter((n) => n.type === 'mention').map((n) => [n.name, n.me]), [['all', true], ['bob', false]]);
  const plain = parseMarkdown('@all standup', { me: 'alice', isMember: () => true });
  assert.deepEqual(plain.filter((n) => n.type === 'mention').map((n) => n.me), [false]);
});
