// The account page (#/account): your profile (display name, language, time zone,
// theme) and custom status, do not disturb (notifications.js), your signed-in devices, change your password, and the
// second factor (turn it on with the QR code, new recovery codes, turn it off). Every
// security change asks for the password in the same request, as the server requires
// (docs/security.md).
import { h, append, clear, bdi, avatar } from './dom.js';
import { t, LANGUAGES } from './i18n.js';
import { fmtDateTime } from './format.js';
import { THEMES } from './pwa.js';
import { dndBox } from './notifications.js';
import { pushSupported, currentSubscription, enablePush, disablePush } from './push.js';
import { AVATAR_TYPES, setAvatarFrom } from './avatars.js';

export function renderAccount(main, ctx) {
  clear(main);
  const body = h('div', { class: 'page-body account' });
  append(main, h('section', { class: 'page', 'data-testid': 'account-page' },
    h('header', { class: 'page-header' }, ctx.backButton(), h('h2', {}, t('account.title'))),
    body));
  append(body, profileBox(ctx), avatarBox(ctx), statusBox(ctx), dndBox(ctx), notificationsBox(ctx), sessionsBox(ctx),
    passwordBox(ctx), secondFactorBox(ctx));
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

// Display name, language, time zone and theme: one PATCH /users/me. The language and
// theme come into force through the `user_updated` event of one's own connections
// (app.js applyPreferences), on every device signed in.
function profileBox(ctx) {
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'profile-error' });
  const form = h('form', { class: 'card-box', 'data-testid': 'profile-form' }, h('h3', {}, t('profile.title')),
    h('p', { class: 'hint' }, t('common.loading')));
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  const build = (me) => {
    const user = me.user;
    const prefs = me.preferences || {};
    const local = user.origin === 'local';
    const name = h('input', { name: 'display_name', value: user.display_name, maxlength: '80', required: true,
      disabled: !local, 'data-testid': 'profile-name' });
    const lang = h('select', { name: 'language', 'data-testid': 'profile-language' },
      h('option', { value: '', selected: !prefs.language }, t('profile.device_default')),
      LANGUAGES.map((l) => h('option', { value: l.code, selected: prefs.language === l.code }, l.label)));
    const zone = h('input', { name: 'time_zone', value: prefs.time_zone || '', list: 'tz-list', maxlength: '64',
      placeholder: Intl.DateTimeFormat().resolvedOptions().timeZone, 'data-testid': 'profile-time-zone' });
    const theme = h('select', { name: 'theme', 'data-testid': 'profile-theme' },
      THEMES.map((v) => h('option', { value: v, selected: (prefs.theme || 'system') === v }, t(`profile.theme_${v}`))));
    clear(form);
    append(form, h('h3', {}, t('profile.title')),
      h('div', { class: 'form-grid' },
        field(t('profile.display_name'), name),
        field(t('settings.language'), lang),
        field(t('profile.time_zone'), zone),
        h('datalist', { id: 'tz-list' }, zones.map((z) => h('option', { value: z }))),
        field(t('profile.theme'), theme),
        h('div', { class: 'field field-button' },
          h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'profile-save' }, t('profile.save')))),
      local ? null : h('p', { class: 'hint' }, t('profile.name_managed')),
      error);
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const data = new FormData(form);
    const body = {
      language: String(data.get('language') || '') || null,
      time_zone: String(data.get('time_zone') || '').trim() || null,
      theme: String(data.get('theme')),
    };
    if (data.has('display_name')) body.display_name = String(data.get('display_name'));
    try {
      const res = await ctx.api.patch('/users/me', body);
      ctx.dispatch({ type: 'users_loaded', users: [res.user] });
      ctx.applyPreferences(res.preferences);
      ctx.toast(t('profile.saved'));
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  });
  ctx.api.get('/users/me').then(build).catch((err) => { error.textContent = ctx.errorText(err); });
  return form;
}

