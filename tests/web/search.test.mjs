// Unit tests of the web client's search logic (src/tidings/web/search_query.js) and of
// the reducer's jump to a message (state.js: the window around a search result).
// Run with `node --test tests/web/` (tests/web/test_node_units.py runs them under pytest).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  FILTERS, wordAt, suggestionContext, filterSuggestions, userSuggestions, conversationSuggestions,
  conversationToken, dateSuggestions, validDay, applySuggestion, splitHighlights, excerpt, mergeResults,
  searchParams, resultKey,
} from '../../src/tidings/web/search_query.js';
import { apply, applyAll, initialState, msgStore, jumpPlan, emptySearch, ACTIONS } from '../../src/tidings/web/state.js';

// ---------------------------------------------------------------- suggestions
test('the word at the caret, and none inside an open phrase', () => {
  assert.deepEqual(wordAt('数据库 from:al', 11), { start: 4, end: 11, word: 'from:al' });
  assert.deepEqual(wordAt('from:al 数据库', 7), { start: 0, end: 7, word: 'from:al' });
  assert.deepEqual(wordAt('abc ', 4), { start: 4, end: 4, word: '' });
  assert.deepEqual(wordAt('from:al more', 3), { start: 0, end: 7, word: 'fro' }, 'the word runs on past the caret');
  assert.equal(wordAt('"exact phr', 10), null);
  assert.deepEqual(wordAt('"exact phrase" in:', 18).word, 'in:');
});

test('what the word being typed asks for', () => {
  assert.equal(suggestionContext('').kind, 'filter');
  assert.equal(suggestionContext('').prefix, '');
  assert.deepEqual(pick(suggestionContext('部署 fr')), { kind: 'filter', prefix: 'fr' });
  assert.deepEqual(pick(suggestionContext('from:')), { kind: 'from', prefix: '' });
  assert.deepEqual(pick(suggestionContext('from:@Ali')), { kind: 'from', prefix: 'Ali' });
  assert.deepEqual(pick(suggestionContext('FROM:bo')), { kind: 'from', prefix: 'bo' });
  assert.deepEqual(pick(suggestionContext('in:#运维')), { kind: 'in', prefix: '运维' });
  assert.deepEqual(pick(suggestionContext('x before:2026-1')), { kind: 'date', filter: 'before', prefix: '2026-1' });
  assert.deepEqual(pick(suggestionContext('after:')), { kind: 'date', filter: 'after', prefix: '' });
  assert.deepEqual(pick(suggestionContext('has:')), { kind: 'filter', prefix: 'has:' });
  assert.deepEqual(pick(suggestionContext('mentions:')), { kind: 'filter', prefix: 'mentions:' });
  assert.equal(suggestionContext('colour:blue'), null, 'not a filter: nothing to offer');
  assert.equal(suggestionContext('say "from:'), null, 'inside a phrase');
  assert.equal(suggestionContext('-word'), null);
});
const pick = (c) => Object.fromEntries(Object.entries(c).filter(([k]) => ['kind', 'prefix', 'filter'].includes(k)));

test('filters by what is typed, every one for nothing typed', () => {
  assert.deepEqual(filterSuggestions('').map((f) => f.insert), FILTERS.map((f) => f.insert));
  assert.deepEqual(filterSuggestions('').map((f) => f.insert),
    ['from:', 'in:', 'has:file', 'has:link', 'before:', 'after:', 'mentions:me']);
  assert.deepEqual(filterSuggestions('h').map((f) => f.insert), ['has:file', 'has:link']);
  assert.deepEqual(filterSuggestions('has:l').map((f) => f.insert), ['has:link']);
  assert.deepEqual(filterSuggestions('a').map((f) => f.insert), ['after:']);
  assert.deepEqual(filterSuggestions('me').map((f) => f.insert), ['mentions:me']);
  assert.deepEqual(filterSuggestions('has:file'), [], 'complete: nothing more to offer');
  assert.deepEqual(filterSuggestions('数据'), []);
  for (const f of FILTERS) assert.match(f.key, /^search\.filter_/);
});

