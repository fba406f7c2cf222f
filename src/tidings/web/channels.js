// Browsing channels: search, join, open, create.
import { h, append, clear, bdi } from './dom.js';
import { t } from './i18n.js';
import { backButton } from './names.js';

export function renderChannels(main, ctx) {
  clear(main);
  const list = h('ul', { class: 'card-list', 'data-testid': 'channel-list' });
  const search = h('input', { type: 'search', placeholder: t('channels.search'), 'aria-label': t('channels.search'),
    'data-testid': 'channel-search' });
  let seq = 0;
  const load = async () => {
    const my = ++seq;
    let channels = [];
    try {
      const res = await ctx.api.get('/channels', { query: search.value.trim() || null });
      channels = res.conversations || res.channels || [];
    } catch (err) {
      if (my === seq) {
        clear(list);
        list.append(h('li', { class: 'empty-list' }, ctx.errorText(err)));
      }
      return;
    }
    if (my !== seq) return;
    clear(list);
    if (!channels.length) list.append(h('li', { class: 'empty-list' }, t('channels.none')));
    for (const ch of channels) {
      const joined = ch.joined || ctx.state.convs.has(ch.id);
      list.append(h('li', { class: 'card', dataset: { cid: ch.id }, 'data-testid': 'channel' },
        h('span', { class: 'avatar avatar-md avatar-channel', 'aria-hidden': 'true' }, '#'),
        h('div', { class: 'card-main' },
          h('div', { class: 'card-title' }, bdi(ch.name || t('conversation.untitled'))),
          h('div', { class: 'card-sub' }, [ch.private ? t('conversation.private') : null,
            ch.announcement ? t('conversation.announcement') : null, ch.topic,
            t('members.count', { n: ch.member_count || 0 })].filter(Boolean).join(' · '))),
        joined
          ? h('a', { class: 'btn', href: `#/c/${encodeURIComponent(ch.id)}` }, t('channels.open'))
          : h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'join', onclick: async (e) => {
            e.target.disabled = true;
            try {
              await ctx.api.post(`/conversations/${ch.id}/members`, { user_ids: [ctx.state.me.id] });
              await ctx.refreshConversations();
              ctx.go(`#/c/${encodeURIComponent(ch.id)}`);
            } catch (err) {
              e.target.disabled = false;
              ctx.toast(ctx.errorText(err), 'error');
            }
          } }, t('channels.join'))));
    }
  };
  let timer = null;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  append(main, h('section', { class: 'page', 'data-testid': 'channels-page' },
    h('header', { class: 'page-header' }, backButton(), h('h2', {}, t('channels.title')),
      h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'new-channel',
        onclick: () => ctx.openNewConversation('channel') }, t('channels.create'))),
    h('div', { class: 'page-body' }, h('div', { class: 'toolbar' }, search), list)));
  load();
}
