// My saved messages (docs/protocol.md, "Saved messages"): private to me. Saving is a
// message action (🔖, "Unsave" once saved); the "Saved" entry of the sidebar opens a
// panel listing them, newest save first, each opening its message in its conversation,
// with "Remove". REST: GET /saved (cursor pages), PUT / DELETE
// /conversations/{cid}/messages/{seq}/saved. Other tabs follow by the message_saved /
// message_unsaved events (state.js keeps which are saved and counts the changes in
// savedVersion: an open panel reloads).
import { h, clear, bdi } from './dom.js';
import { t } from './i18n.js';
import { plainPreview } from './markdown.js';
import { fmtDateTime } from './format.js';
import { convTitle } from './names.js';

const PAGE = 50;

function path(cid, seq) {
  return `/conversations/${encodeURIComponent(cid)}/messages/${seq}/saved`;
}

export async function setSaved(ctx, cid, seq, on) {
  try {
    if (on) await ctx.api.put(path(cid, seq));
    else await ctx.api.del(path(cid, seq));
    ctx.toast(on ? t('saved.saved') : t('saved.removed'));
  } catch (err) {
    ctx.toast(ctx.errorText(err), 'error');
  }
}

// Which messages I saved, for the save buttons (the first page: the newest saves; an
// older one shows "Save" until the panel's pages or an event tell otherwise).
export async function loadSaved(ctx) {
  try {
    const res = await ctx.api.get('/saved', { limit: 200 });
    ctx.dispatch({ type: 'saved_loaded', saved: res.saved || [] });
  } catch { /* the buttons show "Save"; saving again changes nothing on the server */ }
}

export function openSavedPanel(ctx) {
  ctx.openModal(t('saved.title'), (close) => {
    const list = h('ul', { class: 'files-panel', 'data-testid': 'saved-panel' });
    const status = h('p', { class: 'hint' }, t('common.loading'));
    const more = h('button', { class: 'btn btn-small', type: 'button', hidden: true, 'data-testid': 'saved-more' },
      t('saved.more'));
    let version = -1;
    let cursor = null;
    const row = (x) => {
      const m = x.message || {};
      const c = ctx.state.convs.get(x.conversation_id) || ctx.state.details.get(x.conversation_id);
      return h('li', { class: 'files-panel-row', 'data-testid': 'saved-row', dataset: { cid: x.conversation_id, seq: x.seq } },
        h('span', { class: 'file-icon', 'aria-hidden': 'true' }, '🔖'),
        h('button', { class: 'file-meta link-btn', type: 'button', 'data-testid': 'saved-open',
          onclick: () => { close(); ctx.openMessage(x.conversation_id, x.seq); } },
          h('span', { class: 'file-name', 'data-testid': 'saved-body' }, bdi(plainPreview(m.body || '', 120))),
          h('span', { class: 'file-size' }, [bdi(ctx.userName(m.sender_id) || ''),
            c ? bdi(convTitle(ctx, c)) : t('saved.left_conversation'),
            x.saved_at ? t('saved.at', { time: fmtDateTime(x.saved_at) }) : '']
            .filter(Boolean).map((v, i) => (i ? [' · ', v] : v)))),
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'saved-remove',
          onclick: () => setSaved(ctx, x.conversation_id, x.seq, false) }, t('saved.remove')));
    };
    const load = async (next) => {
      if (!next) version = ctx.state.savedVersion;
      try {
        const res = await ctx.api.get('/saved', next ? { limit: PAGE, cursor: next } : { limit: PAGE });
        if (!next) clear(list);
        for (const x of res.saved || []) list.append(row(x));
        cursor = res.next_cursor || null;
        more.hidden = !cursor;
        status.hidden = !!list.childNodes.length;
        status.textContent = list.childNodes.length ? '' : t('saved.none');
      } catch (err) {
        status.hidden = false;
        status.textContent = ctx.errorText(err);
      }
    };
    more.onclick = () => { if (cursor) load(cursor); };
    load(null);
    // Reload when my saved list changes (this tab or another) while the panel is open.
    const timer = setInterval(() => {
      if (!list.isConnected) { clearInterval(timer); return; }
      if (ctx.state.savedVersion !== version) load(null);
    }, 250);
    return h('div', { class: 'modal-body' }, status, list, more);
  }, { wide: true, testid: 'saved-dialog' });
}
