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
  applySuggestion, splitHighlights, excerpt, mergeResults, searchParams, resultKey,
} from './search_query.js';

const USER_LOOKUP_MS = 150;

// What the results view shows; kept while other views are open, so that coming back
// from a result finds the list as it was.
let shown = {
  q: '', order: 'newest', conversationId: null,
  results: [], nextCursor: null, counts: [], countsCapped: false, allCounts: [],
  loading: false, error: '', ran: false,
};
let request = 0;
let renderView = null; // re-renders the results view while it is on screen

export const searchRoute = (q) => `#/search/${encodeURIComponent(q)}`;

// ---------------------------------------------------------------- the box
export function buildSearchBox(ctx) {
  const input = h('input', {
    class: 'search-input', type: 'search', placeholder: t('search.placeholder'), 'aria-label': t('search.placeholder'),
    autocomplete: 'off', spellcheck: 'false', 'data-testid': 'search-input', role: 'combobox',
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'search-suggestions',
    value: shown.q,
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
      if (q) ctx.go(searchRoute(q));
    } else if (e.key === 'Escape') {
      if (!popup.hidden) close();
      else input.blur();
    }
  });
  return h('div', { class: 'search-box', role: 'search' }, input, popup);
}

// ---------------------------------------------------------------- running a search
async function run(ctx, { q = shown.q, order = shown.order, conversationId = shown.conversationId, more = false } = {}) {
  const mine = ++request;
  const fresh = !more;
  const sameQuery = q === shown.q && order === shown.order;
  shown = {
    ...shown, q, order, conversationId, loading: true, error: '', ran: true,
    ...(fresh ? { results: [], nextCursor: null } : {}),
    // The counts of the whole query stay as filters while one conversation is shown.
    ...(fresh && !sameQuery ? { allCounts: [], counts: [], countsCapped: false } : {}),
  };
  if (renderView) renderView();
  try {
    const page = await ctx.api.get('/search', searchParams({ q, order, conversationId, cursor: more ? shown.nextCursor : null }));
    if (mine !== request) return;
    shown = {
      ...shown, loading: false,
      results: mergeResults(fresh ? [] : shown.results, page),
      nextCursor: page.next_cursor || null,
      counts: page.counts || [],
      countsCapped: !!page.counts_capped,
      allCounts: conversationId ? (shown.allCounts.length ? shown.allCounts : page.counts || []) : page.counts || [],
    };
  } catch (err) {
    if (mine !== request) return;
    const field = err.details && err.details.field;
    const why = err.code === 'invalid_request' && (field === 'q' || field === 'cursor') && err.message
      ? t('search.invalid_query', { reason: err.message })
      : ctx.errorText(err);
    shown = { ...shown, loading: false, error: why };
  }
  if (renderView) renderView();
}

// ---------------------------------------------------------------- the results view
export function renderSearch(main, ctx) {
  clear(main);
  const q = ctx.state.viewArg || '';
  const box = document.querySelector('.search-input');
  if (box && box.value !== q && document.activeElement !== box) box.value = q;
  const header = h('header', { class: 'page-header search-header' });
  const chips = h('div', { class: 'search-counts', 'data-testid': 'search-counts', role: 'toolbar',
    'aria-label': t('search.by_conversation') });
  const list = h('ol', { class: 'search-results', 'data-testid': 'search-results' });
  const footer = h('div', { class: 'search-footer' });
  const view = h('section', { class: 'page search-view', 'data-testid': 'search-view' }, header,
    h('div', { class: 'page-body' }, chips, list, footer));
  main.append(view);

  const conv = (cid) => ctx.state.convs.get(cid) || ctx.state.details.get(cid) || null;
  const convName = (cid) => {
    const c = conv(cid);
    return c ? convTitle(ctx, c) : t('search.unknown_conversation');
  };

  const draw = () => {
    if (!view.isConnected) {
      if (renderView === draw) renderView = null;
      return;
    }
    clear(header);
    append(header, ctx.backButton(),
      h('h2', {}, t('search.title')),
      h('span', { class: 'search-query', 'data-testid': 'search-query' }, bdi(shown.q)),
      h('div', { class: 'segmented search-order', role: 'group', 'aria-label': t('search.order') },
        ['newest', 'relevance'].map((order) => h('button', {
          type: 'button', class: `seg${shown.order === order ? ' active' : ''}`, 'aria-pressed': String(shown.order === order),
          'data-testid': `search-order-${order}`,
          onclick: () => { if (shown.order !== order) run(ctx, { order, conversationId: shown.conversationId }); },
        }, t(`search.order_${order}`)))));

    clear(chips);
    const counts = shown.allCounts;
    if (counts.length) {
      const total = counts.reduce((n, c) => n + c.count, 0);
      const chip = (cid, label, n) => h('button', {
        type: 'button', class: `chip${shown.conversationId === cid ? ' active' : ''}`, 'data-testid': 'search-count',
        'aria-pressed': String(shown.conversationId === cid), dataset: { cid: cid || '' },
        onclick: () => run(ctx, { conversationId: cid }),
      }, bdi(label), h('span', { class: 'chip-count' }, shown.countsCapped ? `${n}+` : String(n)));
      chips.append(chip(null, t('search.all_conversations'), total));
      for (const c of counts) chips.append(chip(c.conversation_id, convName(c.conversation_id), c.count));
    }

    clear(list);
    for (const r of shown.results) list.append(resultItem(r));

    clear(footer);
    if (shown.loading) {
      footer.append(h('div', { class: 'loading-row' }, h('span', { class: 'spinner' }), t('common.loading')));
    } else if (shown.error) {
      footer.append(h('div', { class: 'search-error', role: 'alert', 'data-testid': 'search-error' }, shown.error));
    } else if (shown.nextCursor) {
      footer.append(h('button', { type: 'button', class: 'btn', 'data-testid': 'search-more',
        onclick: () => run(ctx, { more: true }) }, t('search.load_more')));
    } else if (shown.ran && !shown.results.length) {
      footer.append(h('div', { class: 'no-messages', 'data-testid': 'search-empty' }, t('search.no_results')));
    } else if (shown.results.length) {
      footer.append(h('div', { class: 'hint search-end' }, t('search.end')));
    }
  };

  const resultItem = (r) => {
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
  };

  renderView = draw;
  if (q && (q !== shown.q || !shown.ran)) run(ctx, { q, order: shown.order, conversationId: null });
  else draw();
  if (!q) {
    shown = { ...shown, ran: false };
    list.append(h('li', { class: 'hint' }, t('search.hint')));
  }
}

// Sidebar and view re-render on a language change or new names: redraw the results.
export function refreshSearchView() {
  if (renderView) renderView();
}
