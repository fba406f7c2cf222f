// The search box's pure logic (docs/search.md): which suggestions the text being typed
// asks for, putting a chosen one in, splitting a result's body at its highlights, and
// merging result pages. No DOM, no network, no clock (today's date comes in).
// Node's test runner checks it (tests/web/search.test.mjs).

// The filters offered while a word is typed (`insert` goes into the box; one ending in
// ':' waits for its value, the others are complete). `key` names the i18n hint.
export const FILTERS = [
  { insert: 'from:', key: 'search.filter_from' },
  { insert: 'in:', key: 'search.filter_in' },
  { insert: 'has:file', key: 'search.filter_has_file' },
  { insert: 'has:link', key: 'search.filter_has_link' },
  { insert: 'before:', key: 'search.filter_before' },
  { insert: 'after:', key: 'search.filter_after' },
  { insert: 'mentions:me', key: 'search.filter_mentions' },
];
export const SUGGESTIONS_SHOWN = 8;

// The word the caret is in or right after: { start, end, word } (UTF-16 indices, as the
// input's selection), or null inside an open "phrase" (nothing is suggested there).
export function wordAt(text, caret = text.length) {
  const before = text.slice(0, caret);
  let quotes = 0;
  for (const ch of before) if (ch === '"') quotes += 1;
  if (quotes % 2 === 1) return null;
  let start = caret;
  while (start > 0 && !/\s/.test(text[start - 1])) start -= 1;
  let end = caret;
  while (end < text.length && !/\s/.test(text[end])) end += 1;
  return { start, end, word: text.slice(start, caret) };
}

