// The sidebar: who is signed in, the navigation, and the conversation list with
// unread and mention badges (latest activity first).
import { h, avatar, icon, bdi, morph, reconcile } from './dom.js';
import { t, isolate } from './i18n.js';
import { plainPreview } from './markdown.js';
import { fmtListTime } from './format.js';
import { isAdmin, directPeer, sortedConversations, shownUnread, unreadTotal } from './state.js';
import { convTitle, convAvatar, statusChip, typingNames } from './names.js';
import { buildSearchBox } from './search.js';
import { badgeTitle } from './notify.js';
import { isMuted } from './notifications.js';
import { openSavedPanel } from './saved.js';
import { openScheduledPanel } from './scheduled.js';

// ctx: the view context (app.js) plus `languageSelect(onChange)` and `signOut()`.
export function buildSidebar(ctx) {
  const state = ctx.state;
  const navItem = (view, hash, label, glyph) => h('a', {
    class: 'nav-item', href: hash, dataset: { view }, 'data-testid': `nav-${view}`,
  }, h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, glyph), h('span', { class: 'nav-label' }, label));
  return h('aside', { class: 'sidebar', 'aria-label': t('nav.conversations') },
    buildMeBar(ctx),
    buildSearchBox(ctx),
    h('nav', { class: 'nav' },
      navItem('home', '#/', t('nav.chats'), icon('chat')),
      navItem('channels', '#/channels', t('nav.channels'), icon('hash')),
      navItem('directory', '#/directory', t('nav.directory'), icon('users')),
      h('button', { class: 'nav-item', type: 'button', 'data-testid': 'nav-saved', onclick: () => openSavedPanel(ctx) },
        h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, '🔖'), h('span', { class: 'nav-label' }, t('nav.saved'))),
      h('button', { class: 'nav-item', type: 'button', 'data-testid': 'nav-scheduled', onclick: () => openScheduledPanel(ctx) },
        h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, '🕒'), h('span', { class: 'nav-label' }, t('nav.scheduled')),
        h('span', { class: 'badge badge-unread', hidden: !state.scheduled.size, 'data-testid': 'nav-scheduled-count' },
          state.scheduled.size ? String(state.scheduled.size) : '')),
      navItem('account', '#/account', t('nav.account'), icon('lock')),
      isAdmin(state) ? navItem('admin', '#/admin', t('nav.admin'), icon('settings')) : null),
    h('div', { class: 'list-tools' },
      h('input', { class: 'filter', type: 'search', placeholder: t('list.filter'), 'aria-label': t('list.filter'),
        value: state.filter, oninput: (e) => ctx.dispatch({ type: 'filter_changed', filter: e.target.value }) }),
      h('button', { class: 'btn btn-primary btn-new', type: 'button', title: t('list.new'), 'data-testid': 'new-conversation',
        onclick: () => ctx.openNewConversation() }, icon('plus'))),
    h('ul', { class: 'conv-list', 'data-testid': 'conv-list', role: 'list' }));
}

// Who is signed in: name, custom status, language, sign out (rebuilt when the own
// profile changes: app.js, part "sidebar").
export function buildMeBar(ctx) {
  const me = ctx.state.me;
  return h('div', { class: 'me-bar' },
      avatar(me.id, me.display_name || me.username, { size: 'md', presence: 'online' }),
      h('div', { class: 'me-names' },
        h('div', { class: 'me-name', 'data-testid': 'me-name' }, bdi(me.display_name || me.username),
          statusChip(ctx, me.id, { compact: true })),
        h('div', { class: 'me-sub' }, `@${me.username}`)),
      ctx.languageSelect(),
      h('button', { class: 'icon-btn', type: 'button', title: t('nav.sign_out'), 'aria-label': t('nav.sign_out'),
        'data-testid': 'sign-out', onclick: () => ctx.signOut() }, icon('logout')));
}

