// The directory: people by department or by name, with a button to message them.
import { h, append, clear, avatar, bdi } from './dom.js';
import { t } from './i18n.js';
import { backButton, statusChip } from './names.js';

export function renderDirectory(main, ctx) {
  clear(main);
  let departments = [];
  let selected = ctx.state.viewArg || '';
  const deptList = h('ul', { class: 'dept-list', 'data-testid': 'dept-list' });
  const people = h('ul', { class: 'card-list people', 'data-testid': 'people' });
  const search = h('input', { type: 'search', placeholder: t('directory.search'), 'aria-label': t('directory.search'),
    'data-testid': 'directory-search' });
  let seq = 0;
  const renderDepts = () => {
    clear(deptList);
    const item = (id, name, depth) => h('li', {}, h('button', {
      type: 'button', class: `dept${selected === id ? ' active' : ''}`, style: { paddingLeft: `${12 + depth * 16}px` },
      'data-testid': 'dept', onclick: () => { selected = id; search.value = ''; renderDepts(); loadPeople(); },
    }, name));
    deptList.append(item('', t('directory.everyone'), 0));
    const children = new Map();
    for (const d of departments) {
      const key = d.parent_id || '';
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(d);
    }
    const known = new Set(departments.map((d) => d.id));
    const walk = (parent, depth) => {
      for (const d of (children.get(parent) || []).sort((a, b) => a.name.localeCompare(b.name))) {
        deptList.append(item(d.id, d.name, depth));
        walk(d.id, depth + 1);
      }
    };
    walk('', 0);
    // Orphans (parent not visible) at the top level.
    for (const d of departments) if (d.parent_id && !known.has(d.parent_id)) deptList.append(item(d.id, d.name, 0));
  };
  const loadPeople = async () => {
    const my = ++seq;
    const q = search.value.trim();
    let users = [];
    try {
      const res = await ctx.api.get('/users', { query: q || null, department_id: q ? null : selected || null, limit: 200 });
      users = res.users || [];
    } catch (err) {
      ctx.toast(ctx.errorText(err), 'error');
    }
    if (my !== seq) return;
    ctx.dispatch({ type: 'users_loaded', users });
    const st = ctx.state;
    ctx.loadPresence(users.map((u) => u.id).filter((id) => !st.presence.has(id)).slice(0, 200));
    clear(people);
    if (!users.length) people.append(h('li', { class: 'empty-list' }, t('common.no_results')));
    const deptName = new Map(departments.map((d) => [d.id, d.name]));
    for (const u of users.sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username))) {
      const self = u.id === st.me.id;
      people.append(h('li', { class: `card${u.disabled ? ' disabled' : ''}`, 'data-testid': 'person', dataset: { uid: u.id } },
        avatar(u.id, u.display_name || u.username, { size: 'md', presence: self ? 'online' : st.presence.get(u.id) || 'offline' }),
        h('div', { class: 'card-main' },
          h('div', { class: 'card-title' }, bdi(u.display_name || u.username),
            u.role === 'owner' || u.role === 'admin' ? h('span', { class: 'tag' }, t(`role.${u.role}`)) : null,
            u.disabled ? h('span', { class: 'tag tag-muted' }, t('admin.disabled')) : null),
          statusChip(ctx, u.id, { status: u.status || null }),
          h('div', { class: 'card-sub' }, [`@${u.username}`,
            ...(u.department_ids || []).map((id) => deptName.get(id)).filter(Boolean)].join(' · '))),
        self || u.disabled ? null : h('button', { class: 'btn', type: 'button', 'data-testid': 'message-person',
          onclick: () => ctx.openDirect(u.id) }, t('directory.message'))));
    }
  };
  let timer = null;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(loadPeople, 200); });
  append(main, h('section', { class: 'page', 'data-testid': 'directory-page' },
    h('header', { class: 'page-header' }, backButton(), h('h2', {}, t('directory.title'))),
    h('div', { class: 'page-body directory' },
      h('nav', { class: 'dept-nav', 'aria-label': t('directory.departments') },
        h('div', { class: 'section-label' }, t('directory.departments')), deptList),
      h('div', { class: 'directory-main' }, h('div', { class: 'toolbar' }, search), people))));
  renderDepts();
  ctx.api.get('/departments').then((res) => {
    departments = res.departments || [];
    renderDepts();
    loadPeople();
  }).catch(() => loadPeople());
}
