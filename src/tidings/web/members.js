// The members panel of an open conversation: members with presence, adding people
// (groups: any member; channels: the owner or an admin), removing them, leaving,
// renaming and setting the topic. The server has the last word on each.
import { h, append, clear, avatar, bdi } from './dom.js';
import { t } from './i18n.js';
import { canModerate } from './state.js';
import { statusChip } from './names.js';

export function createMembersPanel(ctx, cid) {
  const state = () => ctx.state;
  const el = h('aside', { class: 'members-panel', hidden: !state().membersOpen, 'data-testid': 'members-panel' });
  let built = false;

  function build() {
    built = true;
    clear(el);
    append(el,
      h('div', { class: 'panel-head' },
        h('h3', { class: 'members-title' }, t('members.title')),
        h('button', { class: 'icon-btn', type: 'button', title: t('common.close'), 'aria-label': t('common.close'),
          onclick: () => ctx.dispatch({ type: 'members_toggled', open: false }) }, '✕')),
      h('div', { class: 'members-settings' }),
      h('div', { class: 'members-add' }),
      h('ul', { class: 'members-list', 'data-testid': 'members-list' }));
  }

  function render() {
    const st = state();
    el.hidden = !st.membersOpen;
    if (!st.membersOpen) return;
    const c = st.convs.get(cid) || st.details.get(cid);
    const d = st.details.get(cid);
    if (!built || !el.firstChild) build();
    el.querySelector('.members-title').textContent = d ? `${t('members.title')} · ${(d.members || []).length}` : t('members.title');
    const manage = c && c.kind !== 'direct' && canModerate(st, c);
    const settings = el.querySelector('.members-settings');
    if (manage && d && !settings.firstChild) {
      const name = h('input', { value: d.name || '', placeholder: t('conversation.name'), 'aria-label': t('conversation.name') });
      const topic = h('input', { value: d.topic || '', placeholder: t('conversation.topic'), 'aria-label': t('conversation.topic') });
      settings.append(h('form', { class: 'settings-form', onsubmit: async (e) => {
        e.preventDefault();
        try {
          const res = await ctx.api.patch(`/conversations/${cid}`, { name: name.value.trim(), topic: topic.value.trim() });
          ctx.dispatch({ type: 'conversation_upserted', conversation: res.conversation });
          ctx.toast(t('common.saved'));
        } catch (err) {
          ctx.toast(ctx.errorText(err), 'error');
        }
      } }, name, topic, h('button', { class: 'btn btn-small', type: 'submit' }, t('common.save'))));
    }
    const addBox = el.querySelector('.members-add');
    const mayAdd = c && c.kind !== 'direct' && (c.kind === 'group' || canModerate(st, c));
    if (mayAdd && !addBox.firstChild) {
      addBox.append(ctx.userPicker({
        placeholder: t('members.add_placeholder'), testid: 'add-member',
        exclude: () => new Set((state().details.get(cid)?.members || []).map((m) => m.user_id)),
        onPick: async (u) => {
          try {
            await ctx.api.post(`/conversations/${cid}/members`, { user_ids: [u.id] });
            await ctx.loadDetail(cid, { quiet: true });
            ctx.toast(t('members.added', { name: u.display_name || u.username }));
          } catch (err) {
            ctx.toast(ctx.errorText(err), 'error');
          }
        },
      }));
    }
    const ul = el.querySelector('.members-list');
    clear(ul);
    if (!d) {
      ul.append(h('li', { class: 'loading-row' }, t('common.loading')));
      return;
    }
    const members = [...(d.members || [])].sort((a, b) => (a.role === 'owner' ? 0 : 1) - (b.role === 'owner' ? 0 : 1)
      || ctx.userName(a.user_id).localeCompare(ctx.userName(b.user_id)));
    for (const m of members) ul.append(memberRow(st, c, m));
  }

  function memberRow(st, c, m) {
    const u = st.users.get(m.user_id);
    const self = m.user_id === st.me.id;
    let action = null;
    if (c.kind !== 'direct' && self) {
      action = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'leave', onclick: async () => {
        if (!(await ctx.confirmDialog(t('members.leave_confirm'), { confirmLabel: t('members.leave'), danger: true }))) return;
        try {
          await ctx.api.del(`/conversations/${cid}/members/${encodeURIComponent(state().me.id)}`);
          ctx.dispatch({ type: 'conversation_left', cid });
          ctx.go('#/');
        } catch (err) {
          ctx.toast(ctx.errorText(err), 'error');
        }
      } }, t('members.leave'));
    } else if (c.kind !== 'direct' && canModerate(st, c)) {
      action = h('button', { class: 'icon-btn icon-danger', type: 'button', title: t('members.remove'),
        'aria-label': t('members.remove'), 'data-testid': 'remove-member', onclick: async () => {
          if (!(await ctx.confirmDialog(t('members.remove_confirm', { name: ctx.userName(m.user_id) }),
            { confirmLabel: t('members.remove'), danger: true }))) return;
          try {
            await ctx.api.del(`/conversations/${cid}/members/${encodeURIComponent(m.user_id)}`);
            await ctx.loadDetail(cid, { quiet: true });
          } catch (err) {
            ctx.toast(ctx.errorText(err), 'error');
          }
        } }, '✕');
    }
    return h('li', { class: 'member', dataset: { uid: m.user_id } },
      avatar(m.user_id, ctx.userName(m.user_id), { size: 'sm', presence: self ? 'online' : st.presence.get(m.user_id) || 'offline' }),
      h('div', { class: 'member-names' },
        h('div', { class: 'member-name' }, bdi(ctx.userName(m.user_id))),
        statusChip(ctx, m.user_id),
        h('div', { class: 'member-sub' }, [u ? `@${u.username}` : '', self ? t('members.you') : ''].filter(Boolean).join(' · '))),
      m.role === 'owner' ? h('span', { class: 'tag' }, t('role.owner')) : null,
      action);
  }

  return { el, render };
}