test('from: offers users by username or display name, Chinese names included', () => {
  const users = [
    { id: 'u1', username: 'alice', display_name: 'Alice Chen' },
    { id: 'u2', username: 'wangwei', display_name: '王伟' },
    { id: 'u3', username: 'bob', display_name: '' },
    { id: 'u2', username: 'wangwei', display_name: '王伟' }, // the directory and the cache overlap
  ];
  assert.deepEqual(userSuggestions(users, 'al').map((s) => s.insert), ['from:alice']);
  assert.deepEqual(userSuggestions(users, 'chen').map((s) => s.insert), ['from:alice']);
  assert.deepEqual(userSuggestions(users, '王').map((s) => [s.insert, s.label, s.detail]), [['from:wangwei', '王伟', '@wangwei']]);
  assert.deepEqual(userSuggestions(users, '').map((s) => s.insert), ['from:alice', 'from:wangwei', 'from:bob']);
  assert.equal(userSuggestions(users, '', 2).length, 2);
  assert.deepEqual(userSuggestions(null, 'x'), []);
});

test('in: offers the caller\'s conversations by title, as #name or the id', () => {
  const convs = [
    { id: 'c1', kind: 'channel', name: 'general' },
    { id: 'c2', kind: 'group', name: '运维 值班' }, // a space: only its id can say it
    { id: 'c3', kind: 'direct', name: '' },
    { id: 'c4', kind: 'group', name: 'ops-运维' },
  ];
  const title = (c) => (c.kind === 'direct' ? 'Bob Smith' : c.name);
  assert.equal(conversationToken(convs[0]), 'in:#general');
  assert.equal(conversationToken(convs[1]), 'in:c2');
  assert.equal(conversationToken(convs[2]), 'in:c3');
  assert.deepEqual(conversationSuggestions(convs, '运维', title).map((s) => s.insert), ['in:c2', 'in:#ops-运维'],
    'titles starting with it first');
  assert.deepEqual(conversationSuggestions(convs, 'bob', title).map((s) => s.insert), ['in:c3']);
  assert.deepEqual(conversationSuggestions(convs, 'GEN', title).map((s) => s.insert), ['in:#general']);
  assert.equal(conversationSuggestions(convs, '', title).length, 4);
  assert.deepEqual(conversationSuggestions(convs, 'zzz', title), []);
});

test('before: and after: offer days (UTC) and a valid typed one', () => {
  const today = new Date('2026-12-02T23:30:00Z');
  assert.deepEqual(dateSuggestions('before', '', today).map((d) => d.insert),
    ['before:2026-12-02', 'before:2026-11-25', 'before:2026-11-02', 'before:2025-12-02']);
  assert.deepEqual(dateSuggestions('after', '2025', today).map((d) => d.insert), ['after:2025-12-02']);
  assert.deepEqual(dateSuggestions('after', '2024-02-29', today).map((d) => [d.insert, d.key]),
    [['after:2024-02-29', 'search.date_typed']]);
  assert.deepEqual(dateSuggestions('after', '2023-02-29', today), [], 'no such day');
  assert.equal(validDay('2026-13-01'), false);
  assert.equal(validDay('2026-1-01'), false);
  assert.equal(validDay('2026-12-31'), true);
});

test('a chosen suggestion replaces the word typed', () => {
  let text = '数据库 fr';
  let r = applySuggestion(text, suggestionContext(text), 'from:');
  assert.deepEqual(r, { text: '数据库 from:', caret: 9 }, 'a filter name waits for its value');
  text = r.text;
  r = applySuggestion(text, suggestionContext(text, r.caret), 'from:alice');
  assert.deepEqual(r, { text: '数据库 from:alice ', caret: 15 });
  text = 'in:#ge 迁移';
  r = applySuggestion(text, suggestionContext(text, 6), 'in:#general');
  assert.deepEqual(r, { text: 'in:#general 迁移', caret: 12 }, 'the space after is kept, not doubled');
  text = 'has:f';
  assert.deepEqual(applySuggestion(text, suggestionContext(text), 'has:file'), { text: 'has:file ', caret: 9 });
});

// ---------------------------------------------------------------- highlights
const marked = (segments) => segments.map((s) => (s.hit ? `[${s.text}]` : s.text)).join('');

