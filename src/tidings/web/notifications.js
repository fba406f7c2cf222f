// Notifications in the browser (docs/web.md, "Notifications"): the Notification API
// while the tab is hidden, for the messages notify.js's policy (the server's, mirrored)
// says notify; the favicon badge with the unread count; the per-conversation menu
// (level and mute: PUT /conversations/{cid}/notifications); the do not disturb box of
// the account page (PUT /users/me/notifications); the confirmation before @all /
// @channel / @here to many people. Permission is only ever asked from a click.
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';
import { fmtDateTime } from './format.js';
import { shouldNotify, isMentioned, LEVELS, defaultLevel, mutedAt, dndActive, needsEveryoneConfirm } from './notify.js';
import { plainPreview } from './markdown.js';
import { convTitle } from './names.js';

const RECENT_MS = 2 * 60e3; // a replayed message older than this (a resume) notifies nobody
const shown = new Set(); // `${cid}:${seq}` already shown: a message notifies once

export function notificationsSupported() {
  return typeof window !== 'undefined' && 'Notification' in window;
}

export function permission() {
  return notificationsSupported() ? Notification.permission : 'unsupported';
}

// Ask for permission: call only from a user gesture (a click).
export async function askPermission(ctx) {
  if (!notificationsSupported()) return 'unsupported';
  try {
    const answer = await Notification.requestPermission();
    ctx.toast(t(answer === 'granted' ? 'notify.enabled' : 'notify.blocked'), answer === 'granted' ? 'info' : 'error');
    return answer;
  } catch {
    return Notification.permission;
  }
}

// A message new to this client: notify when the tab is hidden, permission is given, and
// the policy says so.
export function maybeNotify(ctx, m, now = Date.now()) {
  const state = ctx.state;
  if (!state.me || !m || document.visibilityState !== 'hidden' || permission() !== 'granted') return;
  if (now - Date.parse(m.created_at) > RECENT_MS) return;
  const key = `${m.conversation_id}:${m.seq}`;
  if (shown.has(key)) return;
  const c = state.convs.get(m.conversation_id);
  if (!c) return;
  const prefs = state.notifyPrefs || {};
  const ok = shouldNotify({
    dnd: prefs.dnd, zone: prefs.time_zone, member: c.notifications, kind: c.kind,
    mentioned: isMentioned(state.me.id, m, true), own: m.sender_id === state.me.id, now,
  });
  if (!ok) return;
  shown.add(key);
  const who = ctx.userName(m.sender_id) || '';
  const title = c.kind === 'direct' ? who : `${who} · ${convTitle(ctx, c)}`;
  try {
    const n = new Notification(title, { body: m.deleted ? '' : plainPreview(m.body || '', 140),
      tag: m.conversation_id, icon: 'icons/icon-192.png' });
    n.onclick = () => {
      window.focus();
      location.hash = `#/c/${encodeURIComponent(m.conversation_id)}`;
      n.close();
    };
  } catch { /* a browser that only notifies from its service worker: nothing shown */ }
}

