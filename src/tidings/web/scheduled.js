// My scheduled messages (docs/protocol.md, "Scheduled messages"): private to me until
// sent. The composer's 🕒 ("Send later") opens a dialog with the text and a time; the
// "Scheduled" entry of the sidebar (and the composer's "N scheduled" link, for the open
// conversation) opens a panel listing them, the soonest first, with Edit and Cancel
// (Dismiss for a failed one, which shows why). REST: POST
// /conversations/{cid}/scheduled, GET /scheduled, PATCH / DELETE /scheduled/{id}. The
// list is state.scheduled (state.js), loaded once and kept by the
// scheduled_message_created / _updated / _deleted events of every tab of mine; the
// panel and the badges redraw on its changes (app.js, part "scheduled").
import { h, clear, bdi } from './dom.js';
import { t } from './i18n.js';
import { plainPreview } from './markdown.js';
import { fmtDateTime } from './format.js';
import { convTitle } from './names.js';
import { scheduledList } from './state.js';

const pad = (n) => String(n).padStart(2, '0');

// A Date as the value of an <input type="datetime-local"> (local time, to the minute).
export function toLocalInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// The value of such an input as an RFC 3339 time (UTC), or null if it is none.
export function fromLocalInput(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value || '')) return null;
  const d = new Date(value); // a date-time without a zone is local time
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// The default time offered: the next full hour at least 30 minutes away.
export function defaultSendAt(now = new Date()) {
  const d = new Date(now.getTime() + 30 * 60 * 1000);
  d.setMinutes(0, 0, 0);
  d.setHours(d.getHours() + 1);
  return d;
}

export async function loadScheduled(ctx) {
  try {
    const res = await ctx.api.get('/scheduled');
    ctx.dispatch({ type: 'scheduled_loaded', scheduled: res.scheduled || [] });
  } catch { /* the list stays as it was; the events keep it */ }
}

// The dialog of a new scheduled message (`body` and the uploads' ids `attachments` from
// the composer; `onDone()` once it is scheduled) or of an edit (`item`: its text and time).
export function openScheduleDialog(ctx, cid, { body = '', attachments = [], item = null, onDone = null } = {}) {
  ctx.openModal(t(item ? 'scheduled.edit_title' : 'scheduled.send_later'), (close) => {
    const text = h('textarea', { rows: '4', 'data-testid': 'schedule-body',
      'aria-label': t('composer.label') });
    text.value = item ? item.body : body;
    const when = h('input', { type: 'datetime-local', 'data-testid': 'schedule-at',
      'aria-label': t('scheduled.when') });
    when.value = toLocalInput(item ? new Date(item.send_at) : defaultSendAt());
    const error = h('p', { class: 'form-error', hidden: true, role: 'alert', 'data-testid': 'schedule-error' });
    const fail = (message) => { error.hidden = false; error.textContent = message; };
    const submit = async (e) => {
      e.preventDefault();
      const sendAt = fromLocalInput(when.value);
      if (!text.value.trim()) return fail(t('scheduled.empty_body'));
      if (!sendAt || Date.parse(sendAt) <= Date.now()) return fail(t('scheduled.past'));
      try {
        if (item) {
          await ctx.api.patch(`/scheduled/${encodeURIComponent(item.id)}`, { body: text.value, send_at: sendAt });
          ctx.toast(t('scheduled.updated'));
        } else {
          const sent = { body: text.value, send_at: sendAt };
          if (attachments.length) sent.attachments = attachments;
          await ctx.api.post(`/conversations/${encodeURIComponent(cid)}/scheduled`, sent);
          ctx.toast(t('scheduled.scheduled', { time: fmtDateTime(sendAt) }));
        }
        close();
        if (onDone) onDone();
      } catch (err) {
        fail(ctx.errorText(err));
      }
      return undefined;
    };
    const files = item ? item.attachments || [] : attachments;
    return h('form', { class: 'modal-body', onsubmit: submit },
      h('label', { class: 'field' }, h('span', {}, t('composer.label')), text),
      files.length ? h('p', { class: 'hint', 'data-testid': 'schedule-files' }, t('scheduled.files', { n: files.length })) : null,
      h('label', { class: 'field' }, h('span', {}, t('scheduled.when')), when),
      error,
      h('div', { class: 'modal-actions' },
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, t('common.cancel')),
        h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'schedule-submit' },
          t(item ? 'common.save' : 'scheduled.schedule'))));
  }, { testid: 'schedule-dialog' });
}

