// Unit tests of the web client's files model (src/tidings/web/file_kinds.js), of the
// reducer's `file_updated` event (state.js) and of sends carrying attachments (sync.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  formatSize, fileKind, fileIcon, KIND_ICONS, attachmentView, withFileUpdate, trayAdded, trayProgress, trayDone,
  trayFailed, trayRemoved, trayFraction, traySendable, filesBody,
} from '../../src/tidings/web/file_kinds.js';
import { apply, applyAll, initialState, msgStore } from '../../src/tidings/web/state.js';
import { ClientSession } from '../../src/tidings/web/sync.js';

test('sizes read as people read them, in binary multiples', () => {
  assert.equal(formatSize(0), '0 B');
  assert.equal(formatSize(1023), '1,023 B');
  assert.equal(formatSize(1024), '1 KB');
  assert.equal(formatSize(1536), '1.5 KB');
  assert.equal(formatSize(10 * 1024 * 1024 + 512 * 1024), '10.5 MB');
  assert.equal(formatSize(250 * 1024 * 1024), '250 MB');
  assert.equal(formatSize(1024 ** 3), '1 GB');
  assert.equal(formatSize(5 * 1024 ** 5), '5,120 TB');
  assert.equal(formatSize(1536, 'de'), '1,5 KB');
  assert.equal(formatSize(-1), '');
  assert.equal(formatSize('x'), '');
  assert.equal(formatSize(undefined), '');
});

test('a file kind comes from the sniffed type first, then the name', () => {
  assert.equal(fileKind('image/png', 'x.pdf'), 'image');
  assert.equal(fileKind('video/mp4'), 'video');
  assert.equal(fileKind('audio/mpeg'), 'audio');
  assert.equal(fileKind('application/pdf', 'a'), 'pdf');
  assert.equal(fileKind('application/zip', 'a'), 'archive');
  assert.equal(fileKind('application/gzip', 'a'), 'archive');
  assert.equal(fileKind('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'), 'spreadsheet');
  assert.equal(fileKind('application/vnd.openxmlformats-officedocument.wordprocessingml.document'), 'document');
  assert.equal(fileKind('application/vnd.ms-powerpoint'), 'presentation');
  assert.equal(fileKind('application/json; charset=utf-8'), 'code');
  assert.equal(fileKind('application/octet-stream', 'notes.MD'), 'text');
  assert.equal(fileKind('application/octet-stream', 'main.py'), 'code');
  assert.equal(fileKind('text/plain', 'readme'), 'text');
  assert.equal(fileKind('application/octet-stream', 'blob'), 'file');
  assert.equal(fileKind('', ''), 'file');
  assert.equal(fileKind(null, null), 'file');
  for (const kind of ['image', 'pdf', 'archive', 'text', 'file']) assert.ok(KIND_ICONS[kind]);
  assert.equal(fileIcon('application/pdf', 'a.pdf'), KIND_ICONS.pdf);
  assert.equal(fileIcon('application/x-unknown', 'a.bin'), KIND_ICONS.file);
});

const file = (extra = {}) => ({ id: 'f1', name: 'cat.png', size: 2048, content_type: 'image/png', sha256: 'ab',
  created_at: '2026-01-01T00:00:00Z', uploader_id: 'u2', width: null, height: null, has_thumbnail: false,
  status: 'processing', ...extra });

test('images with a thumbnail show inline; SVG, others and quarantined files never do', () => {
  assert.equal(attachmentView(file({ has_thumbnail: true, status: 'ready' })), 'image');
  assert.equal(attachmentView(file()), 'processing');
  assert.equal(attachmentView(file({ status: 'ready' })), 'card'); // no thumbnail made (a bomb): a plain file
  assert.equal(attachmentView(file({ content_type: 'image/svg+xml', has_thumbnail: true, status: 'ready' })), 'card');
  assert.equal(attachmentView(file({ content_type: 'text/plain', status: 'ready' })), 'card');
  assert.equal(attachmentView(file({ status: 'quarantined', has_thumbnail: true })), 'quarantined');
  assert.equal(attachmentView(null), 'card');
});

test('withFileUpdate replaces the attachment by id, and only when it changed', () => {
  const m = { seq: 3, attachments: [file(), file({ id: 'f2', name: 'b.txt', content_type: 'text/plain' })] };
  const ready = file({ has_thumbnail: true, status: 'ready', width: 640, height: 480 });
  const next = withFileUpdate(m, ready);
  assert.notEqual(next, m);
  assert.deepEqual(next.attachments[0], ready);
  assert.equal(next.attachments[1], m.attachments[1]);
  assert.equal(m.attachments[0].has_thumbnail, false, 'the old message is not mutated');
  assert.equal(withFileUpdate(next, ready), next, 'the same update again changes nothing');
  assert.equal(withFileUpdate(m, file({ id: 'other' })), m);
  assert.equal(withFileUpdate({ seq: 1 }, ready).attachments, undefined);
});