// The favicon with a red badge of the unread count (the plain icon when none).
let baseIcon = null;
let lastBadge = -1;
export function setFaviconBadge(count) {
  const link = document.querySelector('link[rel="icon"]');
  if (!link || count === lastBadge) return;
  lastBadge = count;
  if (!baseIcon) baseIcon = link.getAttribute('href');
  if (!count) {
    link.setAttribute('href', baseIcon);
    return;
  }
  const img = new Image();
  img.onload = () => {
    if (count !== lastBadge) return;
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 32;
    const g = canvas.getContext('2d');
    if (!g) return;
    g.drawImage(img, 0, 0, 32, 32);
    g.fillStyle = '#e5484d';
    g.beginPath();
    g.arc(22, 10, 10, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#fff';
    g.font = 'bold 14px sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(count > 9 ? '9+' : String(count), 22, 11);
    link.setAttribute('href', canvas.toDataURL('image/png'));
    link.dataset.badge = String(count);
  };
  img.src = baseIcon;
}

// ---------------------------------------------------------------- the conversation menu
const MUTE_FOR = [['1h', 3600e3], ['8h', 8 * 3600e3], ['24h', 24 * 3600e3], ['week', 7 * 24 * 3600e3], ['forever', null]];

export async function saveConversationNotifications(ctx, cid, body) {
  try {
    const res = await ctx.api.put(`/conversations/${encodeURIComponent(cid)}/notifications`, body);
    ctx.dispatch({ type: 'conversation_notifications', cid, notifications: res.notifications });
    return res.notifications;
  } catch (err) {
    ctx.toast(ctx.errorText(err), 'error');
    return null;
  }
}

// Whether the conversation is muted now (for the header's bell and the list).
export function isMuted(c, now = Date.now()) {
  return !!c && mutedAt(c.notifications, now);
}

export function openNotifyMenu(ctx, cid) {
  ctx.openModal(t('notify.menu_title'), (close) => {
    const c = ctx.state.convs.get(cid);
    if (!c) return h('div', { class: 'modal-body' }, t('common.loading'));
    const n = c.notifications || {};
    const muted = isMuted(c);
    const level = h('div', { class: 'radio-list', role: 'radiogroup', 'data-testid': 'notify-levels' },
      [null, ...LEVELS].map((v) => h('label', { class: 'radio-row' },
        h('input', { type: 'radio', name: 'level', value: v || '', checked: (n.level || null) === v,
          'data-testid': `notify-level-${v || 'default'}`,
          onchange: async () => { if (await saveConversationNotifications(ctx, cid, { level: v })) close(); } }),
        h('span', {}, v ? t(`notify.level_${v}`) : t('notify.level_default', { level: t(`notify.level_${defaultLevel(c.kind)}`) })))));
    const mute = muted
      ? h('div', { class: 'modal-actions' },
        h('p', { class: 'hint', 'data-testid': 'notify-muted-until' },
          n.muted_until ? t('notify.muted_until', { at: fmtDateTime(n.muted_until) }) : t('notify.muted_forever')),
        h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'notify-unmute',
          onclick: async () => { if (await saveConversationNotifications(ctx, cid, { muted: false })) close(); } },
        t('notify.unmute')))
      : h('div', { class: 'chip-row', 'data-testid': 'notify-mute' },
        MUTE_FOR.map(([k, dur]) => h('button', { class: 'btn btn-small', type: 'button', 'data-testid': `notify-mute-${k}`,
          onclick: async () => {
            const body = dur == null ? { muted: true } : { muted_until: new Date(Date.now() + dur).toISOString() };
            if (await saveConversationNotifications(ctx, cid, body)) close();
          } }, t(`notify.mute_${k}`))));
    const perm = permission();
    return h('div', { class: 'modal-body' },
      h('h3', {}, t('notify.level_title')), level,
      h('h3', {}, t('notify.mute_title')), mute,
      perm === 'default'
        ? h('button', { class: 'link-btn', type: 'button', 'data-testid': 'notify-permission',
          onclick: () => askPermission(ctx) }, t('notify.enable_browser'))
        : null);
  }, { testid: 'notify-dialog' });
}

// ---------------------------------------------------------------- @all confirmation
// The everyone-mention to confirm before sending `body` into `c` (null: send at once):
// it mentions everyone and `c` has more members than the server's
// `mention_all.confirm_members` (10 until it is known).
export function everyoneToConfirm(ctx, c, body) {
  const prefs = ctx.state.notifyPrefs || {};
  const limit = prefs.mention_all ? prefs.mention_all.confirm_members : 10;
  return needsEveryoneConfirm(body, (c && c.member_count) || 0, limit);
}

// Ask; resolves true to send.
export function confirmEveryone(ctx, c, word) {
  return ctx.confirmDialog(t('notify.confirm_everyone', { word: `@${word}`, n: (c && c.member_count) || 0 }),
    { confirmLabel: t('notify.confirm_send') });
}

