// Admin page "Organization": the second-factor policy (GET/PATCH /settings, the same as
// `tidings user second-factor-policy`) and the limits that are settings (message size,
// edit window, page sizes, login protection, password policy, rates: GET/PATCH
// /admin/config, group "limits"), in force at once on every server. A limit the
// server's configuration file sets is locked (admin_config.js shows it disabled).
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';
import { renderConfigForm } from './admin_config.js';

const POLICIES = ['none', 'admins', 'everyone'];

async function renderPolicy(box, ctx) {
  const { api, toast, errorText } = ctx;
  let current;
  try {
    current = (await api.get('/settings')).settings.second_factor_policy;
  } catch (err) {
    append(box, h('div', { class: 'form-error', role: 'alert' }, errorText(err)));
    return;
  }
  const select = h('select', { class: 'input', name: 'second_factor_policy', 'data-testid': 'org-policy' },
    POLICIES.map((p) => h('option', { value: p, selected: p === current }, t(`org.policy_${p}`))));
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'org-policy-error' });
  const form = h('form', { class: 'card-box', 'data-testid': 'org-policy-form', onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      const res = await api.patch('/settings', { second_factor_policy: select.value });
      select.value = res.settings.second_factor_policy;
      toast(t('config.saved'));
    } catch (err) {
      error.textContent = errorText(err);
    }
  } },
  h('h3', {}, t('org.policy_title')),
  h('p', { class: 'hint' }, t('org.policy_hint')),
  h('label', { class: 'field' }, h('span', {}, t('org.policy_label')), select),
  error,
  h('div', { class: 'toolbar' },
    h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'org-policy-save' }, t('config.save'))));
  append(box, form);
}

export function renderOrg(body, ctx) {
  const policy = h('div', { 'data-testid': 'org-policy-box' });
  const limits = h('div', { 'data-testid': 'org-limits-box' });
  append(body, policy, limits);
  renderPolicy(policy, ctx);
  const reload = () => { clear(limits); renderConfigForm(limits, ctx, 'limits', reload); };
  renderConfigForm(limits, ctx, 'limits', reload);
}