// What the word being typed asks for:
//   { kind: 'filter', prefix }            a filter name (or nothing typed yet)
//   { kind: 'from', prefix }              a user: from:al…  (from:@al… too)
//   { kind: 'in', prefix }                one of the caller's conversations: in:#ge…
//   { kind: 'date', filter, prefix }      before:/after: a day
// or null (a plain word, a complete filter, inside a phrase).
export function suggestionContext(text, caret = text.length) {
  const at = wordAt(text, caret);
  if (!at) return null;
  const word = at.word;
  const m = /^([a-z]+):(.*)$/i.exec(word);
  if (m) {
    const name = m[1].toLowerCase();
    const value = m[2];
    if (name === 'from') return { kind: 'from', prefix: value.replace(/^@/, ''), ...at };
    if (name === 'in') return { kind: 'in', prefix: value.replace(/^#/, ''), ...at };
    if (name === 'before' || name === 'after') return { kind: 'date', filter: name, prefix: value, ...at };
    if (name === 'has' || name === 'mentions') return { kind: 'filter', prefix: word.toLowerCase(), ...at };
    return null;
  }
  if (word.startsWith('"') || word.startsWith('-')) return null;
  return { kind: 'filter', prefix: word.toLowerCase(), ...at };
}

// Filters whose name starts with `prefix` (all of them for an empty prefix); a filter
// typed out already is not offered again.
export function filterSuggestions(prefix) {
  const p = prefix.toLowerCase();
  return FILTERS.filter((f) => f.insert.startsWith(p) && f.insert !== p)
    .map((f) => ({ insert: f.insert, key: f.key }));
}

// Users of a directory answer (GET /users?query=) for `from:`: `insert` is
// `from:<username>`. Bots and disabled accounts are kept: their messages are findable.
export function userSuggestions(users, prefix, limit = SUGGESTIONS_SHOWN) {
  const p = prefix.toLowerCase();
  const seen = new Set();
  const out = [];
  for (const u of users || []) {
    if (!u || !u.username || seen.has(u.username)) continue;
    const names = [u.username, u.display_name || ''].map((x) => x.toLowerCase());
    if (p && !names.some((n) => n.includes(p))) continue;
    seen.add(u.username);
    out.push({ insert: `from:${u.username}`, label: u.display_name || u.username, detail: `@${u.username}`, id: u.id });
  }
  return out.slice(0, limit);
}

// A conversation as `in:` takes it: `#name` when its name is one word, else its id.
export function conversationToken(c) {
  const name = (c.name || '').trim();
  return name && !/[\s"]/.test(name) ? `in:#${name}` : `in:${c.id}`;
}

// The caller's conversations whose title contains `prefix` (any case), names that start
// with it first; `title(c)` is the name shown (a direct conversation: the other person).
export function conversationSuggestions(convs, prefix, title, limit = SUGGESTIONS_SHOWN) {
  const p = prefix.toLowerCase();
  const scored = [];
  for (const c of convs || []) {
    const name = String(title(c) || '');
    const low = name.toLowerCase();
    const at = p ? low.indexOf(p) : 0;
    if (at < 0 && !(p && String(c.name || '').toLowerCase().includes(p))) continue;
    scored.push({ c, name, rank: at === 0 ? 0 : 1 });
  }
  scored.sort((a, b) => a.rank - b.rank || a.name.localeCompare(b.name));
  return scored.slice(0, limit).map(({ c, name }) => ({ insert: conversationToken(c), label: name, id: c.id, kind: c.kind }));
}

// YYYY-MM-DD of a Date, in UTC (the filters' days are UTC days).
export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// Days offered for before:/after: today, a week ago, thirty days ago, a year ago, those
// matching what is typed; a full date typed is offered as it is when valid.
export function dateSuggestions(filter, prefix, today) {
  const day = 24 * 3600 * 1000;
  const base = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  const days = [
    { days: 0, key: 'search.date_today' },
    { days: 7, key: 'search.date_week' },
    { days: 30, key: 'search.date_month' },
    { days: 365, key: 'search.date_year' },
  ].map((d) => ({ insert: `${filter}:${isoDay(new Date(base - d.days * day))}`, key: d.key }));
  const out = days.filter((d) => d.insert.slice(filter.length + 1).startsWith(prefix));
  if (/^\d{4}-\d{2}-\d{2}$/.test(prefix) && validDay(prefix) && !out.some((d) => d.insert.endsWith(prefix))) {
    out.unshift({ insert: `${filter}:${prefix}`, key: 'search.date_typed' });
  }
  return out;
}

export function validDay(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return isoDay(d) === text;
}

// The box's text once `insert` replaces the word the context points at: a complete
// token gets a space after it, a filter name waiting for its value (`from:`) does not.
// Returns { text, caret }.
export function applySuggestion(text, context, insert) {
  const waits = insert.endsWith(':');
  const after = text.slice(context.end);
  const glue = waits || after.startsWith(' ') ? '' : ' ';
  const head = text.slice(0, context.start) + insert + glue;
  return { text: head + after, caret: head.length + (!waits && after.startsWith(' ') ? 1 : 0) };
}

// ---------------------------------------------------------------- highlights
// A body cut at its highlights: [{ text, hit }] in order, covering the whole body.
// Highlights are code-point offsets ([start, end), as the server counts: an emoji is
// one), so the body is cut as Array.from(body), never by UTF-16 index. Spans out of
// range, empty, unsorted or overlapping are clamped or merged; bad ones are dropped.
export function splitHighlights(body, highlights) {
  const points = Array.from(body || '');
  const spans = [];
  for (const pair of highlights || []) {
    if (!Array.isArray(pair) || pair.length !== 2) continue;
    let [start, end] = pair;
    if (!Number.isInteger(start) || !Number.isInteger(end)) continue;
    start = Math.max(0, start);
    end = Math.min(points.length, end);
    if (end <= start) continue;
    spans.push([start, end]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged = [];
  for (const span of spans) {
    const last = merged[merged.length - 1];
    if (last && span[0] <= last[1]) last[1] = Math.max(last[1], span[1]);
    else merged.push([...span]);
  }
  const out = [];
  let at = 0;
  for (const [start, end] of merged) {
    if (start > at) out.push({ text: points.slice(at, start).join(''), hit: false });
    out.push({ text: points.slice(start, end).join(''), hit: true });
    at = end;
  }
  if (at < points.length || !out.length) out.push({ text: points.slice(at).join(''), hit: false });
  return out;
}

// The part of a long body worth showing: `segments` (from splitHighlights) cut to about
// `max` code points, starting up to `lead` code points before the first hit; an
// ellipsis marks what was cut on either side.
export function excerpt(segments, { max = 240, lead = 40 } = {}) {
  const total = segments.reduce((n, s) => n + Array.from(s.text).length, 0);
  if (total <= max) return segments;
  let before = 0;
  for (const s of segments) {
    if (s.hit) break;
    before += Array.from(s.text).length;
  }
  const from = before >= total ? 0 : Math.max(0, before - lead);
  const to = Math.min(total, from + max);
  const out = [];
  let at = 0;
  for (const s of segments) {
    const chars = Array.from(s.text);
    const a = Math.max(from, at);
    const b = Math.min(to, at + chars.length);
    if (b > a) out.push({ text: chars.slice(a - at, b - at).join(''), hit: s.hit });
    at += chars.length;
  }
  if (from > 0) out.unshift({ text: '…', hit: false });
  if (to < total) out.push({ text: '…', hit: false });
  return out;
}

// ---------------------------------------------------------------- result pages
export const resultKey = (r) => `${r.message.conversation_id}:${r.message.seq}`;

// The results shown after one more page: a result already shown is not repeated.
export function mergeResults(shown, page) {
  const keys = new Set(shown.map(resultKey));
  const out = [...shown];
  for (const r of (page && page.results) || []) {
    if (!r || !r.message || keys.has(resultKey(r))) continue;
    keys.add(resultKey(r));
    out.push(r);
  }
  return out;
}

// The search request's parameters for GET /search.
export function searchParams({ q, order = 'newest', conversationId = null, cursor = null, limit = null }) {
  const params = { q: q.trim(), order };
  if (conversationId) params.conversation_id = conversationId;
  if (cursor) params.cursor = cursor;
  if (limit) params.limit = limit;
  return params;
}