test('highlights are code points: emoji and CJK are cut where the server counts', () => {
  // 🚀 is one code point (two UTF-16 units); 数据库 starts at code point 5.
  const body = '🚀 分布式数据库迁移方案';
  assert.equal(body.indexOf('数据库'), 6, 'UTF-16 index differs');
  assert.equal(marked(splitHighlights(body, [[5, 8]])), '🚀 分布式[数据库]迁移方案');
  // a family emoji is several code points (joined by ZWJ): each counts
  const family = '👨‍👩‍👧 Redis缓存 👍🏽 v2.3版本';
  const points = Array.from(family);
  const start = points.indexOf('R');
  assert.equal(marked(splitHighlights(family, [[start, start + 5], [start + 5, start + 7]])),
    '👨‍👩‍👧 [Redis缓存] 👍🏽 v2.3版本', 'adjacent spans join');
  const v = points.indexOf('v');
  assert.equal(marked(splitHighlights(family, [[v, v + 4], [v + 4, v + 6]].reverse())), '👨‍👩‍👧 Redis缓存 👍🏽 [v2.3版本]');
  assert.equal(marked(splitHighlights('全角ＡＢＣ和半角abc', [[2, 5], [8, 11]])), '全角[ＡＢＣ]和半角[abc]');
});

test('bad highlights are clamped, merged or dropped, never thrown', () => {
  const body = '负载均衡器';
  assert.equal(marked(splitHighlights(body, [[3, 99]])), '负载均[衡器]');
  assert.equal(marked(splitHighlights(body, [[-4, 2]])), '[负载]均衡器');
  assert.equal(marked(splitHighlights(body, [[0, 3], [1, 4]])), '[负载均衡]器', 'overlapping spans merge');
  assert.equal(marked(splitHighlights(body, [[2, 2], [4, 1], ['a', 2], [1], null, [1.5, 3]])), body);
  assert.equal(marked(splitHighlights(body, null)), body);
  assert.deepEqual(splitHighlights('', [[0, 1]]), [{ text: '', hit: false }]);
  assert.deepEqual(splitHighlights(body, [[0, 5]]), [{ text: body, hit: true }]);
  // the text is only ever text: markup in a body stays characters
  assert.equal(marked(splitHighlights('<b>x</b>', [[3, 4]])), '<b>[x]</b>');
});

test('a long body is cut around its first match, by code points', () => {
  const body = `${'前'.repeat(100)}数据库${'后'.repeat(200)}`;
  const segs = excerpt(splitHighlights(body, [[100, 103]]), { max: 60, lead: 10 });
  assert.equal(marked(segs), `…${'前'.repeat(10)}[数据库]${'后'.repeat(47)}…`);
  assert.equal(segs.reduce((n, s) => n + Array.from(s.text).length, 0), 62);
  const emoji = '😀'.repeat(300);
  const cut = excerpt(splitHighlights(emoji, []), { max: 20 });
  assert.equal(marked(cut), `${'😀'.repeat(20)}…`, 'no hit: from the start; no emoji is split');
  const short = splitHighlights('short 数据库', [[6, 9]]);
  assert.equal(excerpt(short), short);
});

test('pages merge without repeating a result', () => {
  const r = (cid, seq) => ({ message: { conversation_id: cid, seq, body: '' }, highlights: [] });
  const first = mergeResults([], { results: [r('c1', 9), r('c2', 3)] });
  const both = mergeResults(first, { results: [r('c2', 3), r('c1', 2), null] });
  assert.deepEqual(both.map(resultKey), ['c1:9', 'c2:3', 'c1:2']);
  assert.deepEqual(mergeResults(both, null), both);
  assert.deepEqual(searchParams({ q: ' 数据库 ', order: 'relevance', conversationId: 'c1', cursor: 'abc' }),
    { q: '数据库', order: 'relevance', conversation_id: 'c1', cursor: 'abc' });
  assert.deepEqual(searchParams({ q: 'x' }), { q: 'x', order: 'newest' });
});

// ---------------------------------------------------------------- jumping to a message
const ME = { id: 'u1', username: 'alice', display_name: 'Alice', role: 'member' };
const conv = (id, extra = {}) => ({ id, kind: 'group', name: id, last_seq: 100, read_seq: 100,
  last_activity_at: '2026-01-01T00:00:00Z', ...extra });
const msg = (cid, seq, extra = {}) => ({ conversation_id: cid, seq, id: `m${seq}`, client_msg_id: `c${seq}`,
  sender_id: 'u2', body: `body ${seq}`, created_at: `2026-01-01T00:${String(Math.floor(seq / 60)).padStart(2, '0')}:${String(seq % 60).padStart(2, '0')}Z`, ...extra });
