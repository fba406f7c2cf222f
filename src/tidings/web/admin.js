// Admin pages (owners and admins): users, departments, single sign-on (admin_sso.js),
// and LDAP / Active Directory (its configuration is read-only here, it lives in the
// settings, and secrets are never sent back), webhooks (webhooks.js).
// Also organization settings (admin_org.js), jobs and plugins (admin_jobs.js); integrations: slash commands and incoming
// webhooks (integrations_admin.js).
import { h, append, clear, avatar, bdi } from './dom.js';
import { t, isolate } from './i18n.js';
import { renderSso } from './admin_sso.js';
import { renderConfigForm } from './admin_config.js';
import { renderJobs } from './admin_jobs.js';
import { renderConversations } from './admin_conversations.js';
import { renderUsage } from './admin_usage.js';
import { renderOrg } from './admin_org.js';
import { renderAudit } from './admin_audit.js';
import { departmentActions } from './admin_departments.js';
import { renderIntegrations } from './integrations_admin.js';
import { renderWebhooks } from './webhooks.js';

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
          'data-testid': 'admin-tab-sso' }, t('admin.sso')),
        h('a', { class: `tab${ctx.tab === 'identity' ? ' active' : ''}`, href: '#/admin/identity', role: 'tab',
          'data-testid': 'admin-tab-identity' }, t('identity.tab')),
        h('a', { class: `tab${ctx.tab === 'jobs' ? ' active' : ''}`, href: '#/admin/jobs', role: 'tab',
          'data-testid': 'admin-tab-jobs' }, t('admin.jobs')),
        h('a', { class: `tab${ctx.tab === 'integrations' ? ' active' : ''}`, href: '#/admin/integrations', role: 'tab',
          'data-testid': 'admin-tab-integrations' }, t('admin.integrations')),
        h('a', { class: `tab${ctx.tab === 'scim' ? ' active' : ''}`, href: '#/admin/scim', role: 'tab',
          'data-testid': 'admin-tab-scim' }, t('scim.title')),
        h('a', { class: `tab${ctx.tab === 'webhooks' ? ' active' : ''}`, href: '#/admin/webhooks', role: 'tab',
          'data-testid': 'admin-tab-webhooks' }, t('webhooks.title')),
        h('a', { class: `tab${ctx.tab === 'conversations' ? ' active' : ''}`, href: '#/admin/conversations', role: 'tab',
          'data-testid': 'admin-tab-conversations' }, t('aconv.tab')),
        h('a', { class: `tab${ctx.tab === 'org' ? ' active' : ''}`, href: '#/admin/org', role: 'tab',
          'data-testid': 'admin-tab-org' }, t('org.tab')),
        h('a', { class: `tab${ctx.tab === 'usage' ? ' active' : ''}`, href: '#/admin/usage', role: 'tab',
          'data-testid': 'admin-tab-usage' }, t('usage.tab')),
        h('a', { class: `tab${ctx.tab === 'audit' ? ' active' : ''}`, href: '#/admin/audit', role: 'tab',
          'data-testid': 'admin-tab-audit' }, t('audit.tab')))),
    body));
  if (ctx.tab === 'departments') renderDepartments(body, ctx);
  else if (ctx.tab === 'sso') renderSso(body, ctx);
  else if (ctx.tab === 'identity') renderIdentity(body, ctx);
  else if (ctx.tab === 'jobs') renderJobs(body, ctx);
  else if (ctx.tab === 'integrations') renderIntegrations(body, ctx);
  else if (ctx.tab === 'scim') renderScim(body, ctx);
  else if (ctx.tab === 'webhooks') renderWebhooks(body, ctx);
  else if (ctx.tab === 'conversations') renderConversations(body, ctx);
  else if (ctx.tab === 'usage') renderUsage(body, ctx);
  else if (ctx.tab === 'org') renderOrg(body, ctx);
  else if (ctx.tab === 'audit') renderAudit(body, ctx);
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
          h('div', { class: 'card-sub' }, `@${u.username}`,
            u.origin && u.origin !== 'local'
              ? h('span', { class: 'tag tag-muted origin-tag', 'data-testid': 'user-origin' }, originName(u.origin)) : null)))),
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
        } }, t('admin.reset_password')),
        // moderation: remove someone's picture (audited as avatar_removed)
        u.avatar && !self ? h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'remove-avatar',
          onclick: async () => {
            if (!(await ctx.confirmDialog(t('admin.remove_avatar_confirm', { name: u.username }),
              { confirmLabel: t('avatar.remove'), danger: true }))) return;
            try {
              await api.del(`/users/${encodeURIComponent(u.id)}/avatar`);
              toast(t('avatar.removed'));
              load();
            } catch (err) {
              toast(errorText(err), 'error');
            }
          } }, t('avatar.remove')) : null));
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
    members.append(h('h3', {}, t('admin.members_of', { name: d.name })),
      departmentActions(ctx, d, departments, () => { selected = null; members.hidden = true; load(); }));
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

