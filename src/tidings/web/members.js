// The members panel of an open conversation: members with presence and roles, adding
// people (groups: any member; channels: owners, moderators, admins), removing them,
// leaving, renaming and setting the topic; owners and admins give roles and change the
// settings (private, announcement, shared history). The server has the last word.
import { h, append, clear, avatar, bdi } from './dom.js';
import { t } from './i18n.js';
import { canManage, canModerate } from './state.js';
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
      h('div', { class: 'members-flags', 'data-testid': 'members-flags' }),
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
    // Owners and admins: the settings private (channels), announcement, shared history.
    const flags = el.querySelector('.members-flags');
    clear(flags);
    if (c && d && c.kind !== 'direct' && canManage(st, c)) {
      const keys = c.kind === 'channel' ? ['private', 'announcement', 'shared_history'] : ['announcement', 'shared_history'];
      for (const key of keys) {
        const box = h('input', { type: 'checkbox', 'data-testid': `setting-${key}`, onchange: async () => {
          try {
            const res = await ctx.api.patch(`/conversations/${cid}`, { [key]: box.checked });
            ctx.dispatch({ type: 'conversation_upserted', conversation: res.conversation });
            ctx.toast(t('common.saved'));
          } catch (err) {
            box.checked = !box.checked;
            ctx.toast(ctx.errorText(err), 'error');
          }
        } });
        box.checked = Boolean(d[key]);
        flags.append(h('label', { class: 'check' }, box, ' ', t(`conversation.settings.${key}`)));
      }
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
    const rank = (m) => ({ owner: 0, moderator: 1 })[m.role] ?? 2;
    const members = [...(d.members || [])].sort((a, b) => rank(a) - rank(b)
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
    } else if (c.kind !== 'direct' && (canManage(st, c) || (canModerate(st, c) && m.role === 'member'))) {
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
      roleControl(st, c, m, self),
      action);
  }

  // Owners and admins give roles with a select; everyone else sees a tag.
  function roleControl(st, c, m, self) {
    if (c.kind === 'direct') return null;
    if (canManage(st, c) && !self) {
      const sel = h('select', { class: 'input input-small', 'data-testid': 'member-role',
        'aria-label': t('members.role_label', { name: ctx.userName(m.user_id) }), onchange: async () => {
          try {
            await ctx.api.put(`/conversations/${cid}/members/${encodeURIComponent(m.user_id)}/role`, { role: sel.value });
            ctx.toast(t('members.role_changed', { name: ctx.userName(m.user_id), role: t(`role.${sel.value}`) }));
          } catch (err) {
            sel.value = m.role;
            ctx.toast(ctx.errorText(err), 'error');
          }
        } },
      ...['owner', 'moderator', 'member'].map((r) => h('option', { value: r, selected: r === m.role }, t(`role.${r}`))));
      return sel;
    }
    return m.role === 'member' ? null : h('span', { class: 'tag', 'data-testid': 'member-role-tag' }, t(`role.${m.role}`));
  }

  return { el, render };
}