// The avatar: pick an image (a preview of it at once, from the local file), upload it
// (POST /files), then PUT /users/me/avatar; the server answers `conflict` while the
// upload's job makes its preview, so that is asked again shortly. Others see the new
// picture through `user_updated`. Remove: DELETE /users/me/avatar (the initials again).
function avatarBox(ctx) {
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'avatar-error' });
  const box = h('div', { class: 'card-box avatar-box', 'data-testid': 'avatar-box' });
  let preview = null; // the picked file as a data: URL (the page's CSP allows data: images, not blob:)
  const input = h('input', { type: 'file', accept: AVATAR_TYPES, hidden: true, 'data-testid': 'avatar-file' });
  const draw = (picked) => {
    const me = ctx.state.users.get(ctx.state.me.id) || ctx.state.me;
    const pic = avatar(me.id, me.display_name || me.username, { size: 'lg' });
    if (picked) {
      for (const img of pic.querySelectorAll('img')) img.remove();
      pic.append(h('img', { class: 'avatar-img', src: picked, alt: '', 'data-testid': 'avatar-preview' }));
    }
    clear(box);
    append(box, h('h3', {}, t('avatar.title')),
      h('div', { class: 'avatar-row' }, pic,
        h('div', { class: 'field-button' },
          picked
            ? [h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'avatar-save', onclick: save }, t('avatar.save')),
              h('button', { class: 'btn', type: 'button', onclick: () => { drop(); draw(null); } }, t('avatar.cancel'))]
            : [h('button', { class: 'btn', type: 'button', 'data-testid': 'avatar-pick', onclick: () => input.click() },
              me.avatar ? t('avatar.change') : t('avatar.upload')),
            me.avatar ? h('button', { class: 'btn', type: 'button', 'data-testid': 'avatar-remove', onclick: remove }, t('avatar.remove')) : null])),
      h('p', { class: 'hint' }, t('avatar.hint')),
      input, error);
  };
  const drop = () => {
    preview = null;
    input.value = '';
  };
  const done = (res, message) => {
    ctx.dispatch({ type: 'users_loaded', users: [res.user] });
    drop();
    draw(null);
    ctx.toast(message);
  };
  async function save() {
    const file = input.files && input.files[0];
    if (!file) return;
    error.textContent = '';
    try {
      const uploaded = await ctx.api.upload(file).promise;
      done(await setAvatarFrom(ctx.api, uploaded.id), t('avatar.saved'));
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  }
  async function remove() {
    error.textContent = '';
    try {
      done(await ctx.api.del('/users/me/avatar'), t('avatar.removed'));
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  }
  input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    if (!file) return;
    if (!AVATAR_TYPES.split(',').includes(file.type)) {
      error.textContent = t('avatar.not_image');
      input.value = '';
      return;
    }
    error.textContent = '';
    const reader = new FileReader();
    reader.onload = () => { preview = String(reader.result); draw(preview); };
    reader.onerror = () => { error.textContent = t('avatar.not_image'); };
    reader.readAsDataURL(file);
  });
  draw(null);
  return box;
}

// Notifications while Tidings is closed (docs/notifications.md): Web Push on this device
// (a toggle: the browser asks for permission, the subscription goes to the server), and
// the email digests of missed direct messages and mentions (GET/PUT
// /users/me/notifications/offline; the address is the account's own, a directory's otherwise).
function notificationsBox(ctx) {
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'notify-error' });
  const form = h('form', { class: 'card-box', 'data-testid': 'notify-form' }, h('h3', {}, t('notify.title')),
    h('p', { class: 'hint' }, t('common.loading')));
  const build = async (mine, me) => {
    const local = me.user.origin === 'local';
    const device = h('input', { type: 'checkbox', name: 'device', 'data-testid': 'notify-device',
      disabled: !mine.push_available || !pushSupported() });
    const deviceHint = h('p', { class: 'hint', 'data-testid': 'notify-device-hint' },
      !mine.push_available || !pushSupported() ? t('notify.unsupported')
        : (typeof Notification !== 'undefined' && Notification.permission === 'denied' ? t('notify.denied') : t('notify.device_hint')));
    try {
      device.checked = Boolean(await currentSubscription()) && Notification.permission === 'granted';
    } catch {
      device.checked = false;
    }
    device.addEventListener('change', async () => {
      error.textContent = '';
      try {
        if (device.checked) {
          await enablePush(ctx.api);
          ctx.toast(t('notify.device_on'));
        } else {
          await disablePush(ctx.api);
          ctx.toast(t('notify.device_off'));
        }
      } catch (err) {
        device.checked = !device.checked;
        error.textContent = err && err.code === 'push_denied' ? t('notify.denied') : ctx.errorText(err);
      }
    });
    const digests = h('input', { type: 'checkbox', name: 'email_digests', checked: mine.email_digests,
      disabled: !mine.email_available, 'data-testid': 'notify-digests' });
    const previews = h('input', { type: 'checkbox', name: 'previews', checked: mine.previews, 'data-testid': 'notify-previews' });
    const email = h('input', { type: 'email', name: 'email', value: mine.email || '', maxlength: '254',
      disabled: !local, autocomplete: 'email', 'data-testid': 'notify-email' });
    const check = (input, label) => h('label', { class: 'check' }, input, h('span', {}, label));
    clear(form);
    append(form, h('h3', {}, t('notify.title')),
      check(device, t('notify.device')), deviceHint,
      check(digests, t('notify.email_digests')),
      mine.email_available ? null : h('p', { class: 'hint' }, t('notify.no_email_server')),
      check(previews, t('notify.previews')),
      h('div', { class: 'form-grid' },
        h('label', { class: 'field' }, h('span', {}, t('notify.email')), email),
        h('div', { class: 'field field-button' },
          h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'notify-save' }, t('notify.save')))),
      local ? null : h('p', { class: 'hint' }, t('notify.email_managed')),
      error);
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const data = new FormData(form);
    const body = { email_digests: data.get('email_digests') === 'on', previews: data.get('previews') === 'on' };
    if (data.has('email')) body.email = String(data.get('email') || '').trim();
    try {
      await ctx.api.put('/users/me/notifications/offline', body);
      ctx.toast(t('notify.saved'));
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  });
  Promise.all([ctx.api.get('/users/me/notifications/offline'), ctx.api.get('/users/me')])
    .then(([mine, me]) => build(mine.notifications, me))
    .catch((err) => { error.textContent = ctx.errorText(err); });
  return form;
}

