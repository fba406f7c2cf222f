// The composer of an open conversation: the text box with its draft (kept in
// localStorage through ctx), Enter to send (never while an input method composes),
// ↑ to edit one's last message, the reply bar, @-mention autocomplete, and slash
// commands: `/` offers the registered ones; `/name text` naming one is invoked
// (its reply comes later: a message, or one only the sender sees), never sent as text.
// Files: the attach button, a pasted image and files dropped on the conversation go to
// the upload tray (files.js); a send carries the finished uploads as `attachments`.
import { h, append, clear, avatar, icon, bdi } from './dom.js';
import { t } from './i18n.js';
import { plainPreview } from './markdown.js';
import { msgStore, parseCommand, commandMatches } from './state.js';
import { convTitle } from './names.js';
import { createUploadTray, pastedFiles } from './files.js';
import { filesBody } from './file_kinds.js';
import { confirmEveryone, everyoneToConfirm } from './notifications.js';
import { openScheduleDialog, openScheduledPanel } from './scheduled.js';

const TYPING_SEND_EVERY_MS = 3000;
const MAX_BODY_BYTES = 16384;

export function createComposer(ctx, cid, { onSent, startEdit }) {
  let mention = null; // { items, index, start, kind: 'user' | 'command' }
  let lastTypingSent = 0;
  const state = () => ctx.state;
  const c = state().convs.get(cid);
  const ta = h('textarea', { class: 'composer-input', rows: '1', 'data-testid': 'composer', enterkeyhint: 'send',
    placeholder: t('composer.placeholder', { name: c ? convTitle(ctx, c) : '' }), 'aria-label': t('composer.label') });
  ta.value = ctx.loadDraft(cid);
  const replyBar = h('div', { class: 'reply-bar', hidden: true });
  const popup = h('ul', { class: 'mention-popup', hidden: true, role: 'listbox', 'data-testid': 'mention-popup' });
  const tray = createUploadTray(ctx, cid);
  const picker = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'attach-input',
    onchange: () => {
      tray.add([...picker.files]);
      picker.value = '';
      ta.focus();
    } });

  const grow = () => {
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight, 200)}px`;
  };
  const submit = (confirmed = false) => {
    const text = ta.value.replace(/^\s*\n/, '').trimEnd(); // not /\s+$/: quadratic on long blank runs
    const files = tray.sendable();
    if (files.busy) {
      ctx.toast(t('files.wait_uploads'), 'error');
      return;
    }
    if (!text.trim() && !files.ids.length) return;
    const command = files.ids.length ? null : parseCommand(text, state().commands);
    if (command) {
      onSent();
      ctx.invokeCommand(cid, command.command, command.text);
      ta.value = '';
      ctx.saveDraft(cid, '');
      grow();
      closeMentionPopup();
      return;
    }
    if (new TextEncoder().encode(text).length > MAX_BODY_BYTES) {
      ctx.toast(t('error.too_large'), 'error');
      return;
    }
    const conv = state().convs.get(cid) || state().details.get(cid);
    const everyone = confirmed === true ? null : everyoneToConfirm(ctx, conv, text);
    if (everyone) {
      // @all / @channel / @here to many people: asked first (notifications.js)
      confirmEveryone(ctx, conv, everyone).then((ok) => {
        if (ok === true && ta.value.replace(/^\s*\n/, '').trimEnd() === text) submit(true);
      });
      return;
    }
    onSent();
    ctx.sendMessage(cid, text.trim() ? text : filesBody(files.names), state().replyTo.get(cid), files.ids);
    tray.sent();
    ctx.dispatch({ type: 'reply_cleared', cid });
    renderReplyBar();
    ta.value = '';
    ctx.saveDraft(cid, '');
    grow();
    closeMentionPopup();
  };
  ta.addEventListener('input', () => {
    ctx.saveDraft(cid, ta.value);
    grow();
    updateMentionPopup();
    if (ta.value.trim() && Date.now() - lastTypingSent > TYPING_SEND_EVERY_MS) {
      lastTypingSent = Date.now();
      ctx.notify({ type: 'typing', conversation_id: cid });
    }
  });
  ta.addEventListener('keydown', (e) => {
    if (mention) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        mention.index = (mention.index + (e.key === 'ArrowDown' ? 1 : -1) + mention.items.length) % mention.items.length;
        renderMentionPopup();
        return;
      }
      if ((e.key === 'Enter' || e.key === 'Tab') && !e.isComposing) {
        e.preventDefault();
        chooseMention(mention.index);
        return;
      }
      if (e.key === 'Escape') {
        closeMentionPopup();
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    } else if (e.key === 'ArrowUp' && !ta.value) {
      const st = state();
      const own = [...msgStore(st, cid).bySeq.values()].filter((m) => m.sender_id === st.me.id && !m.deleted)
        .sort((a, b) => b.seq - a.seq)[0];
      if (own) {
        e.preventDefault();
        startEdit(own);
      }
    } else if (e.key === 'Escape' && state().replyTo.has(cid)) {
      ctx.dispatch({ type: 'reply_cleared', cid });
    }
  });
  ta.addEventListener('paste', (e) => {
    const files = pastedFiles(e);
    if (!files.length) return;
    e.preventDefault();
    tray.add(files);
  });
  ta.addEventListener('blur', () => setTimeout(closeMentionPopup, 150));
  setTimeout(grow, 0);
  const archivedNote = h('p', { class: 'composer-archived', hidden: true, 'data-testid': 'composer-archived' },
    t('conversation.archived_note'));
  // An announcement channel: only owners and moderators post; others read, react and
  // reply in threads. The server refuses their sends (403 forbidden) in any case.
  const announcementNote = h('p', { class: 'composer-archived', hidden: true, 'data-testid': 'composer-announcement' },
    t('conversation.announcement_note'));
  let locks = { archived: false, announcement: false };
  function applyLocks() {
    archivedNote.hidden = !locks.archived;
    announcementNote.hidden = locks.archived || !locks.announcement;
    const on = locks.archived || locks.announcement;
    ta.disabled = on;
    for (const b of el.querySelectorAll('button')) b.disabled = on;
  }
  const el = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); if (!ta.disabled) submit(); ta.focus(); } },
    archivedNote,
    announcementNote,
    replyBar,
    popup,
    tray.el,
    h('div', { class: 'composer-row' },
      h('button', { class: 'icon-btn attach-btn', type: 'button', 'data-testid': 'attach', title: t('files.attach'),
        'aria-label': t('files.attach'), onclick: () => picker.click() }, icon('clip', 20)),
      picker, ta,
      // "Send later": the text (as typed), the finished uploads and a time, in a
      // dialog (scheduled.js)
      h('button', { class: 'icon-btn schedule-btn', type: 'button', 'data-testid': 'send-later',
        title: t('scheduled.send_later'), 'aria-label': t('scheduled.send_later'),
        onclick: () => {
          const files = tray.sendable();
          if (files.busy) {
            ctx.toast(t('files.wait_uploads'), 'error');
            return;
          }
          openScheduleDialog(ctx, cid, { body: ta.value, attachments: files.ids, onDone: () => {
            tray.sent();
            ta.value = '';
            ctx.saveDraft(cid, '');
            grow();
          } });
        } }, '🕒'),
      h('button', { class: 'btn btn-primary send-btn', type: 'submit', 'data-testid': 'send', title: t('composer.send') },
        h('span', { class: 'send-label' }, t('composer.send')), h('span', { class: 'send-icon', 'aria-hidden': 'true' }, icon('send', 18)))),
    h('div', { class: 'composer-hint' }, t('composer.hint'),
      // "N scheduled" in this conversation (scheduled.js renderScheduledBadges)
      h('button', { class: 'link-btn composer-scheduled', type: 'button', hidden: true, 'data-testid': 'composer-scheduled',
        dataset: { cid }, onclick: () => openScheduledPanel(ctx, cid) })));
  setTimeout(renderReplyBar, 0);

  function renderReplyBar() {
    const st = state();
    const seq = st.replyTo.get(cid);
    clear(replyBar);
    replyBar.hidden = !seq;
    if (!seq) return;
    const m = msgStore(st, cid).bySeq.get(seq);
    append(replyBar,
      h('div', { class: 'reply-bar-text' },
        h('span', { class: 'reply-bar-label' }, t('composer.replying_to', { name: m ? ctx.userName(m.sender_id) : `#${seq}` })),
        h('span', { class: 'reply-bar-preview' }, m ? (m.deleted ? t('message.recalled') : plainPreview(m.body, 100)) : '')),
      h('button', { class: 'icon-btn', type: 'button', title: t('common.cancel'), 'aria-label': t('common.cancel'),
        onclick: () => ctx.dispatch({ type: 'reply_cleared', cid }) }, '✕'));
  }

  function mentionCandidates(query) {
    const st = state();
    const d = st.details.get(cid);
    if (!d) return [];
    const q = query.toLowerCase();
    return (d.members || []).map((m) => st.users.get(m.user_id)).filter(Boolean)
      .filter((u) => u.id !== st.me.id)
      .filter((u) => !q || u.username.toLowerCase().startsWith(q) || (u.display_name || '').toLowerCase().includes(q))
      .sort((a, b) => (a.username.toLowerCase().startsWith(q) ? 0 : 1) - (b.username.toLowerCase().startsWith(q) ? 0 : 1)
        || a.username.localeCompare(b.username))
      .slice(0, 8);
  }

  function updateMentionPopup() {
    const before = ta.value.slice(0, ta.selectionStart);
    const commands = commandMatches(state().commands, before);
    if (commands.length) {
      mention = { kind: 'command', items: commands, index: 0, start: 0 };
      renderMentionPopup();
      return;
    }
    const m = /(?:^|\s)@([\w.\-]*)$/.exec(before);
    if (!m) {
      closeMentionPopup();
      return;
    }
    const items = mentionCandidates(m[1]);
    if (!items.length) {
      closeMentionPopup();
      return;
    }
    mention = { kind: 'user', items, index: 0, start: ta.selectionStart - m[1].length - 1 };
    renderMentionPopup();
  }

  function renderMentionPopup() {
    clear(popup);
    popup.hidden = !mention;
    if (!mention) return;
    if (mention.kind === 'command') {
      mention.items.forEach((c, i) => popup.append(h('li', {
        class: `mention-item command-item${i === mention.index ? ' active' : ''}`, role: 'option',
        'aria-selected': String(i === mention.index), 'data-testid': 'command-item',
        onmousedown: (e) => { e.preventDefault(); chooseMention(i); },
      }, h('span', { class: 'command-name' }, `/${c.name}`),
      c.usage ? h('span', { class: 'command-usage' }, bdi(c.usage)) : null,
      h('span', { class: 'mention-user' }, bdi(c.description || t('command.no_description'))))));
      return;
    }
    mention.items.forEach((u, i) => popup.append(h('li', {
      class: `mention-item${i === mention.index ? ' active' : ''}`, role: 'option', 'aria-selected': String(i === mention.index),
      'data-testid': 'mention-item',
      onmousedown: (e) => { e.preventDefault(); chooseMention(i); },
    }, avatar(u.id, u.display_name || u.username, { size: 'xs' }),
    h('span', { class: 'mention-name' }, bdi(u.display_name || u.username)),
    h('span', { class: 'mention-user' }, `@${u.username}`))));
  }

  function chooseMention(i) {
    if (!mention) return;
    const u = mention.items[i];
    const insert = mention.kind === 'command' ? `/${u.name} ` : `@${u.username} `;
    const end = ta.selectionStart;
    ta.value = ta.value.slice(0, mention.start) + insert + ta.value.slice(end);
    const caret = mention.start + insert.length;
    ta.setSelectionRange(caret, caret);
    ctx.saveDraft(cid, ta.value);
    closeMentionPopup();
    ta.focus();
  }

  function closeMentionPopup() {
    mention = null;
    popup.hidden = true;
    clear(popup);
  }

  return {
    el,
    renderReplyBar,
    addFiles: (files) => tray.add(files),
    detach: () => tray.detach(),
    closeMentionPopup,
    startReply(m) {
      ctx.dispatch({ type: 'reply_started', message: m });
      renderReplyBar();
      ta.focus();
    },
    focus() {
      ta.focus();
    },
    // An archived conversation is read-only: no composing, a note says why.
    setArchived(on) {
      locks = { ...locks, archived: Boolean(on) };
      applyLocks();
    },
    // An announcement channel where the caller may not post: disabled, a note says why.
    setAnnouncementOnly(on) {
      locks = { ...locks, announcement: Boolean(on) };
      applyLocks();
    },
  };
}
