// The pinned messages of a conversation (docs/protocol.md, "Pinned messages"): a panel
// listing them, newest pin first, with "unpin" for owners, moderators and admins;
// pinning is a message action. REST: GET /conversations/{cid}/pins, PUT / DELETE
// /conversations/{cid}/pins/{seq}. The panel reloads itself on the conversation's
// message_pinned / message_unpinned events (state.js counts them in pinsVersion).
import { h, clear, bdi } from './dom.js';
import { t } from './i18n.js';
import { plainPreview } from './markdown.js';
import { fmtDateTime } from './format.js';
import { canModerate } from './state.js';

export async function setPinned(ctx, cid, seq, on) {
  const path = `/conversations/${encodeURIComponent(cid)}/pins/${seq}`;
  try {
    if (on) await ctx.api.put(path);
    else await ctx.api.del(path);
    ctx.toast(on ? t('pins.pinned') : t('pins.unpinned'));
  } catch (err) {
    ctx.toast(ctx.errorText(err), 'error');
  }
}

export function openPinsPanel(ctx, cid) {
  ctx.openModal(t('pins.title'), () => {
    const list = h('ul', { class: 'files-panel', 'data-testid': 'pins-panel' });
    const status = h('p', { class: 'hint' }, t('common.loading'));
    let version = -1;
    const row = (p) => {
      const m = p.message || {};
      const c = ctx.state.convs.get(cid) || ctx.state.details.get(cid);
      return h('li', { class: 'files-panel-row', 'data-testid': 'pin-row', dataset: { seq: p.seq } },
        h('span', { class: 'file-icon', 'aria-hidden': 'true' }, '📌'),
        h('span', { class: 'file-meta' },
          h('span', { class: 'file-name', 'data-testid': 'pin-body' },
            m.deleted ? t('message.recalled') : bdi(plainPreview(m.body || ''))),
          h('span', { class: 'file-size' }, [bdi(ctx.userName(m.sender_id) || ''),
            t('pins.by', { name: ctx.userName(p.pinned_by) || '' }),
            p.pinned_at ? fmtDateTime(p.pinned_at) : ''].filter(Boolean).map((x, i) => (i ? [' · ', x] : x)))),
        canModerate(ctx.state, c)
          ? h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'unpin',
            onclick: () => setPinned(ctx, cid, p.seq, false) }, t('pins.unpin'))
          : null);
    };
    const load = async () => {
      version = ctx.state.pinsVersion.get(cid) || 0;
      try {
        const res = await ctx.api.get(`/conversations/${encodeURIComponent(cid)}/pins`);
        clear(list);
        for (const p of res.pins || []) list.append(row(p));
        status.hidden = !!list.childNodes.length;
        status.textContent = list.childNodes.length ? '' : t('pins.none');
      } catch (err) {
        status.hidden = false;
        status.textContent = ctx.errorText(err);
      }
    };
    load();
    // Reload when a pin event of this conversation arrives while the panel is open.
    const timer = setInterval(() => {
      if (!list.isConnected) { clearInterval(timer); return; }
      if ((ctx.state.pinsVersion.get(cid) || 0) !== version) load();
    }, 250);
    return h('div', { class: 'modal-body' }, status, list);
  }, { wide: true, testid: 'pins-dialog' });
}
