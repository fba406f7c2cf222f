// Search (docs/search.md): the box in the sidebar with the filter syntax's suggestions,
// and the results view (#/search/<query>): each result's conversation, sender, time
// and body with the matches marked, counts per conversation as filters, newest or by
// relevance, "load more" by the cursor. A click opens the conversation at the message
// (ctx.openMessage). The pure parts are in search_query.js.
import { h, append, clear, avatar, bdi } from './dom.js';
import { t } from './i18n.js';
import { fmtDateTime } from './format.js';
import { convTitle } from './names.js';
import {
  suggestionContext, filterSuggestions, userSuggestions, conversationSuggestions, dateSuggestions,
  applySuggestion, splitHighlights, excerpt, searchParams, resultKey,
} from './search_query.js';

const USER_LOOKUP_MS = 150;

export const searchRoute = (q) => `#/search/${encodeURIComponent(q)}`;

// ---------------------------------------------------------------- the box
export function buildSearchBox(ctx) {
  const input = h('input', {
    class: 'search-input', type: 'search', placeholder: t('search.placeholder'), 'aria-label': t('search.placeholder'),
    autocomplete: 'off', spellcheck: 'false', 'data-testid': 'search-input', role: 'combobox',
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'search-suggestions',
    value: ctx.state.search.q,
  });
  const popup = h('ul', { class: 'search-suggestions', id: 'search-suggestions', role: 'listbox', hidden: true,
    'data-testid': 'search-suggestions' });
  let items = [];
  let active = -1;
  let context = null;
  let lookup = 0;
  let timer = null;

  const close = () => {
    popup.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    items = [];
    active = -1;
  };
  const paint = () => {
    clear(popup);
    if (!items.length) {
      close();
      return;
    }
    items.forEach((item, i) => {
      popup.append(h('li', {
        class: `search-suggestion${i === active ? ' active' : ''}`, role: 'option', 'aria-selected': String(i === active),
        'data-testid': 'search-suggestion', dataset: { insert: item.insert },
        onmousedown: (e) => { e.preventDefault(); choose(item); },
      },
      item.uid ? avatar(item.uid, item.label, { size: 'xs' }) : null,
      h('span', { class: 'suggestion-token' }, bdi(item.label || item.insert)),
      item.hint ? h('span', { class: 'suggestion-hint' }, item.hint) : null));
    });
    popup.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  };
  const choose = (item) => {
    const next = applySuggestion(input.value, context, item.insert);
    input.value = next.text;
    input.setSelectionRange(next.caret, next.caret);
    input.focus();
    suggest();
  };
  const suggest = () => {
    clearTimeout(timer);
    const caret = input.selectionStart ?? input.value.length;
    context = suggestionContext(input.value, caret);
    active = -1;
    if (!context) {
      items = [];
      paint();
      return;
    }
    if (context.kind === 'filter') {
      items = filterSuggestions(context.prefix).map((f) => ({ insert: f.insert, label: f.insert, hint: t(f.key) }));
    } else if (context.kind === 'in') {
      const convs = [...ctx.state.convs.values()];
      items = conversationSuggestions(convs, context.prefix, (c) => convTitle(ctx, c))
        .map((s) => ({ ...s, label: s.kind === 'channel' ? `#${s.label}` : s.label, hint: s.insert }));
    } else if (context.kind === 'date') {
      items = dateSuggestions(context.filter, context.prefix, new Date())
        .map((d) => ({ insert: d.insert, label: d.insert, hint: t(d.key) }));
    } else if (context.kind === 'from') {
      const mine = ++lookup;
      const prefix = context.prefix;
      // The people known here at once, then the directory's answer.
      items = userSuggestions([...ctx.state.users.values()], prefix).map(userItem);
      timer = setTimeout(async () => {
        try {
          const res = await ctx.api.get('/users', { query: prefix, limit: 8 });
          if (mine !== lookup) return;
          items = userSuggestions([...(res.users || []), ...ctx.state.users.values()], prefix).map(userItem);
          paint();
        } catch { /* the known people stay offered */ }
      }, USER_LOOKUP_MS);
    }
    paint();
  };
  const userItem = (s) => ({ insert: s.insert, label: s.label, hint: s.detail, uid: s.id });

  input.addEventListener('input', suggest);
  input.addEventListener('focus', suggest);
  input.addEventListener('click', suggest);
  input.addEventListener('blur', () => setTimeout(close, 100));
  input.addEventListener('keydown', (e) => {
    if (e.isComposing) return; // an input method's Enter picks characters, not a search
    if (!popup.hidden && items.length && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      if (active < 0) active = 0;
      paint();
    } else if (!popup.hidden && active >= 0 && (e.key === 'Enter' || e.key === 'Tab')) {
      e.preventDefault();
      choose(items[active]);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      close();
      const q = input.value.trim();
      if (!q) return;
      // The same query again searches again (new messages may match since).
      if (location.hash === searchRoute(q)) runSearch(ctx, { q, order: ctx.state.search.order });
      else ctx.go(searchRoute(q));
    } else if (e.key === 'Escape' && !popup.hidden) {
      e.preventDefault(); // a search field would clear itself (and open the suggestions again)
      close();
    }
  });
  return h('div', { class: 'search-box', role: 'search' }, input, popup);
}

