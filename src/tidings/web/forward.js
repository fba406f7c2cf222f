// Forwarding (docs/protocol.md, "Forwarding"): a message action opens a picker of the
// conversations one may post in; choosing one forwards the message there (REST: POST
// /conversations/{cid}/messages/{seq}/forward, a fresh client_msg_id: a retry never
// forwards twice). A forwarded message carries `forwarded_from`: it shows "Forwarded",
// with the original's conversation when one is a member of it; clicking asks the server
// where the original is (GET …/forwarded-from: answered only to those who may read it)
// and opens it there.
import { h, clear, bdi } from './dom.js';
import { t } from './i18n.js';
import { uuid } from './ui.js';
import { mayPost } from './state.js';
import { convTitle } from './names.js';

export function openForwardPicker(ctx, m) {
  ctx.openModal(t('forward.title'), (close) => {
    const filter = h('input', { class: 'filter', type: 'search', placeholder: t('forward.filter'),
      'aria-label': t('forward.filter'), 'data-testid': 'forward-filter' });
    const list = h('ul', { class: 'files-panel', 'data-testid': 'forward-targets' });
    const clientMsgId = uuid(); // one per picker: a double click forwards once
    const send = async (c) => {
      try {
        await ctx.api.post(`/conversations/${encodeURIComponent(m.conversation_id)}/messages/${m.seq}/forward`,
          { conversation_id: c.id, client_msg_id: clientMsgId });
        close();
        ctx.toast(t('forward.done', { name: convTitle(ctx, c) }));
      } catch (err) {
        ctx.toast(ctx.errorText(err), 'error');
      }
    };
    const fill = () => {
      const q = filter.value.trim().toLowerCase();
      clear(list);
      const targets = [...ctx.state.convs.values()]
        .filter((c) => !c.archived_at && mayPost(ctx.state, c))
        .filter((c) => !q || convTitle(ctx, c).toLowerCase().includes(q))
        .sort((a, b) => convTitle(ctx, a).localeCompare(convTitle(ctx, b)));
      for (const c of targets) {
        list.append(h('li', { class: 'files-panel-row' },
          h('button', { class: 'link-btn file-meta', type: 'button', 'data-testid': 'forward-target',
            dataset: { cid: c.id }, onclick: () => send(c) }, h('span', { class: 'file-name' }, bdi(convTitle(ctx, c))))));
      }
      if (!targets.length) list.append(h('li', { class: 'hint' }, t('forward.none')));
    };
    filter.addEventListener('input', fill);
    fill();
    return h('div', { class: 'modal-body' }, filter, list);
  }, { testid: 'forward-dialog' });
}

// The "Forwarded" label of a forwarded message (null for any other).
export function forwardedLabel(ctx, m) {
  const ref = m.forwarded_from;
  if (!ref) return null;
  const source = ctx.state.convs.get(ref.conversation_id);
  const text = source ? t('forward.from', { name: convTitle(ctx, source) }) : t('forward.forwarded');
  return h('button', { class: 'forwarded-tag', type: 'button', 'data-testid': 'forwarded-label',
    onclick: async (e) => {
      e.stopPropagation();
      try {
        const res = await ctx.api.get(
          `/conversations/${encodeURIComponent(m.conversation_id)}/messages/${m.seq}/forwarded-from`);
        ctx.openMessage(res.origin.conversation_id, res.origin.seq);
      } catch {
        ctx.toast(t('forward.unavailable'));
      }
    } }, '↪ ', bdi(text));
}