function originName(origin) {
  if (origin === 'ldap') return t('identity.origin_ldap');
  if (origin === 'oidc') return t('identity.origin_oidc');
  if (origin === 'scim') return t('identity.origin_scim');
  return origin;
}

const STEP_NAMES = {
  configuration: () => t('identity.step_configuration'),
  directory: () => t('identity.step_directory'),
  connect: () => t('identity.step_connect'),
  bind: () => t('identity.step_bind'),
  search: () => t('identity.step_search'),
  find: () => t('identity.step_find'),
  'sign-in': () => t('identity.step_sign_in'),
};

const ACTION_NAMES = {
  created: () => t('identity.action_created'),
  updated: () => t('identity.action_updated'),
  disabled: () => t('identity.action_disabled'),
  linked: () => t('identity.action_linked'),
  unchanged: () => t('identity.action_unchanged'),
  skipped: () => t('identity.action_skipped'),
  error: () => t('identity.action_error'),
};

// One key and value of the configuration, as text (objects as JSON, a missing value: —).
function shown(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'boolean') return value ? t('identity.yes') : t('identity.no');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// The sign-in methods tab: LDAP's configuration in force, a check, and the sync (a
// preview first; the real run asks to confirm). OIDC and SCIM add their sections here.
function renderIdentity(body, ctx) {
  const { api, toast, errorText } = ctx;
  const config = h('div', { class: 'card-box', 'data-testid': 'ldap-config' }, h('h3', {}, t('identity.ldap')));
  const steps = h('ul', { class: 'card-list', 'data-testid': 'ldap-steps' });
  const report = h('div', { 'data-testid': 'ldap-report' });
  const formError = h('div', { class: 'form-error', role: 'alert' });

  const testForm = h('form', { class: 'inline-form card-box', 'data-testid': 'ldap-test-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    const data = new FormData(testForm);
    const payload = {};
    const username = String(data.get('username') || '').trim();
    const password = String(data.get('password') || '');
    if (username) payload.username = username;
    if (username && password) payload.password = password;
    testForm.elements.password.value = '';
    clear(steps);
    try {
      const res = await api.post('/admin/identity/ldap/test', payload);
      for (const st of res.steps || []) {
        const name = STEP_NAMES[st.step] ? STEP_NAMES[st.step]() : st.step;
        steps.append(h('li', { class: 'card', 'data-testid': 'ldap-step', dataset: { ok: String(st.ok) } },
          h('span', { class: `status-pill ${st.ok ? 'on' : 'off'}` }, st.ok ? t('identity.ok') : t('identity.failed')),
          h('div', { class: 'card-main' }, h('div', { class: 'card-title' }, name),
            h('div', { class: 'card-sub' }, bdi(st.detail)))));
      }
      toast(res.ok ? t('identity.test_ok') : t('identity.test_failed'), res.ok ? undefined : 'error');
    } catch (err) {
      formError.textContent = errorText(err);
    }
  } },
  h('h3', {}, t('identity.test')),
  h('p', { class: 'hint' }, t('identity.test_hint')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, t('login.username')),
      h('input', { name: 'username', autocomplete: 'off', maxlength: '64', 'data-testid': 'ldap-test-username' })),
    h('label', { class: 'field' }, h('span', {}, t('login.password')),
      h('input', { name: 'password', type: 'password', autocomplete: 'off', 'data-testid': 'ldap-test-password' })),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'ldap-test' }, t('identity.run_test')))),
  formError, steps);

  const showReport = (res) => {
    clear(report);
    const counts = Object.entries(res.counts || {}).filter(([, n]) => n)
      .map(([a, n]) => `${ACTION_NAMES[a] ? ACTION_NAMES[a]() : a}: ${n}`).join(' · ');
    report.append(h('p', { class: 'hint', 'data-testid': 'ldap-counts' },
      res.dry_run ? t('identity.preview_of', { entries: res.entries }) : t('identity.synced', { entries: res.entries }),
      ' ', counts || t('identity.nothing_to_do')));
    if (res.error) report.append(h('div', { class: 'form-error', role: 'alert' }, res.error));
    const tbody = h('tbody', {});
    for (const r of res.rows || []) {
      const changes = Object.entries(r.fields || {}).map(([k, v]) => `${k}: ${shown(v)}`).join(', ') || r.detail;
      tbody.append(h('tr', { 'data-testid': 'ldap-row' }, h('td', {}, `@${r.username}`),
        h('td', {}, ACTION_NAMES[r.action] ? ACTION_NAMES[r.action]() : r.action), h('td', {}, bdi(changes))));
    }
    if ((res.rows || []).length) {
      report.append(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('admin.user')), h('th', {}, t('identity.action')),
          h('th', {}, t('identity.changes')))), tbody)));
    }
  };
  const sync = async (dryRun) => {
    if (!dryRun && !(await ctx.confirmDialog(t('identity.sync_confirm'), { confirmLabel: t('identity.sync_now') }))) return;
    try {
      showReport(await api.post('/admin/identity/ldap/sync', { dry_run: dryRun }));
      if (!dryRun) toast(t('identity.sync_done'));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  const syncBox = h('div', { class: 'card-box', 'data-testid': 'ldap-sync' }, h('h3', {}, t('identity.sync')),
    h('p', { class: 'hint' }, t('identity.sync_hint')),
    h('div', { class: 'toolbar' },
      h('button', { class: 'btn', type: 'button', 'data-testid': 'ldap-preview', onclick: () => sync(true) }, t('identity.preview')),
      h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'ldap-sync-now', onclick: () => sync(false) },
        t('identity.sync_now'))),
    report);

  const load = async () => {
    let ldap = { enabled: false };
    try {
      ldap = (await api.get('/admin/identity/ldap')).ldap || ldap;
    } catch (err) {
      toast(errorText(err), 'error');
    }
    if (!ldap.enabled) {
      config.append(h('p', { class: 'hint', 'data-testid': 'ldap-off' }, t('identity.ldap_off')));
      testForm.hidden = true;
      syncBox.hidden = true;
      return;
    }
    const rows = [
      ['identity.url', ldap.url], ['identity.bind_dn', ldap.bind_dn],
      ['identity.bind_password', ldap.bind_password_set ? t('identity.password_set') : t('identity.password_not_set')],
      ['identity.user_base', ldap.user_base], ['identity.user_filter', ldap.user_filter],
      ['identity.sync_filter', ldap.sync_filter], ['identity.bind_mode', ldap.bind_mode],
      ['identity.start_tls', ldap.start_tls], ['identity.ca_file', ldap.ca_file],
      ['identity.attributes', ldap.attributes], ['identity.departments', ldap.department_source],
      ['identity.group_base', ldap.group_base], ['identity.group_roles', ldap.group_roles],
      ['identity.default_role', ldap.default_role],
    ];
    const labels = {
      'identity.url': () => t('identity.url'), 'identity.bind_dn': () => t('identity.bind_dn'),
      'identity.bind_password': () => t('identity.bind_password'), 'identity.user_base': () => t('identity.user_base'),
      'identity.user_filter': () => t('identity.user_filter'), 'identity.sync_filter': () => t('identity.sync_filter'),
      'identity.bind_mode': () => t('identity.bind_mode'), 'identity.start_tls': () => t('identity.start_tls'),
      'identity.ca_file': () => t('identity.ca_file'), 'identity.attributes': () => t('identity.attributes'),
      'identity.departments': () => t('identity.departments'), 'identity.group_base': () => t('identity.group_base'),
      'identity.group_roles': () => t('identity.group_roles'), 'identity.default_role': () => t('identity.default_role'),
    };
    const dl = h('dl', { class: 'config-list' });
    for (const [key, value] of rows) dl.append(h('dt', {}, labels[key]()), h('dd', {}, bdi(shown(value))));
    append(config, h('p', { class: 'hint' }, t('identity.ldap_hint')), dl);
  };
  const form = h('div', { 'data-testid': 'ldap-form' });
  append(body, form, config, testForm, syncBox);
  renderConfigForm(form, ctx, 'ldap', () => { clear(body); renderIdentity(body, ctx); });
  load();
}

