// Unit tests of the web client's avatars (src/tidings/web/avatars.js) and of the
// reducer's `user_updated` carrying one (state.js): stale state + events == a fresh fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { avatarSrc, setAvatarFrom, AVATAR_TYPES } from '../../src/tidings/web/avatars.js';
import { apply, initialState } from '../../src/tidings/web/state.js';

const AV = { id: 'a1', updated_at: '2026-12-03T12:00:00Z', url: '/api/v1/users/u2/avatar/a1?size=256',
  small_url: '/api/v1/users/u2/avatar/a1?size=64' };

test('an avatar is drawn small but in the large size; none, or a foreign URL, is the initials', () => {
  assert.equal(avatarSrc({ id: 'u2', avatar: AV }, 'sm'), AV.small_url);
  assert.equal(avatarSrc({ id: 'u2', avatar: AV }, 'lg'), AV.url);
  assert.equal(avatarSrc({ id: 'u2', avatar: null }, 'sm'), null);
  assert.equal(avatarSrc(undefined, 'sm'), null);
  assert.equal(avatarSrc({ avatar: { ...AV, small_url: 'https://evil.example/x.png' } }, 'xs'), null);
  assert.equal(avatarSrc({ avatar: { ...AV, url: 'javascript:alert(1)' } }, 'lg'), null);
  assert.deepEqual(AVATAR_TYPES.split(','), ['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
});

test('setting an avatar asks again while the upload is processed, and gives up on other errors', async () => {
  const calls = [];
  const waits = [];
  let conflicts = 2;
  const api = {
    async put(path, body) {
      calls.push([path, body]);
      if (conflicts-- > 0) throw Object.assign(new Error('busy'), { code: 'conflict' });
      return { user: { id: 'u1', avatar: AV } };
    },
  };
  const res = await setAvatarFrom(api, 'f1', { wait: async (ms) => { waits.push(ms); } });
  assert.equal(res.user.avatar.id, 'a1');
  assert.deepEqual(calls, Array(3).fill(['/users/me/avatar', { file_id: 'f1' }]));
  assert.deepEqual(waits, [250, 500]);
  const refusing = { async put() { throw Object.assign(new Error('no'), { code: 'unsupported_media_type' }); } };
  await assert.rejects(setAvatarFrom(refusing, 'f2', { wait: async () => {} }), /no/);
  const stuck = { async put() { throw Object.assign(new Error('busy'), { code: 'conflict' }); } };
  await assert.rejects(setAvatarFrom(stuck, 'f3', { tries: 3, wait: async () => {} }), /busy/);
});

test('user_updated with an avatar, then without: the held user is the fresh one', () => {
  const bob = { id: 'u2', username: 'bob', display_name: 'Bob', status: null, avatar: null };
  let s = { ...initialState(), me: { id: 'u1', username: 'ann' } };
  s = apply(s, { type: 'users_loaded', users: [bob] }).state;
  const set = { ...bob, avatar: AV };
  s = apply(s, { type: 'event', event: { kind: 'user_updated', conversation_id: 'c1', user: set } }).state;
  assert.deepEqual(s.users.get('u2'), set);
  const removed = { ...bob, avatar: null };
  s = apply(s, { type: 'event', event: { kind: 'user_updated', conversation_id: 'c1', user: removed } }).state;
  assert.deepEqual(s.users.get('u2'), removed);
});
