// Admin pages (owners and admins): users, departments, single sign-on (admin_sso.js).
import { h, append, clear, avatar, bdi } from './dom.js';
import { t, isolate } from './i18n.js';
import { renderSso } from './admin_sso.js';

const ROLES = ['owner', 'admin', 'member', 'guest'];

export function renderAdmin(main, ctx) {
  clear(main);
  const body = h('div', { class: 'page-body admin' });
  append(main, h('section', { class: 'page', 'data-testid': 'admin-page' },
    h('header', { class: 'page-header' }, ctx.backButton(), h('h2', {}, t('admin.title')),
      h('nav', { class: 'tabs', role: 'tablist' },
        h('a', { class: `tab${ctx.tab === 'users' ? ' active' : ''}`, href: '#/admin/users', role: 'tab',
          'data-testid': 'admin-tab-users' }, t('admin.users')),
        h('a', { class: `tab${ctx.tab === 'departments' ? ' active' : ''}`, href: '#/admin/departments', role: 'tab',
          'data-testid': 'admin-tab-departments' }, t('admin.departments')),
        h('a', { class: `tab${ctx.tab === 'sso' ? ' active' : ''}`, href: '#/admin/sso', role: 'tab',
          'data-testid': 'admin-tab-sso' }, t('admin.sso')))),
    body));
  if (ctx.tab === 'departments') renderDepartments(body, ctx);
  else if (ctx.tab === 'sso') renderSso(body, ctx);
  else renderUsers(body, ctx);
}

async function loadDepartments(ctx) {
  try {
    const res = await ctx.api.get('/departments');
    return res.departments || [];
  } catch {
    return [];
  }
}

