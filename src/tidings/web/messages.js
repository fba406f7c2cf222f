// The message pane of an open conversation: its header, the messages (day separators,
// grouping, the "new messages" line, receipts, reactions, edit, recall, reply quotes)
// and the typing line. The composer (composer.js) and the members panel (members.js)
// sit beside it. createChatView(ctx, cid) builds one; its state (node cache, scroll
// position) is its own, gone when another conversation is opened.
import { h, append, clear, reconcile, avatar, icon, bdi } from './dom.js';
import { t, isolate } from './i18n.js';
import { renderMarkdown, plainPreview } from './markdown.js';
import { ts, fmtTime, fmtShortTime, fmtDateTime, dayKey, dayLabel } from './format.js';
import { msgStore, directPeer, canModerate, inTimeline, threadKey, threadUnread, mayPost, isSaved } from './state.js';
import { convTitle, convAvatar, presenceLabel, statusChip, typingNames, backButton } from './names.js';
import { createComposer } from './composer.js';
import { createMembersPanel } from './members.js';
import { attachmentsNode, acceptDrops, openFilesPanel } from './files.js';
import { createThreadPanel, threadLine } from './thread.js';
import { openPinsPanel, setPinned } from './pins.js';
import { openNotifyMenu, isMuted } from './notifications.js';
import { EVERYONE } from './notify.js';

const EVERYONE_WORDS = new Set(EVERYONE);
import { setSaved } from './saved.js';
import { openForwardPicker, forwardedLabel } from './forward.js';

const QUICK_REACTIONS = ['👍', '❤️', '😄', '🎉', '😮', '🙏'];
const GROUP_WINDOW_MS = 5 * 60 * 1000;