const range = (cid, from, to) => Array.from({ length: to - from + 1 }, (_, i) => msg(cid, from + i));
const seqs = (s, cid = 'c1') => [...msgStore(s, cid).bySeq.keys()].sort((a, b) => a - b);
const live = (m) => ({ type: 'event', event: { kind: 'message', conversation_id: m.conversation_id, message: m } });

function world() {
  return applyAll(initialState(), [
    { type: 'signed_in', user: ME },
    { type: 'initial_loaded', conversations: [conv('c1')], users: [] },
    { type: 'booted' },
  ]).state;
}
// The newest page of c1 (51..100) held.
function withLatest() {
  let s = world();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' }).state;
  return apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: range('c1', 51, 100), has_more: true,
    gen: msgStore(s, 'c1').gen }).state;
}

test('jumpPlan: a held message is scrolled to, anything else loads a window', () => {
  const s = withLatest();
  assert.ok(ACTIONS.includes('focus_requested'));
  assert.equal(jumpPlan(s, 'c1', 60), 'focus');
  assert.equal(jumpPlan(s, 'c1', 20), 'load');
  assert.equal(jumpPlan(s, 'c2', 1), 'load');
  const loading = apply(s, { type: 'page_started', cid: 'c1', mode: 'older' }).state;
  assert.equal(jumpPlan(loading, 'c1', 60), 'load', 'not while a load changes the store');
  const r = apply(s, { type: 'focus_requested', cid: 'c1', seq: 60 });
  assert.deepEqual(r.state.focus, { cid: 'c1', seq: 60 });
});

test('a jump holds a window around the message, with a gap before the newest', () => {
  let s = withLatest();
  let r = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 20 });
  s = r.state;
  assert.deepEqual(r.effects.map((e) => e.type), ['forget_history', 'render'], 'the session stops filling gaps');
  assert.deepEqual(s.focus, { cid: 'c1', seq: 20 });
  assert.deepEqual(seqs(s), [], 'the newest page is dropped for the window');
  const gen = msgStore(s, 'c1').gen;
  // a live message while the window loads: kept until we know whether a gap follows
  s = apply(s, live(msg('c1', 101))).state;
  r = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', gen,
    messages: [...range('c1', 1, 20), ...range('c1', 21, 45)], has_more: false, has_newer: true });
  s = r.state;
  const store = msgStore(s, 'c1');
  assert.deepEqual(seqs(s), range('c1', 1, 45).map((m) => m.seq), '101 is after the gap: not held');
  assert.equal(store.hasNewer, true);
  assert.equal(store.hasMore, false);
  assert.equal(store.loaded, true);
  assert.ok(!r.effects.some((e) => e.type === 'track_history'), 'no gap filling from a window');
  // live messages after the gap are not held (they would be shown after a hole)
  const before = s;
  s = apply(s, live(msg('c1', 102))).state;
  assert.deepEqual(seqs(s), seqs(before));
  assert.equal(s.convs.get('c1').last_seq, 102, 'the list still learns of it');
  // a page the window replaced is dropped
  assert.equal(apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', messages: range('c1', 51, 100), gen: gen - 1 }).state, s);
  assert.equal(apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', messages: [], gen: gen - 1 }).state, s);
});