function renderUsers(body, ctx) {
  const { api, toast, errorText } = ctx;
  const me = ctx.state.me;
  const tableBody = h('tbody', {});
  const search = h('input', { type: 'search', placeholder: t('admin.search_users'), 'aria-label': t('admin.search_users') });
  const formError = h('div', { class: 'form-error', role: 'alert' });
  let departments = [];

  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'create-user-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    const data = new FormData(form);
    const payload = {
      username: String(data.get('username')).trim(),
      password: String(data.get('password')),
      role: String(data.get('role')),
    };
    const display = String(data.get('display_name')).trim();
    if (display) payload.display_name = display;
    try {
      const res = await api.post('/users', payload);
      toast(t('admin.user_created', { name: res.user.display_name || res.user.username }));
      form.reset();
      load();
    } catch (err) {
      formError.textContent = err.code === 'conflict' ? t('admin.username_taken') : errorText(err);
    }
  } },
  h('h3', {}, t('admin.create_user')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, t('login.username')),
      h('input', { name: 'username', required: true, autocomplete: 'off', 'data-testid': 'new-username' })),
    h('label', { class: 'field' }, h('span', {}, t('admin.display_name')),
      h('input', { name: 'display_name', autocomplete: 'off', 'data-testid': 'new-display-name' })),
    h('label', { class: 'field' }, h('span', {}, t('login.password')),
      h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password',
        'data-testid': 'new-password' })),
    h('label', { class: 'field' }, h('span', {}, t('admin.role')),
      h('select', { name: 'role' }, ROLES.filter((r) => r !== 'owner' || me.role === 'owner')
        .map((r) => h('option', { value: r, selected: r === 'member' }, t(`role.${r}`))))),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'create-user' }, t('admin.create')))),
  formError);

  const patch = async (u, changes) => {
    try {
      const res = await api.patch(`/users/${encodeURIComponent(u.id)}`, changes);
      ctx.onUsersChanged([res.user]);
      load();
      return res.user;
    } catch (err) {
      toast(errorText(err), 'error');
      load();
      return null;
    }
  };

  const row = (u) => {
    const self = u.id === me.id;
    const deptNames = (u.department_ids || []).map((id) => (departments.find((d) => d.id === id) || {}).name).filter(Boolean);
    const deptSelect = h('select', { 'aria-label': t('admin.assign_department'), onchange: async (e) => {
      const did = e.target.value;
      if (!did) return;
      try {
        await api.put(`/departments/${encodeURIComponent(did)}/members/${encodeURIComponent(u.id)}`);
        toast(t('admin.assigned'));
        load();
      } catch (err) {
        toast(errorText(err), 'error');
      }
    } }, h('option', { value: '' }, t('admin.assign_department')),
    departments.filter((d) => !(u.department_ids || []).includes(d.id)).map((d) => h('option', { value: d.id }, d.name)));
    return h('tr', { class: u.disabled ? 'disabled' : '', dataset: { uid: u.id }, 'data-testid': 'user-row' },
      h('td', {}, h('div', { class: 'cell-user' }, avatar(u.id, u.display_name || u.username, { size: 'sm' }),
        h('div', {}, h('div', { class: 'card-title' }, bdi(u.display_name || u.username)),
          h('div', { class: 'card-sub' }, `@${u.username}`)))),
      h('td', { 'data-label': t('admin.role') },
        h('select', { 'aria-label': t('admin.role'), disabled: self || (u.role === 'owner' && me.role !== 'owner'),
          'data-testid': 'role-select',
          onchange: (e) => patch(u, { role: e.target.value }) },
        ROLES.filter((r) => r !== 'owner' || me.role === 'owner' || u.role === 'owner')
          .map((r) => h('option', { value: r, selected: r === u.role }, t(`role.${r}`))))),
      h('td', { 'data-label': t('admin.departments') }, h('div', { class: 'dept-tags' },
        deptNames.map((n) => h('span', { class: 'tag' }, n))), departments.length ? deptSelect : null),
      h('td', { 'data-label': t('admin.status') },
        h('span', { class: `status-pill ${u.disabled ? 'off' : 'on'}` }, u.disabled ? t('admin.disabled') : t('admin.active'))),
      h('td', { class: 'cell-actions' },
        self ? null : h('button', { class: 'btn btn-small', type: 'button', 'data-testid': u.disabled ? 'enable-user' : 'disable-user',
          onclick: async () => {
            if (!u.disabled && !(await ctx.confirmDialog(t('admin.disable_confirm', { name: u.username }),
              { confirmLabel: t('admin.disable'), danger: true }))) return;
            const updated = await patch(u, { disabled: !u.disabled });
            if (updated) toast(updated.disabled ? t('admin.user_disabled') : t('admin.user_enabled'));
          } }, u.disabled ? t('admin.enable') : t('admin.disable')),
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'reset-password', onclick: async () => {
          const pw = await ctx.promptDialog(t('admin.reset_password'), t('admin.new_password_for', { name: u.username }),
            { type: 'password' });
          if (!pw) return;
          try {
            await api.post(`/users/${encodeURIComponent(u.id)}/password`, { password: pw });
            toast(t('admin.password_reset'));
          } catch (err) {
            toast(errorText(err), 'error');
          }
        } }, t('admin.reset_password'))));
  };

  let seq = 0;
  const load = async () => {
    const my = ++seq;
    try {
      const [res, depts] = await Promise.all([
        api.get('/users', { query: search.value.trim() || null, limit: 200 }),
        loadDepartments(ctx),
      ]);
      if (my !== seq) return;
      departments = depts;
      const users = (res.users || []).sort((a, b) => a.username.localeCompare(b.username));
      ctx.onUsersChanged(users);
      clear(tableBody);
      for (const u of users) tableBody.append(row(u));
      if (!users.length) tableBody.append(h('tr', {}, h('td', { colspan: '5', class: 'empty-list' }, t('common.no_results'))));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  let timer = null;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  append(body, form,
    h('div', { class: 'card-box' },
      h('div', { class: 'toolbar' }, h('h3', {}, t('admin.users')), search),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'users-table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('admin.user')), h('th', {}, t('admin.role')),
          h('th', {}, t('admin.departments')), h('th', {}, t('admin.status')), h('th', {}, ''))),
        tableBody))));
  load();
}

