// How conversations and people are named and drawn, shared by the views. Every
// function takes the view context (see app.js) and reads the state through it.
import { h, avatar, bdi } from './dom.js';
import { t, isolate } from './i18n.js';
import { directPeer, typingUsers } from './state.js';

export function convTitle(ctx, c) {
  const state = ctx.state;
  if (!c) return '';
  if (c.kind === 'direct') {
    const peer = directPeer(state, c.id);
    if (peer) return ctx.userName(peer);
    return c.name || (state.details.has(c.id) ? ctx.userName(state.me.id) : '…');
  }
  if (c.name) return c.name;
  const d = state.details.get(c.id);
  if (d) {
    return (d.members || []).filter((m) => m.user_id !== state.me.id).slice(0, 4)
      .map((m) => isolate(ctx.userName(m.user_id))).join(', ') || t('conversation.untitled');
  }
  return t('conversation.untitled');
}

export function convAvatar(ctx, c, size = 'md') {
  const state = ctx.state;
  if (c.kind === 'direct') {
    const peer = directPeer(state, c.id);
    if (peer) return avatar(peer, ctx.userName(peer), { size, presence: state.presence.get(peer) || 'offline' });
  }
  if (c.kind === 'channel') return h('span', { class: `avatar avatar-${size} avatar-channel`, 'aria-hidden': 'true' }, '#');
  return avatar(c.id, convTitle(ctx, c), { size, person: false });
}

export function presenceLabel(ctx, uid) {
  return t(`presence.${ctx.state.presence.get(uid) || 'offline'}`);
}

// A user's custom status as it reads now: none once its `until` has passed (the
// server sends `until`; nothing needs to tell the client when it expires).
export function currentStatus(ctx, uid, now = Date.now()) {
  const u = ctx.state.users.get(uid);
  return liveStatus(u && u.status, now);
}

export function liveStatus(st, now = Date.now()) {
  if (!st || (!st.text && !st.emoji)) return null;
  if (st.until && Date.parse(st.until) <= now) return null;
  return st;
}

// The custom status beside presence: the emoji and (unless `compact`) the text; the
// whole status is the tooltip. `status`: a user object's own (else the state's).
export function statusChip(ctx, uid, { compact = false, status } = {}) {
  const st = status === undefined ? currentStatus(ctx, uid) : liveStatus(status);
  if (!st) return null;
  return h('span', { class: 'custom-status', 'data-testid': 'custom-status', title: [st.emoji, st.text].filter(Boolean).join(' ') },
    st.emoji ? h('span', { class: 'status-emoji' }, st.emoji) : null,
    compact || !st.text ? null : bdi(st.text));
}

export function typingNames(ctx, cid) {
  return typingUsers(ctx.state, cid, Date.now()).map((uid) => ctx.userName(uid));
}

export function backButton() {
  return h('a', { class: 'icon-btn back-btn', href: '#/', title: t('common.back'), 'aria-label': t('common.back'),
    'data-testid': 'back' }, '‹');
}