// ---------------------------------------------------------------- running a search
// Start a search (or, with `more`, load its next page); the state keeps the results
// (state.js: search_started, search_loaded, search_failed).
export async function runSearch(ctx, { q, order, conversationId = null, more = false } = {}) {
  const before = ctx.state.search;
  const cursor = more ? before.nextCursor : null;
  ctx.dispatch({ type: 'search_started', q, order, conversationId, more });
  const now = ctx.state.search;
  if (now.req === before.req) return; // nothing started (no next page, or one loading)
  const { req } = now;
  try {
    const page = await ctx.api.get('/search',
      searchParams({ q: now.q, order: now.order, conversationId: now.conversationId, cursor }));
    ctx.dispatch({ type: 'search_loaded', req, page, more });
  } catch (err) {
    ctx.dispatch({ type: 'search_failed', req,
      error: { code: err.code, field: err.details && err.details.field, message: err.message, details: err.details } });
  }
}

// The route's query (#/search/<q>) is searched unless it is the one shown already.
export function searchForRoute(ctx) {
  const q = ctx.state.viewArg || '';
  const s = ctx.state.search;
  if (q && (q !== s.q || !s.ran)) runSearch(ctx, { q, order: s.order });
}

function errorMessage(ctx, error) {
  const readable = error.code === 'invalid_request' && (error.field === 'q' || error.field === 'cursor') && error.message;
  return readable ? t('search.invalid_query', { reason: error.message }) : ctx.errorText(error);
}