// ---------------------------------------------------------------- do not disturb (account)
const DND_FOR = [['30m', 30 * 60e3], ['1h', 3600e3], ['4h', 4 * 3600e3], ['tomorrow', 'tomorrow']];

function dndUntil(choice) {
  const found = DND_FOR.find(([k]) => k === choice);
  if (!found) return null;
  if (found[1] === 'tomorrow') {
    const end = new Date();
    end.setDate(end.getDate() + 1);
    end.setHours(8, 0, 0, 0);
    return end.toISOString();
  }
  return new Date(Date.now() + found[1]).toISOString();
}

export function dndBox(ctx) {
  const box = h('form', { class: 'card-box', 'data-testid': 'dnd-form' }, h('h3', {}, t('dnd.title')),
    h('p', { class: 'hint' }, t('common.loading')));
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'dnd-error' });
  const save = async (body) => {
    error.textContent = '';
    try {
      const res = await ctx.api.put('/users/me/notifications', body);
      ctx.dispatch({ type: 'notify_prefs_loaded', prefs: res });
      ctx.toast(t('dnd.saved'));
      build(res);
    } catch (err) {
      error.textContent = ctx.errorText(err);
    }
  };
  const build = (res) => {
    const dnd = res.dnd || {};
    const on = dndActive(dnd, res.time_zone, Date.now());
    const untilOn = dnd.until && Date.parse(dnd.until) > Date.now();
    const start = h('input', { type: 'time', name: 'start', value: dnd.schedule ? dnd.schedule.start : '22:00',
      'data-testid': 'dnd-start' });
    const end = h('input', { type: 'time', name: 'end', value: dnd.schedule ? dnd.schedule.end : '08:00',
      'data-testid': 'dnd-end' });
    const scheduled = h('input', { type: 'checkbox', checked: !!dnd.schedule, 'data-testid': 'dnd-scheduled' });
    const perm = permission();
    clear(box);
    append(box, h('h3', {}, t('dnd.title')),
      h('p', { class: `hint${on ? ' dnd-on' : ''}`, 'data-testid': 'dnd-state' }, on ? t('dnd.on') : t('dnd.off')),
      h('div', { class: 'chip-row' },
        untilOn
          ? [h('span', { class: 'hint', 'data-testid': 'dnd-until' }, t('dnd.until_at', { at: fmtDateTime(dnd.until) })),
            h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'dnd-until-off',
              onclick: () => save({ dnd_until: null }) }, t('dnd.turn_off'))]
          : DND_FOR.map(([k]) => h('button', { class: 'btn btn-small', type: 'button', 'data-testid': `dnd-for-${k}`,
            onclick: () => save({ dnd_until: dndUntil(k) }) }, t(`dnd.for_${k}`)))),
      h('label', { class: 'check' }, scheduled, h('span', {}, t('dnd.schedule'))),
      h('div', { class: 'form-grid' },
        h('label', { class: 'field' }, h('span', {}, t('dnd.from')), start),
        h('label', { class: 'field' }, h('span', {}, t('dnd.to')), end),
        h('div', { class: 'field field-button' },
          h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'dnd-save' }, t('dnd.save')))),
      h('p', { class: 'hint' }, res.time_zone ? t('dnd.zone', { zone: res.time_zone }) : t('dnd.zone_device')),
      perm === 'unsupported' ? null : h('p', { class: 'hint', 'data-testid': 'notify-permission-state' },
        t(`notify.permission_${perm}`), ' ',
        perm === 'default' ? h('button', { class: 'link-btn', type: 'button', 'data-testid': 'notify-permission',
          onclick: async () => { await askPermission(ctx); build(res); } }, t('notify.enable_browser')) : null),
      error);
    box.onsubmit = (e) => {
      e.preventDefault();
      save({ dnd_schedule: scheduled.checked ? { start: start.value.slice(0, 5), end: end.value.slice(0, 5) } : null });
    };
  };
  ctx.api.get('/users/me/notifications').then(build).catch((err) => {
    clear(box);
    append(box, h('h3', {}, t('dnd.title')), error);
    error.textContent = ctx.errorText(err);
  });
  return box;
}