async function cancelScheduled(ctx, item) {
  try {
    await ctx.api.del(`/scheduled/${encodeURIComponent(item.id)}`);
    if (item.state !== 'failed') ctx.toast(t('scheduled.cancelled'));
  } catch (err) {
    ctx.toast(ctx.errorText(err), 'error');
  }
}

// The panel of my scheduled messages (of conversation `cid`, or all of them).
export function openScheduledPanel(ctx, cid = null) {
  ctx.openModal(t('scheduled.title'), () => {
    const list = h('ul', { class: 'files-panel', 'data-testid': 'scheduled-panel' });
    const status = h('p', { class: 'hint' });
    let version = -1;
    const row = (x) => {
      const c = ctx.state.convs.get(x.conversation_id) || ctx.state.details.get(x.conversation_id);
      const when = x.state === 'failed' ? t('scheduled.failed', { reason: x.failure || '' })
        : x.state === 'sending' ? t('scheduled.sending') : t('scheduled.at', { time: fmtDateTime(x.send_at) });
      return h('li', { class: 'files-panel-row', 'data-testid': 'scheduled-row', dataset: { id: x.id, state: x.state } },
        h('span', { class: 'file-icon', 'aria-hidden': 'true' }, x.state === 'failed' ? '⚠️' : '🕒'),
        h('span', { class: 'file-meta' },
          h('span', { class: 'file-name', 'data-testid': 'scheduled-body' }, bdi(plainPreview(x.body || '', 120)),
            (x.attachments || []).length ? ` 📎${x.attachments.length}` : ''),
          h('span', { class: 'file-size', 'data-testid': 'scheduled-when' },
            c ? [bdi(convTitle(ctx, c)), ' · ', when] : [t('scheduled.left_conversation'), ' · ', when])),
        x.state === 'pending'
          ? h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'scheduled-edit',
            onclick: () => openScheduleDialog(ctx, x.conversation_id, { item: x }) }, t('scheduled.edit'))
          : null,
        x.state !== 'sending'
          ? h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'scheduled-cancel',
            onclick: () => cancelScheduled(ctx, x) }, t(x.state === 'failed' ? 'scheduled.dismiss' : 'scheduled.cancel'))
          : null);
    };
    const draw = () => {
      version = ctx.state.scheduledVersion;
      clear(list);
      for (const x of scheduledList(ctx.state, cid)) list.append(row(x));
      status.hidden = !!list.childNodes.length;
      status.textContent = list.childNodes.length ? '' : t('scheduled.none');
    };
    draw();
    // Redraw when my scheduled list changes (this tab or another) while the panel is open.
    const timer = setInterval(() => {
      if (!list.isConnected) { clearInterval(timer); return; }
      if (ctx.state.scheduledVersion !== version) draw();
    }, 250);
    return h('div', { class: 'modal-body' }, status, list);
  }, { wide: true, testid: 'scheduled-dialog' });
}

// The counts beside the sidebar's "Scheduled" and in the open conversation's composer.
export function renderScheduledBadges(ctx) {
  const all = ctx.state.scheduled.size;
  for (const badge of document.querySelectorAll('[data-testid="nav-scheduled-count"]')) {
    badge.textContent = all ? String(all) : '';
    badge.hidden = !all;
  }
  for (const link of document.querySelectorAll('[data-testid="composer-scheduled"]')) {
    const n = scheduledList(ctx.state, link.dataset.cid).length;
    link.textContent = n ? t('scheduled.count', { n }) : '';
    link.hidden = !n;
  }
}