// ---------------------------------------------------------------- the results view
// Draws ctx.state.search into `main`; the view's elements are kept across renders (so
// its scroll position and focus stay when a page is added).
export function renderSearch(main, ctx) {
  let view = main.querySelector('.search-view');
  if (!view) {
    clear(main);
    view = h('section', { class: 'page search-view', 'data-testid': 'search-view' },
      h('header', { class: 'page-header search-header' }),
      h('div', { class: 'page-body' },
        h('div', { class: 'search-counts', 'data-testid': 'search-counts', role: 'toolbar',
          'aria-label': t('search.by_conversation') }),
        h('ol', { class: 'search-results', 'data-testid': 'search-results' }),
        h('div', { class: 'search-footer' })));
    main.append(view);
  }
  const header = view.querySelector('.search-header');
  const chips = view.querySelector('.search-counts');
  const list = view.querySelector('.search-results');
  const footer = view.querySelector('.search-footer');
  const shown = ctx.state.search;
  const box = document.querySelector('.search-input');
  if (box && box.value !== shown.q && document.activeElement !== box) box.value = shown.q;

  const conv = (cid) => ctx.state.convs.get(cid) || ctx.state.details.get(cid) || null;
  const convName = (cid) => {
    const c = conv(cid);
    return c ? convTitle(ctx, c) : t('search.unknown_conversation');
  };

  clear(header);
  append(header, ctx.backButton(),
    h('h2', {}, t('search.title')),
    h('span', { class: 'search-query', 'data-testid': 'search-query' }, bdi(shown.q)),
    h('div', { class: 'segmented search-order', role: 'group', 'aria-label': t('search.order') },
      ['newest', 'relevance'].map((order) => h('button', {
        type: 'button', class: `seg${shown.order === order ? ' active' : ''}`, 'aria-pressed': String(shown.order === order),
        'data-testid': `search-order-${order}`,
        onclick: () => {
          const s = ctx.state.search;
          if (s.order !== order && s.q) runSearch(ctx, { q: s.q, order, conversationId: s.conversationId });
        },
      }, t(`search.order_${order}`)))));

  clear(chips);
  if (shown.allCounts.length) {
    const total = shown.allCounts.reduce((n, c) => n + c.count, 0);
    const chip = (cid, label, n) => h('button', {
      type: 'button', class: `chip${shown.conversationId === cid ? ' active' : ''}`, 'data-testid': 'search-count',
      'aria-pressed': String(shown.conversationId === cid), dataset: { cid: cid || '' },
      onclick: () => {
        const s = ctx.state.search;
        runSearch(ctx, { q: s.q, order: s.order, conversationId: cid });
      },
    }, bdi(label), h('span', { class: 'chip-count' }, shown.countsCapped ? `${n}+` : String(n)));
    chips.append(chip(null, t('search.all_conversations'), total));
    for (const c of shown.allCounts) chips.append(chip(c.conversation_id, convName(c.conversation_id), c.count));
  }

  clear(list);
  if (!shown.q) list.append(h('li', { class: 'hint' }, t('search.hint')));
  for (const r of shown.results) list.append(resultItem(ctx, r, convName));

  clear(footer);
  if (shown.loading) {
    footer.append(h('div', { class: 'loading-row' }, h('span', { class: 'spinner' }), t('common.loading')));
  } else if (shown.error) {
    footer.append(h('div', { class: 'search-error', role: 'alert', 'data-testid': 'search-error' },
      errorMessage(ctx, shown.error)));
  } else if (shown.nextCursor) {
    footer.append(h('button', { type: 'button', class: 'btn', 'data-testid': 'search-more',
      onclick: () => runSearch(ctx, { more: true }) }, t('search.load_more')));
  } else if (shown.ran && !shown.results.length) {
    footer.append(h('div', { class: 'no-messages', 'data-testid': 'search-empty' }, t('search.no_results')));
  } else if (shown.results.length) {
    footer.append(h('div', { class: 'hint search-end' }, t('search.end')));
  }
}

function resultItem(ctx, r, convName) {
  const m = r.message;
  const segments = excerpt(splitHighlights(m.body, r.highlights));
  const name = ctx.userName(m.sender_id);
  const files = (m.attachments || []).map((f) => f && f.name).filter(Boolean);
  return h('li', { class: 'search-result' }, h('button', {
    type: 'button', class: 'search-hit', 'data-testid': 'search-result',
    dataset: { cid: m.conversation_id, seq: m.seq, key: resultKey(r) },
    onclick: () => ctx.openMessage(m.conversation_id, m.seq),
  },
  avatar(m.sender_id, name),
  h('div', { class: 'search-hit-main' },
    h('div', { class: 'search-hit-head' },
      h('span', { class: 'search-hit-conv', 'data-testid': 'search-result-conversation' }, bdi(convName(m.conversation_id))),
      h('span', { class: 'search-hit-sender', 'data-testid': 'search-result-sender' }, bdi(name)),
      h('time', { class: 'search-hit-time', datetime: m.created_at }, m.created_at ? fmtDateTime(m.created_at) : '')),
    h('div', { class: 'search-hit-body', 'data-testid': 'search-result-body' },
      segments.map((s) => (s.hit ? h('mark', { class: 'search-mark' }, s.text) : s.text))),
    files.length ? h('div', { class: 'search-hit-files hint' }, `📎 ${files.join(', ')}`) : null)));
}