// SCIM provisioning: the base URL to paste into Okta / Entra ID, tokens issued (each
// shown once, right after it is made) and revoked. docs/identity.md, "SCIM".
function renderScim(body, ctx) {
  const { api, toast, errorText } = ctx;
  const baseUrl = h('code', { class: 'scim-url', 'data-testid': 'scim-base-url' }, `${location.origin}/scim/v2`);
  const status = h('p', { class: 'card-sub', 'data-testid': 'scim-status' });
  const issued = h('div', { class: 'card-box scim-issued', hidden: true, 'data-testid': 'scim-issued' });
  const tableBody = h('tbody', {});
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : t('scim.never'));

  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'scim-token-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    const name = form.elements.name.value.trim() || 'SCIM';
    try {
      const res = await api.post('/scim/tokens', { name });
      form.reset();
      clear(issued);
      issued.hidden = false;
      append(issued, h('h3', {}, t('scim.token_issued', { name: res.token.name })),
        h('p', {}, t('scim.shown_once')),
        h('code', { class: 'scim-secret', 'data-testid': 'scim-secret' }, res.secret),
        h('div', { class: 'toolbar' },
          h('button', { class: 'btn btn-small', type: 'button', onclick: async () => {
            try {
              await navigator.clipboard.writeText(res.secret);
              toast(t('scim.copied'));
            } catch { /* the token stays on screen to copy by hand */ }
          } }, t('scim.copy')),
          h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'scim-secret-done', onclick: () => {
            clear(issued);
            issued.hidden = true;
          } }, t('scim.done'))));
      load();
    } catch (err) {
      formError.textContent = errorText(err);
    }
  } },
  h('h3', {}, t('scim.issue')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, t('scim.token_name')),
      h('input', { name: 'name', maxlength: '80', placeholder: 'Okta', autocomplete: 'off', 'data-testid': 'scim-token-name' })),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'scim-issue' }, t('scim.issue_button')))),
  formError);

  const row = (tok) => h('tr', { class: tok.revoked_at ? 'disabled' : '', 'data-testid': 'scim-token-row' },
    h('td', {}, bdi(tok.name)),
    h('td', { 'data-label': t('scim.issued') }, when(tok.created_at)),
    h('td', { 'data-label': t('scim.last_used') }, when(tok.last_used_at)),
    h('td', { 'data-label': t('admin.status') },
      h('span', { class: `status-pill ${tok.revoked_at ? 'off' : 'on'}` }, tok.revoked_at ? t('scim.revoked') : t('admin.active'))),
    h('td', { class: 'cell-actions' }, tok.revoked_at ? null : h('button', { class: 'btn btn-small', type: 'button',
      'data-testid': 'scim-revoke', onclick: async () => {
        if (!(await ctx.confirmDialog(t('scim.revoke_confirm', { name: tok.name }),
          { confirmLabel: t('scim.revoke'), danger: true }))) return;
        try {
          await api.del(`/scim/tokens/${encodeURIComponent(tok.id)}`);
          toast(t('scim.token_revoked'));
        } catch (err) {
          toast(errorText(err), 'error');
        }
        load();
      } }, t('scim.revoke'))));

  const load = async () => {
    try {
      const res = await api.get('/scim/tokens');
      baseUrl.textContent = res.base_url;
      const tokens = res.tokens || [];
      const live = tokens.filter((x) => !x.revoked_at).length;
      status.textContent = live ? t('scim.status_on', { n: live }) : t('scim.status_off');
      clear(tableBody);
      for (const tok of [...tokens].reverse()) tableBody.append(row(tok));
      if (!tokens.length) tableBody.append(h('tr', {}, h('td', { colspan: '5', class: 'empty-list' }, t('scim.no_tokens'))));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  append(body,
    h('div', { class: 'card-box' }, h('h3', {}, t('scim.title')), status,
      h('p', {}, t('scim.explain')),
      h('div', { class: 'field' }, h('span', {}, t('scim.base_url')), baseUrl),
      h('p', { class: 'card-sub' }, t('scim.how'))),
    form, issued,
    h('div', { class: 'card-box' }, h('h3', {}, t('scim.tokens')),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'scim-tokens-table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('scim.token_name')), h('th', {}, t('scim.issued')),
          h('th', {}, t('scim.last_used')), h('th', {}, t('admin.status')), h('th', {}, ''))),
        tableBody))));
  load();
}