test('the upload tray: progress, done, failed, cancel, and what a send may carry', () => {
  let tray = [];
  tray = trayAdded(tray, { key: 'a', name: 'a.png', size: 1000, type: 'image/png' });
  tray = trayAdded(tray, { key: 'b', name: 'b.txt', size: 0, type: 'text/plain' });
  assert.deepEqual(traySendable(tray), { ids: [], names: [], busy: true });
  tray = trayProgress(tray, 'a', 250);
  assert.equal(trayFraction(tray[0]), 0.25);
  assert.equal(trayFraction(tray[1]), 0, 'an empty file has no fraction to show');
  tray = trayProgress(tray, 'a', 5000);
  assert.equal(tray[0].loaded, 1000, 'never beyond the size');
  tray = trayDone(tray, 'a', { id: 'F-a', name: 'a (sanitized).png' });
  assert.equal(trayFraction(tray[0]), 1);
  assert.deepEqual(traySendable(tray), { ids: ['F-a'], names: ['a (sanitized).png'], busy: true });
  tray = trayFailed(tray, 'b', 'Too large');
  assert.deepEqual(traySendable(tray), { ids: ['F-a'], names: ['a (sanitized).png'], busy: false },
    'a failed upload does not hold the send');
  assert.equal(filesBody(['a.png', 'b.txt']), 'a.png, b.txt');
  tray = trayProgress(tray, 'b', 10);
  assert.equal(tray[1].loaded, 0, 'no progress after a failure');
  tray = trayRemoved(tray, 'a');
  assert.deepEqual(tray.map((u) => u.key), ['b']);
  assert.deepEqual(traySendable(trayRemoved(tray, 'b')), { ids: [], names: [], busy: false });
});

// ---------------------------------------------------------------- the reducer
const ME = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'member' };
const conv = { id: 'c1', kind: 'group', name: 'c1', last_seq: 0, read_seq: 0, last_activity_at: '2026-01-01T00:00:00Z' };
const msg = (seq, extra = {}) => ({ conversation_id: 'c1', seq, id: `m${seq}`, client_msg_id: `c${seq}`, sender_id: 'u2',
  body: `body ${seq}`, created_at: `2026-01-01T00:00:0${seq}Z`, reactions: {}, attachments: [], ...extra });
const world = () => applyAll(initialState(), [
  { type: 'signed_in', user: ME },
  { type: 'initial_loaded', conversations: [conv], users: [] },
  { type: 'booted' },
]).state;
const updated = (seq, f) => ({ type: 'event', event: { kind: 'file_updated', conversation_id: 'c1', seq, file: f, at: 'x' } });

test('file_updated: a held message gains its thumbnail, the list preview too', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg(1), msg(2, { attachments: [file()] })],
    has_more: false }).state;
  const ready = file({ has_thumbnail: true, status: 'ready', width: 10, height: 20 });
  const r = apply(s, updated(2, ready));
  assert.deepEqual(msgStore(r.state, 'c1').bySeq.get(2).attachments, [ready]);
  assert.equal(r.state.previews.get('c1').attachments[0].has_thumbnail, true);
  assert.ok(r.effects.some((e) => e.type === 'render' && e.parts.includes('messages')));
  assert.equal(msgStore(r.state, 'c1').bySeq.get(1), msgStore(s, 'c1').bySeq.get(1), 'other messages untouched');
  // the same event again (a replay): nothing changes
  const again = apply(r.state, updated(2, ready));
  assert.equal(msgStore(again.state, 'c1').bySeq.get(2), msgStore(r.state, 'c1').bySeq.get(2));
  // malformed events are ignored
  for (const ev of [{ seq: null, file: ready }, { seq: 2, file: null }, { seq: 2, file: { id: 5 } }]) {
    const x = apply(r.state, { type: 'event', event: { kind: 'file_updated', conversation_id: 'c1', ...ev } });
    assert.equal(x.state, r.state);
  }
});

test('file_updated while the page loads: applied to the page\'s copy when it comes', () => {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  const ready = file({ has_thumbnail: true, status: 'ready' });
  s = apply(s, updated(2, ready)).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: [msg(2, { attachments: [file()] })],
    has_more: false }).state;
  assert.deepEqual(msgStore(s, 'c1').bySeq.get(2).attachments, [ready]);
});

test('stale state + file_updated == fresh fetch', () => {
  const ready = file({ has_thumbnail: true, status: 'ready', width: 4, height: 3 });
  const load = (messages) => applyAll(world(), [
    { type: 'page_started', cid: 'c1', mode: 'latest' },
    { type: 'page_loaded', cid: 'c1', mode: 'latest', messages, has_more: false },
  ]).state;
  const stale = apply(load([msg(1, { attachments: [file()] })]), updated(1, ready)).state;
  const fresh = load([msg(1, { attachments: [ready] })]);
  assert.deepEqual(msgStore(stale, 'c1').bySeq.get(1), msgStore(fresh, 'c1').bySeq.get(1));
});

// ---------------------------------------------------------------- sends
test('a send carries its attachments, again on a retry, and not at all without any', () => {
  const session = new ClientSession();
  session.receive({ type: 'ready', user: ME, position: '1' });
  const frame = session.send({ conversation_id: 'c1', body: '', client_msg_id: 'k1', attachments: ['F1', 'F2'] });
  assert.deepEqual(frame.attachments, ['F1', 'F2']);
  assert.deepEqual(session.outbox[0].attachments, ['F1', 'F2']);
  session.receive({ type: 'error', ref: frame.ref, error: { code: 'rate_limited' } });
  const again = session.retry('k1');
  assert.deepEqual(again.attachments, ['F1', 'F2']);
  const plain = session.send({ conversation_id: 'c1', body: 'hi', client_msg_id: 'k2' });
  assert.equal('attachments' in plain, false);
  assert.equal('attachments' in session.outbox[1], false);
  // an outbox restored from storage keeps them
  const restored = new ClientSession({ outbox: session.outbox });
  assert.deepEqual(restored.outbox[0].attachments, ['F1', 'F2']);
});
