// The sign-in screen: username and password, the verification-code field when the
// server answers `totp_required`, and "Sign in with …" when single sign-on is on.
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';

// ctx: { api, notice, keep: {username, totp}, errorText, languageSelect(onChange),
//        onSignedIn({token, user}), rerender(keep) }
export function renderLoginScreen(root, ctx) {
  const { api, notice = '', keep = {}, errorText } = ctx;
  clear(root);
  const totpRow = h('label', { class: 'field', hidden: !keep.totp },
    h('span', {}, t('login.totp')),
    h('input', { name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '10',
      'data-testid': 'login-totp' }));
  const errorBox = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'login-error' }, notice);
  // Single sign-on (OpenID Connect), when the server has it on: a link, since the
  // browser itself goes to the provider and back (api/v1/auth/oidc/start).
  const sso = h('div', { class: 'login-sso', hidden: true });
  api.get('/auth/oidc').then(({ oidc }) => {
    if (!oidc || !oidc.enabled) return;
    append(sso, h('div', { class: 'login-or' }, h('span', {}, t('login.or'))),
      h('a', { class: 'btn btn-block', href: new URL('api/v1/auth/oidc/start', document.baseURI).href,
        'data-testid': 'login-oidc' }, t('login.oidc', { name: oidc.provider_name })));
    sso.hidden = false;
  }).catch(() => { /* no button: password sign-in still works */ });
  const form = h('form', { class: 'login-card', 'data-testid': 'login-form', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const body = { username: String(data.get('username')).trim(), password: String(data.get('password')),
      device: navigator.userAgent.slice(0, 120) };
    if (!totpRow.hidden && data.get('totp')) body.totp = String(data.get('totp')).trim();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    errorBox.textContent = '';
    try {
      ctx.onSignedIn(await api.post('/auth/login', body));
    } catch (err) {
      button.disabled = false;
      if (err.code === 'totp_required') {
        totpRow.hidden = false;
        errorBox.textContent = t('login.totp_needed');
        form.querySelector('input[name=totp]').focus();
      } else if (err.code === 'invalid_totp' || (err.code === 'invalid_credentials' && !totpRow.hidden)) {
        errorBox.textContent = t(err.code === 'invalid_totp' ? 'error.invalid_totp' : 'error.invalid_credentials');
      } else if (err.code === 'unavailable') {
        // the database, or the company directory (LDAP) that checks the password, is away:
        // not a wrong password
        errorBox.textContent = t('login.unavailable');
      } else {
        errorBox.textContent = errorText(err);
      }
    }
  } },
  h('div', { class: 'login-brand' }, h('span', { class: 'logo' }, 'T'), h('h1', {}, t('app.name'))),
  h('p', { class: 'login-tagline' }, t('login.tagline')),
  h('label', { class: 'field' }, h('span', {}, t('login.username')),
    h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true,
      'data-testid': 'login-username', value: keep.username || '' })),
  h('label', { class: 'field' }, h('span', {}, t('login.password')),
    h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true,
      'data-testid': 'login-password' })),
  totpRow,
  errorBox,
  h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'login-submit' }, t('login.submit')),
  sso,
  h('div', { class: 'login-footer' }, ctx.languageSelect(() => {
    const data = new FormData(form);
    ctx.rerender({ username: data.get('username'), totp: !totpRow.hidden });
  })));
  append(root, h('div', { class: 'login-screen' }, form));
}