function previewText(ctx, c) {
  const state = ctx.state;
  if (typingNames(ctx, c.id).length) return h('span', { class: 'preview-typing' }, t('typing.short'));
  const pending = ctx.outbox().filter((p) => p.conversation_id === c.id);
  const m = pending.length ? pending[pending.length - 1] : state.previews.get(c.id);
  if (!m) return c.topic || t(`kind.${c.kind}`);
  const who = (m.sender_id || state.me.id) === state.me.id || !m.sender_id ? t('preview.you') : ctx.userName(m.sender_id);
  const text = m.deleted ? t('message.recalled') : plainPreview(m.body, 60);
  return c.kind === 'direct' && who !== t('preview.you') ? isolate(text) : `${isolate(who)}: ${isolate(text)}`;
}

export function renderConvList(ctx) {
  const state = ctx.state;
  const ul = document.querySelector('.conv-list');
  if (!ul) return;
  for (const a of document.querySelectorAll('.nav-item')) {
    a.classList.toggle('active', a.dataset.view === (state.view === 'chat' ? 'home' : state.view));
  }
  document.querySelector('.shell').classList.toggle('main-open', state.view !== 'home');
  const convs = sortedConversations(state, (c) => convTitle(ctx, c));
  const total = unreadTotal(state);
  document.title = badgeTitle(total, t('app.name'));
  if (!convs.length) {
    reconcile(ul, [h('li', { class: 'empty-list' }, state.booted ? t('list.empty') : t('common.loading'))]);
    return;
  }
  // Each row stays the same node while its conversation is listed (morph): the list is
  // re-rendered on every presence, typing or unread change, and a click on a row that
  // was replaced meanwhile would be lost.
  const rows = new Map();
  for (const li of ul.children) {
    const link = li.querySelector('.conv-link');
    if (link) rows.set(link.dataset.cid, li);
  }
  const outbox = ctx.outbox();
  reconcile(ul, convs.map((c) => {
    const fresh = convRow(ctx, c, outbox);
    const old = rows.get(c.id);
    return old ? morph(old, fresh) : fresh;
  }));
}

function convRow(ctx, c, outbox) {
  const state = ctx.state;
  const unread = shownUnread(state, c);
  const failed = outbox.some((p) => p.conversation_id === c.id && p.status === 'failed');
  return h('li', { class: `conv-item${c.id === state.cid ? ' active' : ''}${unread ? ' has-unread' : ''}` },
    h('a', { href: `#/c/${encodeURIComponent(c.id)}`, class: 'conv-link', dataset: { cid: c.id }, 'data-testid': 'conv-item' },
      convAvatar(ctx, c),
      h('div', { class: 'conv-main' },
        h('div', { class: 'conv-top' },
          h('span', { class: 'conv-name' }, bdi(convTitle(ctx, c))),
          c.kind === 'direct' && directPeer(state, c.id) ? statusChip(ctx, directPeer(state, c.id), { compact: true }) : null,
          isMuted(c) ? h('span', { class: 'conv-muted', 'data-testid': 'conv-muted', title: t('notify.muted'),
            'aria-label': t('notify.muted') }, icon('bell_off', 14)) : null,
          h('span', { class: 'conv-time' }, fmtListTime(c.last_activity_at))),
        h('div', { class: 'conv-bottom' },
          h('span', { class: 'conv-preview' }, previewText(ctx, c)),
          failed ? h('span', { class: 'badge badge-failed', title: t('message.failed') }, '!') : null,
          c.unread_mentions && unread ? h('span', { class: 'badge badge-mention', 'data-testid': 'mention-badge',
            title: t('list.mentions', { n: c.unread_mentions }) }, '@') : null,
          unread ? h('span', { class: 'badge badge-unread', 'data-testid': 'unread-badge',
            title: t('list.unread', { n: unread }) }, unread > 99 ? '99+' : String(unread)) : null))),
    !unread && c.last_seq > 0 ? h('button', { class: 'conv-act', type: 'button', title: t('unread.mark'),
      'aria-label': t('unread.mark'), 'data-testid': 'conv-mark-unread',
      onclick: (e) => { e.preventDefault(); e.stopPropagation(); ctx.markUnread(c.id, null); } }, '◉') : null);
}