test('newer pages close the gap, then live messages flow again', () => {
  let s = withLatest();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 40 }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', gen: msgStore(s, 'c1').gen,
    messages: range('c1', 15, 65), has_more: true, has_newer: true }).state;
  assert.equal(msgStore(s, 'c1').hasMore, true);
  // older pages work in a window as they do from the newest
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'older' }).state;
  assert.equal(msgStore(s, 'c1').loadingMode, 'older');
  s = apply(s, live(msg('c1', 101))).state;
  assert.equal(msgStore(s, 'c1').bySeq.has(101), false, 'an older load does not take live messages past the gap');
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'older', gen: msgStore(s, 'c1').gen, messages: range('c1', 1, 14), has_more: false }).state;
  assert.equal(seqs(s)[0], 1);
  assert.equal(msgStore(s, 'c1').hasMore, false);
  // the first newer page: more follow
  let r = apply(s, { type: 'page_started', cid: 'c1', mode: 'newer' });
  s = r.state;
  assert.equal(apply(s, { type: 'page_started', cid: 'c1', mode: 'newer' }).state, s, 'one load at a time');
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'newer', gen: msgStore(s, 'c1').gen, messages: range('c1', 66, 90), has_more: true }).state;
  assert.equal(msgStore(s, 'c1').hasNewer, true);
  assert.deepEqual(seqs(s), range('c1', 1, 90).map((m) => m.seq));
  // the last one: during it a live message (102) comes and an edit of 95; both newer than the page read
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'newer' }).state;
  const gen = msgStore(s, 'c1').gen;
  s = apply(s, live(msg('c1', 102))).state;
  s = apply(s, { type: 'event', event: { kind: 'message_edited', conversation_id: 'c1', message: msg('c1', 95, { body: 'edited' }) } }).state;
  r = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'newer', gen, messages: range('c1', 91, 101), has_more: false });
  s = r.state;
  const store = msgStore(s, 'c1');
  assert.equal(store.hasNewer, false);
  assert.deepEqual(seqs(s), range('c1', 1, 102).map((m) => m.seq));
  assert.equal(store.bySeq.get(95).body, 'edited', 'the live edit wins over the page');
  assert.deepEqual(r.effects.find((e) => e.type === 'track_history'), { type: 'track_history', cid: 'c1', newest: 101 },
    'the session fills any gap after the page');
  // live messages are held again
  s = apply(s, live(msg('c1', 103))).state;
  assert.equal(msgStore(s, 'c1').bySeq.has(103), true);
});

test('a window that reaches the newest is a normal timeline; "latest" drops a window', () => {
  let s = withLatest();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 90 }).state;
  let r = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', gen: msgStore(s, 'c1').gen,
    messages: range('c1', 66, 100), has_more: true, has_newer: false });
  s = r.state;
  assert.equal(msgStore(s, 'c1').hasNewer, false);
  assert.ok(r.effects.some((e) => e.type === 'track_history' && e.newest === 100));
  s = apply(s, live(msg('c1', 101))).state;
  assert.equal(msgStore(s, 'c1').bySeq.has(101), true);

  // another jump, far back; then "latest messages" starts over from the newest page
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 5 }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', gen: msgStore(s, 'c1').gen,
    messages: range('c1', 1, 30), has_more: false, has_newer: true }).state;
  r = apply(s, { type: 'page_started', cid: 'c1', mode: 'latest' });
  s = r.state;
  assert.deepEqual(seqs(s), [], 'the window goes');
  assert.equal(msgStore(s, 'c1').hasNewer, false);
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'latest', gen: msgStore(s, 'c1').gen, messages: range('c1', 52, 101), has_more: true }).state;
  assert.deepEqual(seqs(s), range('c1', 52, 101).map((m) => m.seq));
});

test('the focus stays while its conversation is open, and a failed window falls back', () => {
  let s = withLatest();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 7 }).state;
  s = apply(s, { type: 'routed', section: 'c', arg: 'c1' }).state;
  assert.deepEqual(s.focus, { cid: 'c1', seq: 7 });
  let r = apply(s, { type: 'page_failed', cid: 'c1', mode: 'around', status: 0, gen: msgStore(s, 'c1').gen });
  assert.deepEqual(r.effects.filter((e) => e.type !== 'render').map((e) => e.type), ['toast', 'load_latest']);
  assert.equal(r.state.focus, null);
  assert.equal(msgStore(r.state, 'c1').loading, false);
  r = apply(s, { type: 'page_failed', cid: 'c1', mode: 'around', status: 404, gen: msgStore(s, 'c1').gen });
  assert.ok(r.effects.some((e) => e.type === 'navigate'));
  s = apply(s, { type: 'routed', section: 'search', arg: '数据库' }).state;
  assert.equal(s.focus, null, 'another view: the focus is spent');
  assert.equal(s.view, 'search');
  assert.equal(s.viewArg, '数据库');
  // two jumps in a row: the first one's answer is dropped
  s = withLatest();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 10 }).state;
  const first = msgStore(s, 'c1').gen;
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 30 }).state;
  assert.equal(apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', gen: first, messages: range('c1', 1, 20), has_more: false, has_newer: true }).state, s);
  assert.deepEqual(s.focus, { cid: 'c1', seq: 30 });
});

