// Admin forms of the settings admins may edit at run time (GET/PATCH /admin/config,
// docs/identity.md "Configuring from the web"): one field per LDAP, OIDC or limit setting.
// A setting the server's configuration file sets is locked (shown, disabled); a secret
// is a password field that says whether one is set and is sent only when typed.
import { h, append, clear, bdi } from './dom.js';
import { t } from './i18n.js';

function kind(row) {
  const d = row.default;
  if (row.secret) return 'secret';
  if (typeof d === 'boolean') return 'bool';
  if (typeof d === 'number') return 'number';
  if (d !== null && typeof d === 'object') return 'json';
  return 'text';
}

function shownValue(row) {
  const v = row.value;
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// What the field holds now, as the API takes it; undefined: unchanged / not sent.
function valueOf(row, input) {
  const k = kind(row);
  if (k === 'secret') return input.value ? input.value : undefined;
  if (k === 'bool') return input.checked;
  const text = input.value.trim();
  if (k === 'number') return text === '' ? null : Number(text);
  if (k === 'json') {
    if (text === '') return null;
    try { return JSON.parse(text); } catch { return text; } // the server says what is wrong
  }
  if (text === '' && row.default === null) return null;
  return input.value;
}

const TITLES = { ldap: 'config.ldap_title', oidc: 'config.oidc_title', limits: 'org.limits_title' };

// Render the form of `group` ('ldap', 'oidc' or 'limits') into `box`; `onSaved()` after a save.
export async function renderConfigForm(box, ctx, group, onSaved) {
  const { api, toast, errorText } = ctx;
  let rows;
  try {
    rows = (await api.get('/admin/config')).settings.filter((r) => r.group === group);
  } catch (err) {
    append(box, h('div', { class: 'form-error', role: 'alert' }, errorText(err)));
    return;
  }
  const formError = h('div', { class: 'form-error', role: 'alert', 'data-testid': `config-${group}-error` });
  const inputs = new Map();
  const grid = h('div', { class: 'form-grid config-grid' });
  for (const row of rows) {
    const k = kind(row);
    const attrs = { name: row.name, 'data-testid': `config-${row.name}`, autocomplete: 'off' };
    if (row.locked) attrs.disabled = true;
    let input;
    if (k === 'bool') {
      input = h('input', { ...attrs, type: 'checkbox' });
      input.checked = row.value === true;
    } else if (k === 'secret') {
      input = h('input', { ...attrs, type: 'password',
        placeholder: row.set ? t('config.secret_set') : t('config.secret_not_set') });
    } else {
      input = h('input', { ...attrs, type: k === 'number' ? 'number' : 'text', step: k === 'number' ? 'any' : null });
      input.value = shownValue(row);
      if (row.default !== null && row.default !== '') input.placeholder = typeof row.default === 'object' ? JSON.stringify(row.default) : String(row.default);
    }
    inputs.set(row.name, { row, input, before: k === 'secret' ? undefined : valueOf(row, input) });
    grid.append(h('label', { class: 'field', 'data-locked': String(row.locked) },
      h('span', {}, h('code', {}, row.name)),
      input,
      row.secret ? h('small', { class: 'hint', 'data-testid': `config-${row.name}-state` },
        row.set ? t('config.secret_set') : t('config.secret_not_set')) : null,
      row.locked ? h('small', { class: 'hint', 'data-testid': `config-${row.name}-locked` }, t('config.locked')) : null,
      row.description ? h('small', { class: 'hint' }, bdi(row.description)) : null));
  }
  const form = h('form', { class: 'card-box', 'data-testid': `config-${group}-form`, onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    const values = {};
    for (const [name, { row, input, before }] of inputs) {
      if (row.locked) continue;
      const now = valueOf(row, input);
      if (now === undefined) continue;
      if (JSON.stringify(now) !== JSON.stringify(before)) values[name] = now;
    }
    if (!Object.keys(values).length) {
      toast(t('config.nothing_changed'));
      return;
    }
    try {
      await api.patch('/admin/config', { values });
      toast(t('config.saved'));
      if (onSaved) onSaved();
    } catch (err) {
      const field = err && err.details && err.details.field;
      const name = field ? String(field).replace(/^values\./, '') : '';
      formError.textContent = name && name !== 'values' ? t('config.refused', { error: errorText(err), name }) : errorText(err);
      const at = inputs.get(name);
      if (at) at.input.focus();
    }
  } },
  h('h3', {}, t(TITLES[group])),
  h('p', { class: 'hint' }, t(group === 'limits' ? 'org.limits_hint' : 'config.hint')),
  grid, formError,
  h('div', { class: 'toolbar' },
    h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': `config-${group}-save` }, t('config.save'))));
  clear(box);
  append(box, form);
}
