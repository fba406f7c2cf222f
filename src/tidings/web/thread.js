// The thread side panel of an open conversation (docs/web.md "Threads"): the root, its
// replies (GET …/messages?thread_root_seq=, then live `message` events), the follow
// toggle, and the thread's own composer with "also send to the conversation". The
// replies' unread count is the thread's own, apart from the conversation's.
import { h, append, clear, avatar, bdi } from './dom.js';
import { t } from './i18n.js';
import { renderMarkdown } from './markdown.js';
import { fmtTime, fmtDateTime } from './format.js';
import { msgStore, threadKey } from './state.js';
import { confirmEveryone, everyoneToConfirm } from './notifications.js';

const MAX_BODY_BYTES = 16384;

// The "N replies" line under a root in the timeline (null when it has no thread).
export function threadLine(ctx, m) {
  const st = ctx.state;
  const th = st.threads.get(threadKey(m.conversation_id, m.seq));
  if (!th || !th.reply_count) return null;
  const unread = th.following ? th.unread || 0 : 0;
  return h('button', { class: 'thread-line', type: 'button', 'data-testid': 'thread-summary',
    onclick: (e) => { e.stopPropagation(); ctx.dispatch({ type: 'thread_opened', cid: m.conversation_id, root: m.seq }); } },
  h('span', { class: 'thread-avatars' }, (th.participants || []).slice(0, 3).map((uid) => avatar(uid, ctx.userName(uid), { size: 'xs' }))),
  h('span', { class: 'thread-count', 'data-testid': 'thread-count' }, t('thread.replies', { n: th.reply_count })),
  unread ? h('span', { class: 'badge thread-unread', 'data-testid': 'thread-unread' }, String(unread)) : null,
  th.last_reply_at ? h('span', { class: 'thread-last' }, t('thread.last_reply', { time: fmtTime(th.last_reply_at) })) : null);
}

export function createThreadPanel(ctx, cid) {
  const state = () => ctx.state;
  const el = h('aside', { class: 'thread-panel', hidden: true, 'data-testid': 'thread-panel' });
  const list = h('div', { class: 'thread-replies', 'data-testid': 'thread-replies' });
  const rootBox = h('div', { class: 'thread-root', 'data-testid': 'thread-root' });
  const title = h('h3', { class: 'thread-title' }, t('thread.title'));
  const follow = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'thread-follow', onclick: () => toggleFollow() });
  const ta = h('textarea', { class: 'composer-input', rows: '2', 'data-testid': 'thread-composer',
    placeholder: t('thread.placeholder'), 'aria-label': t('thread.placeholder'),
    onkeydown: (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    } });
  const also = h('input', { type: 'checkbox', 'data-testid': 'thread-also' });
  append(el,
    h('div', { class: 'panel-head' }, title, follow,
      h('button', { class: 'icon-btn', type: 'button', title: t('common.close'), 'aria-label': t('common.close'),
        'data-testid': 'thread-close', onclick: () => ctx.dispatch({ type: 'thread_closed' }) }, '✕')),
    rootBox, list,
    h('form', { class: 'thread-compose', onsubmit: (e) => { e.preventDefault(); submit(); } },
      ta,
      h('label', { class: 'thread-also' }, also, ' ', t('thread.also_to_conversation')),
      h('button', { class: 'btn btn-primary btn-small', type: 'submit', 'data-testid': 'thread-send' }, t('composer.send'))));

  function open() {
    const th = state().thread;
    return th && th.cid === cid ? th : null;
  }

  function submit(confirmed = false) {
    const th = open();
    const text = ta.value.trim();
    if (!th || !text) return;
    if (new TextEncoder().encode(text).length > MAX_BODY_BYTES) {
      ctx.toast(t('error.too_large'), 'error');
      return;
    }
    const conv = state().convs.get(cid) || state().details.get(cid);
    const everyone = confirmed === true ? null : everyoneToConfirm(ctx, conv, text);
    if (everyone) { // @all / @channel / @here to many people: asked first
      confirmEveryone(ctx, conv, everyone).then((ok) => { if (ok === true && ta.value.trim() === text) submit(true); });
      return;
    }
    ctx.sendMessage(cid, text, null, [], { thread_root_seq: th.root, also_to_conversation: also.checked });
    ta.value = '';
    also.checked = false;
  }

  async function toggleFollow() {
    const th = open();
    if (!th) return;
    const held = state().threads.get(threadKey(cid, th.root));
    const on = !(held && held.following);
    try {
      const path = `/conversations/${cid}/threads/${th.root}/follow`;
      const res = on ? await ctx.api.put(path) : await ctx.api.del(path);
      ctx.dispatch({ type: 'thread_state', cid, root: th.root, thread: res.thread });
    } catch (err) {
      ctx.toast(ctx.errorText(err), 'error');
    }
  }

  function item(m) {
    const name = ctx.userName(m.sender_id);
    const body = m.deleted ? h('div', { class: 'msg-body msg-recalled' }, t('message.recalled'))
      : h('div', { class: 'msg-body', 'data-testid': 'thread-reply-body' }, renderMarkdown(m.body || '', { me: state().me.username }));
    // not `.msg`: the timeline's own selectors (and tests) see the timeline only
    return h('div', { class: `thread-msg${m.pending ? ' pending' : ''}`, 'data-testid': 'thread-reply', dataset: { seq: m.seq ?? '' } },
      avatar(m.sender_id, name),
      h('div', { class: 'msg-main' },
        h('div', { class: 'msg-head' },
          h('span', { class: 'msg-sender' }, bdi(name)),
          m.created_at ? h('time', { class: 'msg-time', datetime: m.created_at, title: fmtDateTime(m.created_at) },
            fmtTime(m.created_at)) : null,
          m.also_to_conversation ? h('span', { class: 'thread-also-tag' }, t('thread.also_sent')) : null),
        body));
  }

  function render() {
    const th = open();
    el.hidden = !th;
    if (!th) return;
    const st = state();
    const key = threadKey(cid, th.root);
    const held = st.threads.get(key);
    const root = msgStore(st, cid).bySeq.get(th.root) || (held && held.root);
    clear(rootBox);
    if (root) rootBox.append(item(root));
    follow.textContent = held && held.following ? t('thread.unfollow') : t('thread.follow');
    follow.setAttribute('aria-pressed', String(!!(held && held.following)));
    title.textContent = held && held.reply_count ? `${t('thread.title')} · ${t('thread.replies', { n: held.reply_count })}`
      : t('thread.title');
    const replies = [...(st.threadReplies.get(key) || new Map()).values()];
    const pending = ctx.outbox().filter((p) => p.conversation_id === cid && p.thread_root_seq === th.root)
      .map((p) => ({ ...p, sender_id: st.me.id, pending: true }));
    replies.sort((a, b) => a.seq - b.seq);
    clear(list);
    for (const m of [...replies, ...pending]) list.append(item(m));
    if (!replies.length && !pending.length) list.append(h('div', { class: 'no-messages' }, t('thread.empty')));
    list.scrollTop = list.scrollHeight;
  }

  return { el, render, focus: () => ta.focus() };
}