export function createChatView(ctx, cid) {
  const elCache = new Map(); // key -> { sig, el } of message nodes
  let stickToBottom = true;
  let scrollAnchor = null;
  let focused = null; // the state's `focus` this view has scrolled to already
  const state = () => ctx.state;
  const NEAR_EDGE = 300; // px from the top or the bottom: load the next page

  const list = h('div', { class: 'messages', 'data-testid': 'messages', role: 'log', 'aria-live': 'polite',
    onscroll: () => {
      const below = list.scrollHeight - list.scrollTop - list.clientHeight;
      const s = msgStore(state(), cid);
      stickToBottom = below < 60 && !s.hasNewer;
      jump.hidden = stickToBottom && !s.hasNewer;
      if (list.scrollTop < NEAR_EDGE) loadOlder();
      if (below < NEAR_EDGE && s.hasNewer) ctx.loadNewer(cid);
      ctx.markRead();
    } }, h('div', { class: 'messages-inner' }));
  const inner = list.firstChild;
  new ResizeObserver(() => { if (stickToBottom) list.scrollTop = list.scrollHeight; }).observe(list);
  const jump = h('button', { class: 'jump-latest', type: 'button', hidden: true, 'data-testid': 'jump-latest', onclick: () => {
    stickToBottom = true;
    // After a jump the newest messages are not held: load them (the window goes).
    if (msgStore(state(), cid).hasNewer) ctx.loadLatestAgain(cid);
    list.scrollTop = list.scrollHeight;
  } }, t('conversation.jump_latest'), ' ↓');
  const header = h('header', { class: 'chat-header' });
  const typingLine = h('div', { class: 'typing-line', 'aria-live': 'polite', 'data-testid': 'typing' });
  const composer = createComposer(ctx, cid, {
    onSent: () => {
      stickToBottom = true;
      // Sent from a window after a jump: go to the newest, where the message will be.
      if (msgStore(state(), cid).hasNewer) ctx.loadLatestAgain(cid);
    },
    startEdit: (m) => ctx.dispatch({ type: 'edit_started', message: m }),
  });
  const members = createMembersPanel(ctx, cid);
  const threadPanel = createThreadPanel(ctx, cid);
  const column = h('div', { class: 'chat-column', 'data-testid': 'chat-column' }, list, jump, typingLine, composer.el);
  // Files dropped on the timeline or the composer are uploaded for the next send.
  acceptDrops(column, (files) => {
    const c = state().convs.get(cid) || state().details.get(cid);
    if (c && (c.archived_at || !mayPost(state(), c))) return;
    composer.addFiles(files);
  });
  const el = h('section', { class: 'chat', 'data-testid': 'chat', dataset: { cid } },
    header,
    h('div', { class: 'chat-body' }, column, members.el, threadPanel.el));

  function loadOlder() {
    const s = msgStore(state(), cid);
    if (s.loading || !s.hasMore || !s.loaded) return;
    const anchor = { height: list.scrollHeight, top: list.scrollTop };
    if (ctx.loadOlder(cid)) scrollAnchor = anchor; // rendered on the next frame
  }

  // ------------------------------------------------------------ header
  function renderHeader() {
    const st = state();
    const c = st.convs.get(cid) || st.details.get(cid);
    composer.setArchived(Boolean(c && c.archived_at));
    composer.setAnnouncementOnly(Boolean(c && c.announcement && !mayPost(st, c)));
    clear(header);
    if (!c) {
      // A conversation one has left, opened at a search result: readable up to then.
      const held = msgStore(st, cid).bySeq.size > 0;
      header.append(backButton(), h('div', { class: 'chat-title' },
        h('h2', { 'data-testid': 'chat-title' }, held ? t('search.unknown_conversation') : t('common.loading'))));
      return;
    }
    const d = st.details.get(c.id);
    let sub;
    if (c.kind === 'direct') {
      const peer = directPeer(st, c.id);
      const chip = peer ? statusChip(ctx, peer) : null;
      sub = peer ? [presenceLabel(ctx, peer), chip ? ' · ' : null, chip] : '';
    } else {
      const count = c.member_count || (d && d.members ? d.members.length : 0);
      sub = [c.topic, count ? t('members.count', { n: count }) : null].filter(Boolean).join(' · ');
    }
    append(header,
      backButton(),
      convAvatar(ctx, c, 'sm'),
      h('div', { class: 'chat-title' },
        h('h2', { 'data-testid': 'chat-title' }, bdi(convTitle(ctx, c))),
        h('div', { class: 'chat-sub' }, sub)),
      threadUnread(st, cid) ? h('span', { class: 'badge thread-unread', 'data-testid': 'thread-unread-total',
        title: t('thread.unread_total') }, t('thread.unread_badge', { n: threadUnread(st, cid) })) : null,
      st.convs.has(c.id) ? h('button', { class: `icon-btn${isMuted(c) ? ' active' : ''}`, type: 'button',
        title: t('notify.menu_title'), 'aria-label': t('notify.menu_title'), 'data-testid': 'open-notify',
        onclick: () => openNotifyMenu(ctx, cid) }, icon(isMuted(c) ? 'bell_off' : 'bell')) : null,
      h('button', { class: 'icon-btn', type: 'button', title: t('pins.title'), 'aria-label': t('pins.title'),
        'data-testid': 'open-pins', onclick: () => openPinsPanel(ctx, cid) }, icon('pin')),
      h('button', { class: 'icon-btn', type: 'button', title: t('files.panel_title'), 'aria-label': t('files.panel_title'),
        'data-testid': 'open-files', onclick: () => openFilesPanel(ctx, cid) }, icon('files')),
      h('button', { class: `icon-btn${st.membersOpen ? ' active' : ''}`, type: 'button', title: t('members.title'),
        'aria-label': t('members.title'), 'aria-pressed': String(st.membersOpen), 'data-testid': 'toggle-members',
        onclick: () => ctx.dispatch({ type: 'members_toggled' }) }, icon('users')));
  }

  // ------------------------------------------------------------ typing
  function renderTyping() {
    const names = typingNames(ctx, cid);
    let text = '';
    if (names.length === 1) text = t('typing.one', { name: names[0] });
    else if (names.length === 2) text = t('typing.two', { a: names[0], b: names[1] });
    else if (names.length > 2) text = t('typing.many', { n: names.length });
    typingLine.textContent = text;
    typingLine.classList.toggle('active', !!text);
  }

  // ------------------------------------------------------------ messages
  function cached(key, sig, build) {
    const hit = elCache.get(key);
    if (hit && hit.sig === sig) return hit.el;
    const node = build();
    elCache.set(key, { sig, el: node });
    return node;
  }

  function receiptText(c, m, lastSentBy) {
    const st = state();
    if (!c || c.kind === 'channel') return '';
    const d = st.details.get(c.id);
    if (!d) return '';
    const others = (d.members || []).filter((x) => x.user_id !== st.me.id);
    // Sending a message moves the sender's read position too.
    const readers = others.filter((x) => Math.max(x.read_seq || 0, lastSentBy.get(x.user_id) || 0) >= m.seq).length;
    if (!readers) return t('receipt.sent');
    if (c.kind === 'direct' || readers === others.length) return t('receipt.read');
    return t('receipt.read_by', { n: readers });
  }

  function renderMessages() {
    const st = state();
    const s = msgStore(st, cid);
    const c = st.convs.get(cid) || st.details.get(cid);
    const items = [];
    if (s.loading && s.loadingMode !== 'newer') {
      items.push(cached('loading', 'x', () => h('div', { class: 'loading-row' }, h('span', { class: 'spinner' }), t('common.loading'))));
    } else if (s.loaded && !s.hasMore) {
      const title = convTitle(ctx, c);
      items.push(cached('start', title, () => h('div', { class: 'conv-start' },
        h('div', { class: 'conv-start-title' }, bdi(title)),
        h('div', {}, t('conversation.start')))));
    }
    // thread replies not also sent to the conversation are in their thread's panel
    const confirmed = [...s.bySeq.values()].filter(inTimeline).sort((a, b) => a.seq - b.seq);
    const pending = ctx.outbox().filter((p) => p.conversation_id === cid && inTimeline(p))
      .map((p) => ({ ...p, sender_id: st.me.id, pending: true, reactions: {} }));
    const all = [...confirmed, ...pending];
    const readBefore = st.firstUnread.get(cid);
    const firstUnreadMsg = readBefore == null ? null
      : confirmed.find((m) => m.seq > readBefore && m.sender_id !== st.me.id);
    let lastOwn = null;
    const lastSentBy = new Map();
    for (const m of confirmed) {
      if (m.sender_id === st.me.id && !m.deleted) lastOwn = m;
      lastSentBy.set(m.sender_id, m.seq);
    }
    const d = st.details.get(cid);
    const memberVersion = d ? (d.members || []).length : 0;
    let prev = null;
    for (const m of all) {
      const dk = dayKey(m.created_at);
      if (!prev || dayKey(prev.created_at) !== dk) {
        const label = dayLabel(m.created_at);
        items.push(cached(`day-${dk}`, label, () => h('div', { class: 'day-sep', role: 'separator', 'data-testid': 'day-separator' },
          h('span', {}, label))));
      }
      if (firstUnreadMsg && m === firstUnreadMsg && s.bySeq.size) {
        items.push(cached('new-divider', 'x', () => h('div', { class: 'new-divider' }, h('span', {}, t('conversation.new_messages')))));
      }
      const cont = !!prev && dayKey(prev.created_at) === dk && prev.sender_id === m.sender_id
        && ts(m.created_at) - ts(prev.created_at) < GROUP_WINDOW_MS && !m.reply_to_seq && m !== firstUnreadMsg;
      items.push(messageNode(c, m, cont, m === lastOwn ? receiptText(c, m, lastSentBy) : '', memberVersion));
      prev = m;
    }
    // After a jump: newer messages exist that are not held yet.
    if (s.hasNewer) {
      items.push(s.loading && s.loadingMode === 'newer'
        ? cached('newer-loading', 'x', () => h('div', { class: 'loading-row' }, h('span', { class: 'spinner' }), t('common.loading')))
        : cached('newer', 'x', () => h('div', { class: 'newer-row' },
          h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'load-newer', onclick: () => ctx.loadNewer(cid) },
            t('conversation.load_newer')))));
    }
    // Replies only the caller sees (slash commands): after the messages, never stored.
    const ephemeral = st.ephemeral.get(cid) || [];
    for (const e of ephemeral) {
      items.push(cached(`eph-${e.key}`, JSON.stringify([e.body, e.notice, ctx.userName(e.sender_id)]),
        () => buildEphemeral(e)));
    }
    if (s.loaded && !all.length && !ephemeral.length) {
      items.push(cached('empty', 'x', () => h('div', { class: 'no-messages' }, t('conversation.empty'))));
    }
    reconcile(inner, items);
    if (s.hasNewer) stickToBottom = false;
    if (scrollAnchor) {
      list.scrollTop = scrollAnchor.top + (list.scrollHeight - scrollAnchor.height);
      scrollAnchor = null;
    } else if (stickToBottom) {
      list.scrollTop = list.scrollHeight;
    }
    focusTarget(st);
    jump.hidden = stickToBottom && !s.hasNewer;
    ctx.markRead();
    if (s.loaded && s.hasMore && !s.loading && list.scrollHeight <= list.clientHeight + 40) loadOlder();
  }

  // The message a search result opened: scrolled to the middle once it is rendered,
  // and marked for a moment.
  function focusTarget(st) {
    const f = st.focus;
    if (!f || f === focused || f.cid !== cid) return;
    const target = inner.querySelector(`.msg[data-seq="${f.seq}"]`);
    if (!target) return;
    focused = f;
    stickToBottom = false;
    target.scrollIntoView({ block: 'center' });
    target.classList.remove('jump-target');
    void target.offsetWidth; // restart the animation when the same message is opened again
    target.classList.add('jump-target');
    setTimeout(() => target.classList.remove('jump-target'), 2400);
  }

  function messageNode(c, m, cont, receipt, memberVersion) {
    const st = state();
    const own = m.sender_id === st.me.id;
    const pending = !!m.pending;
    const key = pending ? `p-${m.client_msg_id}` : `s-${m.seq}`;
    const editing = !pending && st.editing && st.editing.cid === m.conversation_id && st.editing.seq === m.seq;
    const replied = m.reply_to_seq ? msgStore(st, m.conversation_id).bySeq.get(m.reply_to_seq) : null;
    const th = m.seq != null ? st.threads.get(threadKey(m.conversation_id, m.seq)) : null;
    const sig = JSON.stringify([m.body, m.edited_at, m.deleted, m.reactions, m.status, m.attachments, cont, editing, receipt,
      th && [th.reply_count, th.unread, th.following, th.participants, th.last_reply_at],
      ctx.userName(m.sender_id), replied && [replied.body, replied.deleted, ctx.userName(replied.sender_id)],
      st.pickerFor === key, st.actionsFor === key, memberVersion, c && c.role,
      m.seq != null && isSaved(st, m.conversation_id, m.seq),
      m.forwarded_from && st.convs.has(m.forwarded_from.conversation_id)]);
    return cached(key, sig, () => buildMessage(c, m, { own, pending, key, cont, editing, replied, receipt }));
  }

  function buildMessage(c, m, { own, pending, key, cont, editing, replied, receipt }) {
    const st = state();
    const name = ctx.userName(m.sender_id);
    const classes = ['msg'];
    if (own) classes.push('own');
    if (cont) classes.push('cont');
    if (pending) classes.push(m.status === 'failed' ? 'failed' : 'pending');
    if (m.deleted) classes.push('deleted');
    if (st.actionsFor === key) classes.push('show-actions');
    const d = st.details.get(m.conversation_id);
    const memberNames = new Set(d ? (d.members || []).map((x) => (st.users.get(x.user_id) || {}).username)
      .filter(Boolean).map((u) => u.toLowerCase()) : []);
    // @all / @channel / @here (a message that mentions everyone): shown like a mention of me
    const everyone = m.mentions_everyone ? EVERYONE_WORDS : null;
    if (everyone) classes.push('mentions-everyone');
    const mdOpts = { me: st.me.username, alsoMe: everyone,
      isMember: (u) => !d || memberNames.has(u.toLowerCase()) || (!!everyone && everyone.has(u.toLowerCase())) };

    let body;
    if (editing) body = buildEditor(m);
    else if (m.deleted) body = h('div', { class: 'msg-body msg-recalled' }, t('message.recalled'));
    else {
      body = h('div', { class: 'msg-body', 'data-testid': 'message-body' }, m.body ? renderMarkdown(m.body, mdOpts) : null,
        m.edited_at ? h('span', { class: 'msg-edited', title: fmtDateTime(m.edited_at) }, ` ${t('message.edited')}`) : null);
    }
    const files = m.deleted || editing ? null : pending ? pendingFiles(m) : attachmentsNode(ctx, m);

    const quote = m.reply_to_seq ? h('button', { class: 'reply-quote', type: 'button', onclick: (e) => {
      e.stopPropagation();
      const target = list.querySelector(`.msg[data-seq="${m.reply_to_seq}"]`);
      if (target) {
        target.scrollIntoView({ block: 'center', behavior: 'smooth' });
        target.classList.add('flash');
        setTimeout(() => target.classList.remove('flash'), 1200);
      }
    } }, replied
      ? [h('strong', {}, bdi(ctx.userName(replied.sender_id))), ' ',
        bdi(replied.deleted ? t('message.recalled') : plainPreview(replied.body, 90))]
      : t('message.reply_to', { seq: m.reply_to_seq })) : null;

    const reactions = Object.entries(m.reactions || {}).filter(([, users]) => users && users.length);
    const reactionRow = reactions.length ? h('div', { class: 'reactions' }, reactions.map(([emoji, users]) => h('button', {
      class: `reaction${users.includes(st.me.id) ? ' mine' : ''}`, type: 'button', 'data-testid': 'reaction',
      title: users.map((u) => isolate(ctx.userName(u))).join(', '),
      onclick: (e) => { e.stopPropagation(); toggleReaction(m, emoji); },
    }, h('span', { class: 'reaction-emoji' }, emoji), h('span', { class: 'reaction-count' }, String(users.length))))) : null;

    let status = null;
    if (pending && m.status === 'failed') {
      // why, where the server said (`rate_limited`: wait a little, then retry)
      const why = m.error ? t(`error.${m.error}`) : '';
      status = h('div', { class: 'msg-status status-failed', 'data-testid': 'message-failed' },
        h('span', {}, '⚠ ', t('message.failed')),
        why && why !== `error.${m.error}` ? h('span', { 'data-testid': 'failed-why' }, why) : null,
        h('button', { class: 'link-btn', type: 'button', 'data-testid': 'retry', onclick: () => ctx.retry(m.client_msg_id) },
          t('message.retry')),
        h('button', { class: 'link-btn', type: 'button', onclick: () => ctx.discard(m.client_msg_id) }, t('message.discard')));
    } else if (pending) {
      status = h('div', { class: 'msg-status status-pending', 'data-testid': 'message-pending' }, '◷ ', t('message.sending'));
    } else if (receipt) {
      status = h('div', { class: 'msg-status status-sent', 'data-testid': 'receipt' }, '✓ ', receipt);
    }

    let actions = null;
    if (!pending && !m.deleted) {
      const mayRecall = own || canModerate(st, c);
      actions = h('div', { class: 'msg-actions', role: 'toolbar' },
        h('button', { class: 'act', type: 'button', title: t('message.react'), 'aria-label': t('message.react'),
          'data-testid': 'act-react', onclick: (e) => {
            e.stopPropagation();
            ctx.dispatch({ type: 'picker_toggled', key });
          } }, '☺'),
        h('button', { class: 'act', type: 'button', title: t('message.reply'), 'aria-label': t('message.reply'),
          'data-testid': 'act-reply', onclick: (e) => { e.stopPropagation(); composer.startReply(m); } }, '↩'),
        h('button', { class: 'act', type: 'button', title: t('thread.reply_in_thread'), 'aria-label': t('thread.reply_in_thread'),
          'data-testid': 'act-thread', onclick: (e) => {
            e.stopPropagation();
            ctx.dispatch({ type: 'thread_opened', cid: m.conversation_id, root: m.thread_root_seq || m.seq });
          } }, '🧵'),
        own ? h('button', { class: 'act', type: 'button', title: t('message.edit'), 'aria-label': t('message.edit'),
          'data-testid': 'act-edit', onclick: (e) => {
            e.stopPropagation();
            ctx.dispatch({ type: 'edit_started', message: m });
          } }, '✎') : null,
        canModerate(st, c) && c && !c.archived_at ? h('button', { class: 'act', type: 'button', title: t('message.pin'),
          'aria-label': t('message.pin'), 'data-testid': 'act-pin',
          onclick: (e) => { e.stopPropagation(); setPinned(ctx, cid, m.seq, true); } }, '📌') : null,
        isSaved(st, cid, m.seq)
          ? h('button', { class: 'act act-on', type: 'button', title: t('saved.remove'), 'aria-label': t('saved.remove'),
            'aria-pressed': 'true', 'data-testid': 'act-unsave',
            onclick: (e) => { e.stopPropagation(); setSaved(ctx, cid, m.seq, false); } }, '🔖')
          : h('button', { class: 'act', type: 'button', title: t('message.save'), 'aria-label': t('message.save'),
            'aria-pressed': 'false', 'data-testid': 'act-save',
            onclick: (e) => { e.stopPropagation(); setSaved(ctx, cid, m.seq, true); } }, '🔖'),
        h('button', { class: 'act', type: 'button', title: t('forward.action'), 'aria-label': t('forward.action'),
          'data-testid': 'act-forward', onclick: (e) => { e.stopPropagation(); openForwardPicker(ctx, m); } }, '↪'),
        h('button', { class: 'act', type: 'button', title: t('unread.from_here'), 'aria-label': t('unread.from_here'),
          'data-testid': 'act-unread', onclick: (e) => { e.stopPropagation(); ctx.markUnread(cid, m.seq); } }, '◉'),
        mayRecall ? h('button', { class: 'act act-danger', type: 'button', title: t('message.recall'),
          'aria-label': t('message.recall'), 'data-testid': 'act-recall',
          onclick: (e) => { e.stopPropagation(); recall(m); } }, '⌫') : null);
    }
    const picker = st.pickerFor === key ? h('div', { class: 'reaction-picker', role: 'menu' },
      QUICK_REACTIONS.map((emoji) => h('button', { type: 'button', class: 'pick', 'data-testid': 'pick-reaction',
        onclick: (e) => {
          e.stopPropagation();
          ctx.dispatch({ type: 'picker_closed' });
          toggleReaction(m, emoji);
        } }, emoji))) : null;

    return h('div', {
      class: classes.join(' '), 'data-testid': 'message', dataset: { seq: m.seq ?? '', cmid: m.client_msg_id || '', key },
      onclick: (e) => {
        if (e.target.closest('a, button, textarea, input')) return;
        if (window.getSelection && String(window.getSelection())) return;
        ctx.dispatch({ type: 'actions_toggled', key });
      },
    },
    cont ? h('div', { class: 'gutter' }, h('time', { class: 'gutter-time', datetime: m.created_at, title: fmtDateTime(m.created_at) }, fmtShortTime(m.created_at)))
      : avatar(m.sender_id, name),
    h('div', { class: 'msg-main' },
      cont ? null : h('div', { class: 'msg-head' },
        h('span', { class: 'msg-sender', 'data-testid': 'message-sender' }, bdi(name)),
        h('time', { class: 'msg-time', datetime: m.created_at, title: fmtDateTime(m.created_at) }, fmtTime(m.created_at))),
      forwardedLabel(ctx, m), quote, body, files, reactionRow,
      m.thread_root_seq ? h('div', { class: 'thread-also-tag' }, t('thread.in_thread')) : threadLine(ctx, m),
      status),
    actions, picker);
  }

  // A message not stored yet carries the ids of its attachments only: say how many.
  function pendingFiles(m) {
    const n = (m.attachments || []).length;
    return n ? h('div', { class: 'attachments-pending hint' }, `📎 ${t('files.count', { n })}`) : null;
  }

  function buildEphemeral(e) {
    const st = state();
    const name = ctx.userName(e.sender_id);
    const notice = e.notice ? t(`command.notice_${e.notice}`, { name: e.command || '' }) : '';
    const text = notice && notice !== `command.notice_${e.notice}` ? notice : e.body;
    const body = e.notice ? h('div', { class: 'msg-body msg-notice' }, text)
      : h('div', { class: 'msg-body', 'data-testid': 'message-body' },
        renderMarkdown(e.body, { me: st.me.username, isMember: () => true }));
    return h('div', { class: 'msg ephemeral', 'data-testid': 'ephemeral', dataset: { key: e.key } },
      avatar(e.sender_id || 'x', name),
      h('div', { class: 'msg-main' },
        h('div', { class: 'msg-head' },
          h('span', { class: 'msg-sender' }, bdi(name)),
          h('time', { class: 'msg-time', datetime: e.at, title: fmtDateTime(e.at) }, fmtTime(e.at)),
          h('span', { class: 'ephemeral-label', 'data-testid': 'ephemeral-label' }, t('command.only_you'))),
        body),
      h('button', { class: 'icon-btn ephemeral-dismiss', type: 'button', title: t('command.dismiss'),
        'aria-label': t('command.dismiss'), 'data-testid': 'ephemeral-dismiss',
        onclick: () => ctx.dispatch({ type: 'ephemeral_dismissed', cid, key: e.key }) }, '✕'));
  }

  function buildEditor(m) {
    const ta = h('textarea', { class: 'edit-input', 'data-testid': 'edit-input', 'aria-label': t('message.edit'),
      oninput: (e) => ctx.dispatch({ type: 'edit_changed', text: e.target.value }),
      onkeydown: (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          saveEdit(m);
        } else if (e.key === 'Escape') {
          ctx.dispatch({ type: 'edit_ended' });
        }
      } });
    ta.value = state().editing.text;
    setTimeout(() => {
      if (document.activeElement !== ta) {
        ta.focus();
        ta.setSelectionRange(ta.value.length, ta.value.length);
      }
    }, 0);
    return h('div', { class: 'msg-editor' }, ta,
      h('div', { class: 'editor-actions' },
        h('span', { class: 'hint' }, t('message.edit_hint')),
        h('button', { class: 'btn btn-small', type: 'button', onclick: () => ctx.dispatch({ type: 'edit_ended' }) },
          t('common.cancel')),
        h('button', { class: 'btn btn-small btn-primary', type: 'button', 'data-testid': 'edit-save', onclick: () => saveEdit(m) },
          t('common.save'))));
  }

  async function saveEdit(m) {
    const editing = state().editing;
    const text = editing ? editing.text.trim() : '';
    if (!text) {
      ctx.toast(t('error.invalid_body'), 'error');
      return;
    }
    if (text === m.body) {
      ctx.dispatch({ type: 'edit_ended' });
      return;
    }
    try {
      const res = await ctx.api.patch(`/conversations/${m.conversation_id}/messages/${m.seq}`, { body: text });
      ctx.dispatch({ type: 'edit_ended' });
      ctx.dispatch({ type: 'message_updated', message: res.message });
    } catch (err) {
      ctx.toast(ctx.errorText(err), 'error');
    }
  }

  async function recall(m) {
    if (state().actionsFor) ctx.dispatch({ type: 'actions_toggled', key: state().actionsFor });
    if (!(await ctx.confirmDialog(t('message.recall_confirm'), { confirmLabel: t('message.recall'), danger: true }))) return;
    try {
      const res = await ctx.api.del(`/conversations/${m.conversation_id}/messages/${m.seq}`);
      if (res && res.message) ctx.dispatch({ type: 'message_updated', message: res.message });
    } catch (err) {
      ctx.toast(ctx.errorText(err), 'error');
    }
  }

  async function toggleReaction(m, emoji) {
    const mine = ((m.reactions || {})[emoji] || []).includes(state().me.id);
    const path = `/conversations/${m.conversation_id}/messages/${m.seq}/reactions/${encodeURIComponent(emoji)}`;
    try {
      const res = mine ? await ctx.api.del(path) : await ctx.api.put(path);
      if (res && res.message) ctx.dispatch({ type: 'message_updated', message: res.message });
    } catch (err) {
      // over a cap (distinct emoji on the message, or one person's reactions on it)
      const cap = err.code === 'invalid_operation' && err.details && err.details.limit != null;
      ctx.toast(cap ? t('message.react_limit') : ctx.errorText(err), 'error');
    }
  }

  return {
    el,
    cid,
    render(parts) {
      const all = parts.has('all');
      if (all || parts.has('header')) renderHeader();
      if (all || parts.has('messages')) renderMessages();
      if (all || parts.has('typing')) renderTyping();
      if (all || parts.has('members')) members.render();
      if (all || parts.has('thread')) threadPanel.render();
      if (all || parts.has('reply')) composer.renderReplyBar();
    },
    // True when the newest message is on screen (so it counts as read).
    atBottom() {
      return list.isConnected && list.scrollHeight - list.scrollTop - list.clientHeight <= 80;
    },
    focusComposer() {
      composer.focus();
    },
    closePopups() {
      composer.closeMentionPopup();
    },
  };
}