// ---------------------------------------------------------------- the search view's state
test('searches: pages, counts kept as filters, stale answers dropped', () => {
  const r = (cid, seq) => ({ message: { conversation_id: cid, seq, body: `b${seq}` }, highlights: [[0, 1]] });
  let s = initialState();
  assert.deepEqual(s.search, emptySearch());
  let out = apply(s, { type: 'search_started', q: '数据库', order: 'newest' });
  s = out.state;
  assert.deepEqual(out.effects, [{ type: 'render', parts: ['search'] }]);
  assert.equal(s.search.loading, true);
  const first = s.search.req;
  s = apply(s, { type: 'search_loaded', req: first, page: { results: [r('c1', 9), r('c2', 4)], next_cursor: 'n1',
    counts: [{ conversation_id: 'c1', count: 7 }, { conversation_id: 'c2', count: 1 }], counts_capped: false } }).state;
  assert.equal(s.search.results.length, 2);
  assert.equal(s.search.nextCursor, 'n1');
  assert.deepEqual(s.search.allCounts.map((c) => c.count), [7, 1]);
  // the next page adds to the results
  s = apply(s, { type: 'search_started', more: true }).state;
  assert.equal(s.search.results.length, 2, 'kept while the next page loads');
  assert.equal(apply(s, { type: 'search_started', more: true }).state, s, 'one page at a time');
  s = apply(s, { type: 'search_loaded', req: s.search.req, more: true,
    page: { results: [r('c2', 4), r('c1', 3)], next_cursor: null, counts: [], counts_capped: false } }).state;
  assert.deepEqual(s.search.results.map((x) => x.message.seq), [9, 4, 3]);
  assert.equal(apply(s, { type: 'search_started', more: true }).state, s, 'no cursor: no next page');
  // one conversation: the counts of the whole query stay as filters
  s = apply(s, { type: 'search_started', q: '数据库', order: 'newest', conversationId: 'c2' }).state;
  assert.deepEqual(s.search.results, []);
  assert.deepEqual(s.search.allCounts.map((c) => c.conversation_id), ['c1', 'c2']);
  s = apply(s, { type: 'search_loaded', req: s.search.req,
    page: { results: [r('c2', 4)], next_cursor: null, counts: [{ conversation_id: 'c2', count: 1 }] } }).state;
  assert.deepEqual(s.search.allCounts.map((c) => c.conversation_id), ['c1', 'c2']);
  assert.equal(s.search.conversationId, 'c2');
  // another query: everything starts over; an answer to the one before is dropped
  const stale = s.search.req;
  s = apply(s, { type: 'search_started', q: 'redis', order: 'relevance' }).state;
  assert.deepEqual(s.search.allCounts, []);
  assert.equal(s.search.conversationId, null);
  assert.equal(apply(s, { type: 'search_loaded', req: stale, page: { results: [r('c9', 1)] } }).state, s);
  assert.equal(apply(s, { type: 'search_failed', req: stale, error: { code: 'x' } }).state, s);
  s = apply(s, { type: 'search_failed', req: s.search.req, error: { code: 'invalid_request', field: 'q', message: "unknown filter 'colour'" } }).state;
  assert.equal(s.search.loading, false);
  assert.equal(s.search.error.field, 'q');
  assert.equal(s.search.order, 'relevance');
  assert.ok(ACTIONS.includes('search_started') && ACTIONS.includes('search_loaded') && ACTIONS.includes('search_failed'));
});

test('a gap fill does not reach into a window that stops short of the newest', () => {
  let s = withLatest();
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'around', seq: 20 }).state;
  const gap = { type: 'page_loaded', cid: 'c1', mode: 'gap', messages: range('c1', 101, 103) };
  assert.equal(apply(s, gap).state, s, 'while the window loads');
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'around', gen: msgStore(s, 'c1').gen,
    messages: range('c1', 10, 40), has_more: true, has_newer: true }).state;
  assert.equal(apply(s, gap).state, s, 'while it does not reach the newest');
  // once it does, gap fills come in again, but nothing older than the window
  s = apply(s, { type: 'page_started', cid: 'c1', mode: 'newer' }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'newer', gen: msgStore(s, 'c1').gen, messages: range('c1', 41, 100), has_more: false }).state;
  s = apply(s, { type: 'page_loaded', cid: 'c1', mode: 'gap', messages: [...range('c1', 3, 4), ...range('c1', 101, 102)] }).state;
  assert.deepEqual(seqs(s), range('c1', 10, 102).map((m) => m.seq));
});
