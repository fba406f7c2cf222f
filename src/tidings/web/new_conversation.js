// The "new conversation" dialog (direct, group or channel) and opening a direct
// conversation with someone.
import { h, clear } from './dom.js';
import { t } from './i18n.js';

export function openNewConversation(ctx, kind = 'direct') {
  ctx.openModal(t('new.title'), (close) => {
    let current = kind;
    const chosen = new Map();
    const chips = h('div', { class: 'chips' });
    const nameField = h('label', { class: 'field' }, h('span', {}, t('conversation.name')),
      h('input', { name: 'name', maxlength: '80', 'data-testid': 'new-name' }));
    const topicField = h('label', { class: 'field' }, h('span', {}, t('conversation.topic')),
      h('input', { name: 'topic', maxlength: '200', 'data-testid': 'new-topic' }));
    // Channel options: private (invite only, not listed) and announcement (only owners
    // and moderators post).
    const privateBox = h('input', { type: 'checkbox', name: 'private', 'data-testid': 'new-private' });
    const announcementBox = h('input', { type: 'checkbox', name: 'announcement', 'data-testid': 'new-announcement' });
    const channelOptions = h('div', { class: 'field' },
      h('label', { class: 'check' }, privateBox, ' ', t('new.private')),
      h('label', { class: 'check' }, announcementBox, ' ', t('new.announcement')));
    const errorBox = h('div', { class: 'form-error', role: 'alert' });
    const renderChips = () => {
      clear(chips);
      for (const u of chosen.values()) {
        chips.append(h('span', { class: 'chip' }, u.display_name || u.username,
          h('button', { type: 'button', class: 'chip-x', 'aria-label': t('common.remove'),
            onclick: () => { chosen.delete(u.id); renderChips(); } }, '✕')));
      }
    };
    const picker = ctx.userPicker({
      placeholder: t('new.members_placeholder'), testid: 'new-member', inline: true,
      keepOpen: () => current !== 'direct',
      exclude: () => new Set(chosen.keys()),
      onPick: (u) => {
        if (current === 'direct') chosen.clear();
        chosen.set(u.id, u);
        renderChips();
      },
    });
    const tabs = h('div', { class: 'segmented', role: 'tablist' });
    const hint = h('p', { class: 'hint' });
    const renderKind = () => {
      clear(tabs);
      for (const k of ['direct', 'group', 'channel']) {
        tabs.append(h('button', { type: 'button', role: 'tab', class: `seg${k === current ? ' active' : ''}`,
          'aria-selected': String(k === current), 'data-testid': `kind-${k}`,
          onclick: () => {
            current = k;
            if (k === 'direct' && chosen.size > 1) {
              const first = chosen.values().next().value;
              chosen.clear();
              chosen.set(first.id, first);
              renderChips();
            }
            renderKind();
          } }, t(`kind.${k}`)));
      }
      nameField.hidden = current === 'direct';
      topicField.hidden = current !== 'channel';
      channelOptions.hidden = current !== 'channel';
      hint.textContent = t(`new.hint_${current}`);
    };
    const form = h('form', { class: 'modal-body', onsubmit: async (e) => {
      e.preventDefault();
      errorBox.textContent = '';
      const body = { kind: current, member_ids: [...chosen.keys()] };
      const name = form.querySelector('input[name=name]').value.trim();
      const topic = form.querySelector('input[name=topic]').value.trim();
      if (current !== 'direct') {
        if (name) body.name = name;
        if (current === 'channel' && topic) body.topic = topic;
        if (current === 'channel' && privateBox.checked) body.private = true;
        if (current === 'channel' && announcementBox.checked) body.announcement = true;
        if (current === 'channel' && !name) {
          errorBox.textContent = t('new.need_name');
          return;
        }
      }
      if (current === 'direct' && chosen.size !== 1) {
        errorBox.textContent = t('new.need_person');
        return;
      }
      if (current === 'group' && chosen.size < 1) {
        errorBox.textContent = t('new.need_people');
        return;
      }
      try {
        const res = await ctx.api.post('/conversations', body);
        ctx.dispatch({ type: 'conversation_upserted', conversation: res.conversation });
        await ctx.loadDetail(res.conversation.id, { quiet: true });
        close();
        ctx.go(`#/c/${encodeURIComponent(res.conversation.id)}`);
      } catch (err) {
        errorBox.textContent = ctx.errorText(err);
      }
    } }, tabs, hint, nameField, topicField, channelOptions,
    h('div', { class: 'field' }, h('span', {}, t('new.members')), chips, picker),
    errorBox,
    h('div', { class: 'modal-actions' },
      h('button', { class: 'btn', type: 'button', onclick: () => close() }, t('common.cancel')),
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'new-create' }, t('new.create'))));
    renderKind();
    return form;
  }, { testid: 'new-conversation-dialog' });
}

export async function openDirect(ctx, uid) {
  try {
    const res = await ctx.api.post('/conversations', { kind: 'direct', member_ids: [uid] });
    ctx.dispatch({ type: 'conversation_upserted', conversation: res.conversation });
    await ctx.loadDetail(res.conversation.id, { quiet: true });
    ctx.go(`#/c/${encodeURIComponent(res.conversation.id)}`);
  } catch (err) {
    ctx.toast(ctx.errorText(err), 'error');
  }
}
