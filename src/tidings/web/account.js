// The account page (#/account): change your password, and the second factor (turn it
// on with the QR code, new recovery codes, turn it off). Every change asks for the
// password in the same request, as the server requires (docs/security.md).
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';

export function renderAccount(main, ctx) {
  clear(main);
  const body = h('div', { class: 'page-body account' });
  append(main, h('section', { class: 'page', 'data-testid': 'account-page' },
    h('header', { class: 'page-header' }, ctx.backButton(), h('h2', {}, t('account.title'))),
    body));
  append(body, passwordBox(ctx), secondFactorBox(ctx));
}

// "wrong username or password" would mislead here: the username is not asked
function explain(ctx, err) {
  return err && err.code === 'invalid_credentials' ? t('account.wrong_password') : ctx.errorText(err);
}

function passwordField(name, label, testid, autocomplete = 'current-password') {
  return h('label', { class: 'field' }, h('span', {}, label),
    h('input', { name, type: 'password', required: true, autocomplete, 'data-testid': testid }));
}

function passwordBox(ctx) {
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'password-error' });
  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'change-password-form', onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    const data = new FormData(form);
    try {
      await ctx.api.post('/auth/password', {
        current_password: String(data.get('current_password')),
        new_password: String(data.get('new_password')),
      });
      form.reset();
      ctx.toast(t('account.password_changed'));
    } catch (err) {
      error.textContent = explain(ctx, err);
    }
  } },
  h('h3', {}, t('account.password')),
  h('div', { class: 'form-grid' },
    passwordField('current_password', t('account.current_password'), 'current-password'),
    passwordField('new_password', t('account.new_password'), 'new-password', 'new-password'),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'change-password' },
        t('account.change')))),
  error);
  return form;
}

// The screen of a session that may only enrol a second factor (the organization's
// policy requires one and this account has none): the enrolment, then the app
// (ctx.onEnrolled), or sign out.
export function renderEnrolment(main, ctx) {
  clear(main);
  append(main, h('section', { class: 'page enrol-page', 'data-testid': 'enrol-page' },
    h('header', { class: 'page-header' }, h('h2', {}, t('enrol.title'))),
    h('div', { class: 'page-body account' },
      h('p', { class: 'notice', 'data-testid': 'enrol-notice' }, t('enrol.notice')),
      secondFactorBox({ ...ctx, afterCodes: ctx.onEnrolled }),
      h('button', { class: 'btn', type: 'button', 'data-testid': 'enrol-sign-out', onclick: () => ctx.signOut() },
        t('enrol.sign_out')))));
}

function secondFactorBox(ctx) {
  const box = h('div', { class: 'card-box', 'data-testid': 'second-factor' });
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'totp-error' });
  const fail = (err) => { error.textContent = explain(ctx, err); };

  const show = (...content) => {
    clear(box);
    error.textContent = '';
    append(box, h('h3', {}, t('account.second_factor')), ...content, error);
  };

  const showCodes = (codes) => h('div', { class: 'recovery-codes' },
    h('p', {}, t('account.recovery_hint')),
    h('ol', { class: 'code-list', 'data-testid': 'recovery-codes' }, codes.map((c) => h('li', {}, h('code', {}, c)))),
    h('button', { class: 'btn', type: 'button', 'data-testid': 'codes-done',
      onclick: () => (ctx.afterCodes ? ctx.afterCodes() : load()) }, t('account.done')));

  // off: the password starts an enrolment; the QR code and a first code finish it
  const renderOff = () => {
    const form = h('form', { class: 'form-grid', 'data-testid': 'totp-start-form', onsubmit: async (e) => {
      e.preventDefault();
      const password = String(new FormData(form).get('password'));
      try {
        renderEnrolment(password, await ctx.api.post('/auth/totp/setup', { password }));
      } catch (err) {
        fail(err);
      }
    } },
    passwordField('password', t('login.password'), 'totp-password'),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'totp-start' }, t('account.enable'))));
    show(h('p', {}, h('span', { class: 'status-pill off', 'data-testid': 'totp-status' }, t('account.totp_off')),
      ' ', t('account.enable_hint')), form);
  };

  const renderEnrolment = (password, setup) => {
    const form = h('form', { class: 'form-grid', 'data-testid': 'totp-enable-form', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const res = await ctx.api.post('/auth/totp/enable',
          { password, code: String(new FormData(form).get('code')).trim() });
        ctx.toast(t('account.totp_enabled'));
        show(showCodes(res.recovery_codes));
      } catch (err) {
        fail(err);
      }
    } },
    h('label', { class: 'field' }, h('span', {}, t('login.totp')),
      h('input', { name: 'code', required: true, inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '10',
        'data-testid': 'totp-code' })),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'totp-enable' }, t('account.confirm'))));
    show(h('p', {}, t('account.scan')),
      h('img', { class: 'qr', src: setup.qr_png, alt: t('account.qr_alt'), width: '180', height: '180' }),
      h('p', {}, t('account.key'), ' ', h('code', { 'data-testid': 'totp-secret' }, setup.secret)),
      form);
  };

  // on: the password and a current code give new recovery codes or turn it off
  const renderOn = (left) => {
    const form = h('form', { class: 'form-grid', 'data-testid': 'totp-manage-form', onsubmit: (e) => e.preventDefault() });
    const values = () => {
      const data = new FormData(form);
      return { password: String(data.get('password')), code: String(data.get('code')).trim() };
    };
    const act = (testid, label, run, danger = false) => h('button', {
      class: `btn${danger ? ' btn-danger' : ''}`, type: 'button', 'data-testid': testid, onclick: async () => {
        if (!form.reportValidity()) return;
        try {
          await run(values());
        } catch (err) {
          fail(err);
        }
      } }, label);
    append(form,
      passwordField('password', t('login.password'), 'totp-password'),
      h('label', { class: 'field' }, h('span', {}, t('account.code_or_recovery')),
        h('input', { name: 'code', required: true, autocomplete: 'one-time-code', maxlength: '16', 'data-testid': 'totp-code' })),
      h('div', { class: 'field field-button' },
        act('totp-new-codes', t('account.new_codes'), async (v) => {
          const res = await ctx.api.post('/auth/totp/recovery-codes', v);
          show(showCodes(res.recovery_codes));
        }),
        act('totp-disable', t('account.disable'), async (v) => {
          await ctx.api.post('/auth/totp/disable', v);
          ctx.toast(t('account.totp_disabled'));
          load();
        }, true)));
    show(h('p', {}, h('span', { class: 'status-pill on', 'data-testid': 'totp-status' }, t('account.totp_on')),
      ' ', t('account.codes_left', { n: left })),
    h('p', { class: 'hint' }, t('account.manage_hint')), form);
  };

  const load = async () => {
    try {
      const status = await ctx.api.get('/auth/totp');
      if (status.enabled) renderOn(status.recovery_codes_left);
      else renderOff();
    } catch (err) {
      show();
      fail(err);
    }
  };
  show();
  load();
  return box;
}
