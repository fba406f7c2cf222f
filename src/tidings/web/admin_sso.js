// Admin page: single sign-on (OpenID Connect). What the server is configured with (the
// settings, docs/identity.md; the client secret is never sent, only whether it is set)
// and a test that fetches the provider's discovery document and keys now.
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';
import { renderConfigForm } from './admin_config.js';

function row(label, value, testid) {
  return [h('dt', {}, label), h('dd', { 'data-testid': testid }, value == null || value === '' ? '—' : String(value))];
}

export async function renderSso(body, ctx) {
  const { api, errorText } = ctx;
  const box = h('div', { class: 'card-box', 'data-testid': 'sso-config' }, h('h3', {}, t('admin.sso_title')));
  const form = h('div', { 'data-testid': 'sso-form' });
  append(body, form, box);
  renderConfigForm(form, ctx, 'oidc', () => { clear(body); renderSso(body, ctx); });
  let cfg;
  try {
    cfg = (await api.get('/identity/oidc')).oidc;
  } catch (err) {
    append(box, h('div', { class: 'form-error', role: 'alert' }, errorText(err)));
    return;
  }
  if (!cfg.enabled) {
    append(box, h('p', { class: 'hint', 'data-testid': 'sso-off' }, t('admin.sso_off')));
    return;
  }
  const claims = cfg.claims;
  append(box, h('dl', { class: 'kv' },
    ...row(t('admin.sso_provider'), cfg.provider_name, 'sso-provider'),
    ...row(t('admin.sso_issuer'), cfg.issuer, 'sso-issuer'),
    ...row(t('admin.sso_client_id'), cfg.client_id, 'sso-client-id'),
    ...row(t('admin.sso_secret'), cfg.client_secret_set ? t('admin.sso_secret_set') : t('admin.sso_secret_none'),
      'sso-secret'),
    ...row(t('admin.sso_scopes'), cfg.scopes.join(' '), 'sso-scopes'),
    ...row(t('admin.sso_redirect'), cfg.redirect_url || t('admin.sso_redirect_default'), 'sso-redirect'),
    ...row(t('admin.sso_claims'), [claims.username, claims.display_name, claims.email, claims.groups, claims.department]
      .filter(Boolean).join(', '), 'sso-claims'),
    ...row(t('admin.sso_group_roles'), cfg.group_roles.map((g) => `${g.group} → ${g.role}`).join(', '),
      'sso-group-roles'),
    ...row(t('admin.sso_amr'), cfg.required_amr, 'sso-amr')));
  const result = h('div', { class: 'sso-result', 'data-testid': 'sso-test-result', 'aria-live': 'polite' });
  const button = h('button', { class: 'btn', type: 'button', 'data-testid': 'sso-test', onclick: async () => {
    button.disabled = true;
    clear(result);
    try {
      const r = await api.post('/identity/oidc/test');
      append(result, r.ok
        ? h('p', { class: 'hint', 'data-ok': 'true' },
          t('admin.sso_test_ok', { n: r.keys || 0, algs: (r.algorithms || []).join(', ') }),
          r.end_session_endpoint ? ` ${t('admin.sso_test_logout')}` : '')
        : h('p', { class: 'form-error', role: 'alert', 'data-ok': 'false' }, t('admin.sso_test_failed', { error: r.error || '' })));
    } catch (err) {
      append(result, h('p', { class: 'form-error', role: 'alert' }, errorText(err)));
    } finally {
      button.disabled = false;
    }
  } }, t('admin.sso_test'));
  append(box, h('div', { class: 'toolbar' }, button), result, h('p', { class: 'hint' }, t('admin.sso_hint')));
}
