// Admin page "Conversations": every conversation and channel of the organization,
// searchable by name and filtered by kind and archived; a conversation's members;
// archive and unarchive. REST: GET /admin/conversations?query=&kind=&archived=&limit=&offset=,
// GET /admin/conversations/{cid}/members, PUT / DELETE /conversations/{cid}/archive.
import { h, append, clear, bdi } from './dom.js';
import { t } from './i18n.js';

const PAGE = 50;

export function renderConversations(body, ctx) {
  const { api, toast, errorText } = ctx;
  const query = h('input', { type: 'search', class: 'input', placeholder: t('aconv.search'), 'data-testid': 'aconv-search', maxlength: '80' });
  const kind = h('select', { class: 'input', 'data-testid': 'aconv-kind' },
    h('option', { value: '' }, t('aconv.kind_all')),
    ['direct', 'group', 'channel'].map((k) => h('option', { value: k }, t(`aconv.kind.${k}`))));
  const archived = h('select', { class: 'input', 'data-testid': 'aconv-archived' },
    h('option', { value: 'false' }, t('aconv.live')),
    h('option', { value: 'true' }, t('aconv.archived')),
    h('option', { value: '' }, t('aconv.both')));
  const tbody = h('tbody', {});
  const pager = h('div', { class: 'toolbar' });
  const members = h('div', { class: 'card-box', 'data-testid': 'aconv-members' });
  let offset = 0;

  const label = (c) => c.name || (c.kind === 'direct' ? t('aconv.direct') : c.id);

  async function showMembers(c) {
    clear(members);
    try {
      const res = await api.get(`/admin/conversations/${encodeURIComponent(c.id)}/members`);
      append(members, h('h3', {}, t('aconv.members_of', { name: label(c) })),
        h('ul', { class: 'plain-list' }, res.members.map((m) => h('li', { 'data-testid': 'aconv-member' },
          bdi(m.user_id), ' · ', t(`aconv.role.${m.role}`)))));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function toggle(c) {
    const archiving = !c.archived_at;
    if (archiving && !(await ctx.confirmDialog(t('aconv.archive_confirm', { name: label(c) }), { confirmLabel: t('aconv.archive') }))) return;
    try {
      await (archiving ? api.put(`/conversations/${encodeURIComponent(c.id)}/archive`)
        : api.del(`/conversations/${encodeURIComponent(c.id)}/archive`));
      toast(archiving ? t('aconv.archived_done') : t('aconv.unarchived_done'));
    } catch (err) {
      toast(errorText(err), 'error');
    }
    load();
  }

  const row = (c) => h('tr', { 'data-testid': 'aconv-row', dataset: { cid: c.id } },
    h('td', {}, h('div', { class: 'card-title' }, bdi(label(c))), h('div', { class: 'card-sub' }, c.topic || '')),
    h('td', { 'data-label': t('aconv.kind_label') }, t(`aconv.kind.${c.kind}`)),
    h('td', { 'data-label': t('aconv.member_count') }, String(c.member_count)),
    h('td', { 'data-label': t('aconv.last_activity') }, new Date(c.last_activity_at).toLocaleString()),
    h('td', { 'data-label': t('aconv.state') }, c.archived_at ? t('aconv.archived_at', { at: new Date(c.archived_at).toLocaleString() }) : t('aconv.live')),
    h('td', { class: 'cell-actions' },
      h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'aconv-members-btn', onclick: () => showMembers(c) }, t('aconv.members')),
      h('button', { class: 'btn btn-small', type: 'button', 'data-testid': c.archived_at ? 'aconv-unarchive' : 'aconv-archive', onclick: () => toggle(c) },
        c.archived_at ? t('aconv.unarchive') : t('aconv.archive'))));

  let seq = 0;
  async function load() {
    const my = ++seq;
    const params = { query: query.value.trim(), limit: PAGE, offset };
    if (kind.value) params.kind = kind.value;
    if (archived.value) params.archived = archived.value;
    try {
      const res = await api.get('/admin/conversations', params);
      if (my !== seq) return;
      clear(tbody);
      for (const c of res.conversations) tbody.append(row(c));
      if (!res.conversations.length) tbody.append(h('tr', {}, h('td', { colspan: '6', class: 'empty-list' }, t('common.no_results'))));
      clear(pager);
      append(pager, h('span', { class: 'card-sub', 'data-testid': 'aconv-total' }, t('aconv.total', { n: res.total })),
        h('div', { class: 'toolbar-actions' },
          h('button', { class: 'btn btn-small', type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, t('aconv.prev')),
          h('button', { class: 'btn btn-small', type: 'button', disabled: res.next_offset == null, onclick: () => { offset = res.next_offset; load(); } }, t('aconv.next'))));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }
  const again = () => { offset = 0; load(); };
  query.addEventListener('input', again);
  kind.addEventListener('change', again);
  archived.addEventListener('change', again);
  append(body, h('div', { class: 'card-box' },
    h('div', { class: 'toolbar' }, h('h3', {}, t('aconv.title')), h('div', { class: 'toolbar-actions' }, query, kind, archived)),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'aconv-table' },
      h('thead', {}, h('tr', {}, [t('aconv.name'), t('aconv.kind_label'), t('aconv.member_count'), t('aconv.last_activity'), t('aconv.state'), ''].map((x) => h('th', {}, x)))),
      tbody)), pager), members);
  load();
}
