// Unit tests of the web client's Web Push helpers (src/tidings/web/push.js) and of the
// service worker's copy of notificationFor (src/tidings/web/sw.js): the same answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

import { keyBytes, notificationFor } from '../../src/tidings/web/push.js';

test('keyBytes decodes base64url without padding', () => {
  assert.deepEqual([...keyBytes('BAEC_w')], [4, 1, 2, 255]);
  assert.deepEqual([...keyBytes('-_8')], [251, 255]);
  assert.equal(keyBytes('B' + 'A'.repeat(86)).length, 65); // a P-256 point
});

test('a payload with a preview opens its conversation', () => {
  const got = notificationFor({ kind: 'message', conversation_id: 'c 1', seq: 3, sender_name: 'Ann', preview: 'hi' });
  assert.equal(got.title, 'Ann');
  assert.equal(got.options.body, 'hi');
  assert.equal(got.options.tag, 'c:c 1');
  assert.equal(got.options.data.url, './#/c/c%201');
});

test('no preview (privacy), no sender, or junk: still a notification', () => {
  assert.equal(notificationFor({ conversation_id: 'c', sender_name: 'Ann' }).options.body, '');
  assert.equal(notificationFor({ conversation_id: 'c' }).title, 'Tidings');
  const junk = notificationFor(null);
  assert.equal(junk.title, 'Tidings');
  assert.equal(junk.options.data.url, './');
  assert.equal(notificationFor({ conversation_id: 5, sender_name: {} }).options.tag, 'tidings');
});

test("the service worker's copy answers the same", () => {
  const listeners = {};
  const context = { self: { addEventListener: (name, fn) => { listeners[name] = fn; } } };
  vm.createContext(context);
  vm.runInContext(readFileSync(new URL('../../src/tidings/web/sw.js', import.meta.url), 'utf8') + '\nself.notificationFor = notificationFor;', context);
  assert.deepEqual(Object.keys(listeners).sort(), ['activate', 'install', 'notificationclick', 'push']);
  for (const data of [null, { conversation_id: 'x', sender_name: 'B', preview: 'p' }, { conversation_id: 'y' }]) {
    assert.deepEqual(JSON.parse(JSON.stringify(context.self.notificationFor(data))), notificationFor(data));
  }
});