// The custom status: an emoji and a short text beside one's name, until a time.
const UNTIL = [
  ['never', null], ['30m', 30 * 60e3], ['1h', 60 * 60e3], ['4h', 4 * 60 * 60e3], ['today', 'today'], ['week', 7 * 24 * 60 * 60e3],
];

function untilTime(choice) {
  const found = UNTIL.find(([k]) => k === choice);
  if (!found || found[1] == null) return null;
  if (found[1] === 'today') {
    const end = new Date();
    end.setHours(23, 59, 59, 0);
    return end.toISOString();
  }
  return new Date(Date.now() + found[1]).toISOString();
}

function statusBox(ctx) {
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'status-error' });
  const me = ctx.state.users.get(ctx.state.me.id) || ctx.state.me;
  const st = me.status && !(me.status.until && Date.parse(me.status.until) <= Date.now()) ? me.status : null;
  const save = async (status) => {
    error.textContent = '';
    try {
      const res = await ctx.api.patch('/users/me', { status });
      ctx.dispatch({ type: 'users_loaded', users: [res.user] });
      ctx.toast(t(status ? 'status.saved' : 'status.cleared'));
      if (!status) form.reset();
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  };
  const form = h('form', { class: 'card-box', 'data-testid': 'status-form', onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(form);
    save({ emoji: String(data.get('emoji') || '').trim(), text: String(data.get('text') || '').trim(),
      until: untilTime(String(data.get('until'))) });
  } },
  h('h3', {}, t('status.title')),
  h('div', { class: 'form-grid' },
    field(t('status.emoji'), h('input', { name: 'emoji', value: st ? st.emoji : '', maxlength: '16', placeholder: '🌴',
      class: 'emoji-input', 'data-testid': 'status-emoji' })),
    field(t('status.text'), h('input', { name: 'text', value: st ? st.text : '', maxlength: '100',
      placeholder: t('status.placeholder'), 'data-testid': 'status-text' })),
    field(t('status.until'), h('select', { name: 'until', 'data-testid': 'status-until' },
      UNTIL.map(([k]) => h('option', { value: k }, t(`status.until_${k}`))))),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'status-save' }, t('status.set')),
      h('button', { class: 'btn', type: 'button', 'data-testid': 'status-clear', onclick: () => save(null) }, t('status.clear')))),
  st && st.until ? h('p', { class: 'hint' }, t('status.until_at', { at: fmtDateTime(st.until) })) : null,
  error);
  return form;
}

// My sessions: every signed-in device, the current one marked; sign out one, or all
// the others (their live connections close at once).
function sessionsBox(ctx) {
  const box = h('div', { class: 'card-box', 'data-testid': 'sessions' });
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'sessions-error' });
  const act = async (run) => {
    error.textContent = '';
    try {
      await run();
      load();
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  };
  const row = (s) => h('li', { class: 'session-row', 'data-testid': 'session-row', dataset: { sid: s.id, current: String(s.current) } },
    h('div', { class: 'session-info' },
      h('div', { class: 'session-device' }, bdi(s.device || t('sessions.unknown_device')),
        s.current ? h('span', { class: 'current-pill', 'data-testid': 'session-current' }, t('sessions.current')) : null),
      h('div', { class: 'session-meta' },
        [s.last_seen_at ? t('sessions.last_seen', { at: fmtDateTime(s.last_seen_at) }) : t('sessions.signed_in', { at: fmtDateTime(s.created_at) }),
          s.address ? t('sessions.address', { address: s.address }) : null].filter(Boolean).join(' · '))),
    s.current ? null : h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'session-sign-out',
      onclick: () => act(() => ctx.api.del(`/sessions/${encodeURIComponent(s.id)}`)) }, t('sessions.sign_out')));
  const load = async () => {
    try {
      const { sessions } = await ctx.api.get('/sessions');
      const others = sessions.filter((s) => !s.current).length;
      clear(box);
      append(box, h('h3', {}, t('sessions.title')),
        h('ul', { class: 'session-list', 'data-testid': 'session-list' }, sessions.map(row)),
        others ? h('button', { class: 'btn btn-danger', type: 'button', 'data-testid': 'sessions-sign-out-others',
          onclick: async () => {
            if (!(await ctx.confirmDialog(t('sessions.others_confirm', { n: others }),
              { confirmLabel: t('sessions.sign_out_others'), danger: true }))) return;
            act(async () => {
              const res = await ctx.api.del('/sessions');
              ctx.toast(t('sessions.others_done', { n: res.revoked }));
            });
          } }, t('sessions.sign_out_others')) : h('p', { class: 'hint' }, t('sessions.only_this')),
        error);
    } catch (err) {
      error.textContent = ctx.errorText(err);
      append(box, error);
    }
  };
  append(box, h('h3', {}, t('sessions.title')));
  load();
  return box;
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