function renderDepartments(body, ctx) {
  const { api, toast, errorText } = ctx;
  const list = h('ul', { class: 'dept-admin-list', 'data-testid': 'dept-admin-list' });
  const parentSelect = h('select', { name: 'parent_id', 'aria-label': t('admin.parent') });
  const members = h('div', { class: 'card-box dept-members', hidden: true });
  const formError = h('div', { class: 'form-error', role: 'alert' });
  let departments = [];
  let selected = null;

  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'create-department-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    const name = form.elements.name.value.trim();
    if (!name) return;
    const payload = { name };
    if (parentSelect.value) payload.parent_id = parentSelect.value;
    try {
      await api.post('/departments', payload);
      toast(t('admin.department_created', { name }));
      form.reset();
      load();
    } catch (err) {
      formError.textContent = errorText(err);
    }
  } },
  h('h3', {}, t('admin.create_department')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, t('admin.department_name')),
      h('input', { name: 'name', required: true, maxlength: '100', 'data-testid': 'department-name' })),
    h('label', { class: 'field' }, h('span', {}, t('admin.parent')), parentSelect),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'create-department' }, t('admin.create')))),
  formError);

  const showMembers = async (d) => {
    selected = d;
    renderList();
    members.hidden = false;
    clear(members);
    members.append(h('h3', {}, t('admin.members_of', { name: d.name })));
    let users = [];
    try {
      users = (await api.get('/users', { department_id: d.id, limit: 200 })).users || [];
    } catch (err) {
      toast(errorText(err), 'error');
    }
    if (selected !== d) return;
    const ul = h('ul', { class: 'card-list' });
    if (!users.length) ul.append(h('li', { class: 'empty-list' }, t('admin.no_members')));
    for (const u of users) {
      ul.append(h('li', { class: 'card' }, avatar(u.id, u.display_name || u.username, { size: 'sm' }),
        h('div', { class: 'card-main' }, h('div', { class: 'card-title' }, bdi(u.display_name || u.username)),
          h('div', { class: 'card-sub' }, `@${u.username}`)),
        h('button', { class: 'btn btn-small', type: 'button', onclick: async () => {
          try {
            await api.del(`/departments/${encodeURIComponent(d.id)}/members/${encodeURIComponent(u.id)}`);
            showMembers(d);
          } catch (err) {
            toast(errorText(err), 'error');
          }
        } }, t('common.remove'))));
    }
    const addSelect = h('select', { 'aria-label': t('admin.add_to_department'), 'data-testid': 'department-add-user' },
      h('option', { value: '' }, t('admin.add_to_department')));
    try {
      const all = (await api.get('/users', { limit: 200 })).users || [];
      const inside = new Set(users.map((u) => u.id));
      for (const u of all.filter((x) => !inside.has(x.id)).sort((a, b) => a.username.localeCompare(b.username))) {
        addSelect.append(h('option', { value: u.id }, `${isolate(u.display_name || u.username)} (@${u.username})`));
      }
    } catch { /* the list stays empty */ }
    addSelect.addEventListener('change', async () => {
      if (!addSelect.value) return;
      try {
        await api.put(`/departments/${encodeURIComponent(d.id)}/members/${encodeURIComponent(addSelect.value)}`);
        showMembers(d);
      } catch (err) {
        toast(errorText(err), 'error');
      }
    });
    append(members, h('div', { class: 'toolbar' }, addSelect), ul);
  };

  const renderList = () => {
    clear(list);
    const byId = new Map(departments.map((d) => [d.id, d]));
    const depth = (d) => {
      let n = 0;
      let p = d.parent_id && byId.get(d.parent_id);
      while (p && n < 10) {
        n += 1;
        p = p.parent_id && byId.get(p.parent_id);
      }
      return n;
    };
    const path = (d) => {
      const parts = [d.name];
      let p = d.parent_id && byId.get(d.parent_id);
      while (p && parts.length < 10) {
        parts.unshift(p.name);
        p = p.parent_id && byId.get(p.parent_id);
      }
      return parts.join(' / ');
    };
    const sorted = [...departments].sort((a, b) => path(a).localeCompare(path(b)));
    if (!sorted.length) list.append(h('li', { class: 'empty-list' }, t('admin.no_departments')));
    for (const d of sorted) {
      list.append(h('li', {}, h('button', { type: 'button', class: `dept${selected && selected.id === d.id ? ' active' : ''}`,
        style: { paddingLeft: `${12 + depth(d) * 16}px` }, 'data-testid': 'department', onclick: () => showMembers(d) },
      d.name)));
    }
    clear(parentSelect);
    parentSelect.append(h('option', { value: '' }, t('admin.no_parent')));
    for (const d of sorted) parentSelect.append(h('option', { value: d.id }, path(d)));
  };

  const load = async () => {
    departments = await loadDepartments(ctx);
    renderList();
  };
  append(body, form, h('div', { class: 'dept-admin' },
    h('div', { class: 'card-box' }, h('h3', {}, t('admin.departments')), list), members));
  load();
}
