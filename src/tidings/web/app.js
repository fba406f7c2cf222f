// Tidings web client. Plain ES modules, no build step, no third-party code.
import { Api, Connection } from './api.js';
import { h, append, clear, reconcile, avatar, icon } from './dom.js';
import { t, setLanguage, pickLanguage, language, LANGUAGES } from './i18n.js';
import { renderMarkdown, plainPreview } from './markdown.js';
import { renderAdmin } from './admin.js';
import { toast, openModal, confirmDialog, promptDialog, errorText, uuid } from './ui.js';

const TOKEN_KEY = 'tidings.token';
const USER_KEY = 'tidings.user';
const QUICK_REACTIONS = ['👍', '❤️', '😄', '🎉', '😮', '🙏'];
const GROUP_WINDOW_MS = 5 * 60 * 1000;
const TYPING_SHOW_MS = 6000;
const TYPING_SEND_EVERY_MS = 3000;
const PAGE = 50;

// ---------------------------------------------------------------- state
const state = {
  token: localStorage.getItem(TOKEN_KEY),
  me: null,
  users: new Map(), // id -> user
  convs: new Map(), // id -> conversation (list shape)
  details: new Map(), // id -> conversation with members
  msgs: new Map(), // cid -> { bySeq: Map, hasMore, loaded, loading, oldest, newest }
  outbox: [], // own messages not yet confirmed: {client_msg_id, conversation_id, body, reply_to_seq, status, created_at}
  previews: new Map(), // cid -> last known message
  presence: new Map(), // uid -> online|away|offline
  typing: new Map(), // cid -> Map(uid -> expires)
  view: 'home', // home | chat | channels | directory | admin
  cid: null,
  route: '',
  replyTo: new Map(), // cid -> seq
  editing: null, // { cid, seq, text }
  actionsFor: null, // key of the message whose action bar is open (touch)
  pickerFor: null, // key of the message whose reaction picker is open
  membersOpen: false,
  firstUnread: new Map(), // cid -> read_seq when the conversation was opened
  seenPositions: new Set(),
  seenOrder: [],
  booted: false, // REST state loaded after the first `ready`
  buffered: [], // frames received before the REST state was loaded
  status: 'connecting',
  filter: '',
};

const api = new Api({ getToken: () => state.token, onUnauthenticated: () => signedOut() });
let conn = null;

const $ = (sel, root = document) => root.querySelector(sel);
const isAdmin = () => state.me && (state.me.role === 'owner' || state.me.role === 'admin');

function userName(uid) {
  const u = state.users.get(uid);
  if (u) return u.display_name || u.username;
  if (uid && !pendingUserFetch.has(uid)) fetchUser(uid);
  return '…';
}

const pendingUserFetch = new Set();
async function fetchUser(uid) {
  pendingUserFetch.add(uid);
  try {
    const { user } = await api.get(`/users/${encodeURIComponent(uid)}`);
    state.users.set(user.id, user);
    invalidate('all');
  } catch { /* keep the placeholder */ }
}

// ---------------------------------------------------------------- storage
const draftKey = (cid) => `tidings.draft.${state.me ? state.me.id : ''}.${cid}`;
const outboxKey = () => `tidings.outbox.${state.me ? state.me.id : ''}`;

function loadDraft(cid) {
  return localStorage.getItem(draftKey(cid)) || '';
}
function saveDraft(cid, text) {
  if (text) localStorage.setItem(draftKey(cid), text);
  else localStorage.removeItem(draftKey(cid));
}
function saveOutbox() {
  const keep = state.outbox.map(({ client_msg_id, conversation_id, body, reply_to_seq, status, created_at }) => (
    { client_msg_id, conversation_id, body, reply_to_seq, status, created_at }));
  if (keep.length) localStorage.setItem(outboxKey(), JSON.stringify(keep));
  else localStorage.removeItem(outboxKey());
}
function loadOutbox() {
  try {
    state.outbox = JSON.parse(localStorage.getItem(outboxKey()) || '[]');
  } catch {
    state.outbox = [];
  }
}

// ---------------------------------------------------------------- helpers
const ts = (s) => (s ? Date.parse(s) : 0) || 0;

function fmtTime(iso) {
  return new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
}
function fmtShortTime(iso) {
  return new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
}
function fmtDateTime(iso) {
  return new Intl.DateTimeFormat(language(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}
function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return t('day.today');
  if (dayKey(d) === dayKey(yesterday)) return t('day.yesterday');
  const sameYear = d.getFullYear() === today.getFullYear();
  return new Intl.DateTimeFormat(language(), sameYear
    ? { weekday: 'long', month: 'long', day: 'numeric' }
    : { year: 'numeric', month: 'long', day: 'numeric' }).format(d);
}
function fmtListTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (dayKey(d) === dayKey(new Date())) return fmtTime(iso);
  return new Intl.DateTimeFormat(language(), { month: 'short', day: 'numeric' }).format(d);
}

function msgStore(cid) {
  let s = state.msgs.get(cid);
  if (!s) {
    s = { bySeq: new Map(), hasMore: true, loaded: false, loading: false };
    state.msgs.set(cid, s);
  }
  return s;
}
function newestSeq(s) {
  let max = 0;
  for (const seq of s.bySeq.keys()) if (seq > max) max = seq;
  return max;
}
function oldestSeq(s) {
  let min = Infinity;
  for (const seq of s.bySeq.keys()) if (seq < min) min = seq;
  return min === Infinity ? 0 : min;
}

// ---------------------------------------------------------------- rendering scheduler
const dirty = new Set();
let frameRequested = false;
function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(flush);
  }
}
function flush() {
  frameRequested = false;
  const all = dirty.has('all');
  const parts = new Set(dirty);
  dirty.clear();
  if (!state.me || !$('.shell')) return;
  if (all || parts.has('list')) renderConvList();
  if (all || parts.has('banner')) renderBanner();
  if (state.view === 'chat') {
    if (all || parts.has('header')) renderChatHeader();
    if (all || parts.has('messages')) renderMessages();
    if (all || parts.has('typing')) renderTyping();
    if (all || parts.has('members')) renderMembersPanel();
  } else if (parts.has('view') && state.view === 'home') {
    renderOtherView();
  }
  if (all || parts.has('view') || parts.has('members') || parts.has('list')) updatePresenceDots();
}

// Presence dots outside the conversation list are updated in place, so that forms
// on the page (directory search, admin) keep what is typed.
function updatePresenceDots() {
  for (const dot of document.querySelectorAll('.main .presence-dot[data-uid]')) {
    const st = dot.dataset.uid === (state.me && state.me.id) ? 'online' : state.presence.get(dot.dataset.uid) || 'offline';
    dot.className = `presence-dot presence-${st}`;
    dot.title = t(`presence.${st}`);
  }
}

// ---------------------------------------------------------------- boot
async function boot() {
  await setLanguage(pickLanguage());
  document.title = t('app.name');
  window.addEventListener('hashchange', () => route());
  document.addEventListener('visibilitychange', () => {
    const visible = document.visibilityState === 'visible';
    if (conn) {
      conn.notify({ type: 'presence', state: visible ? 'online' : 'away' });
      if (visible && !conn.ready) conn.reconnectNow();
    }
    maybeMarkRead();
  });
  window.addEventListener('online', () => conn && conn.reconnectNow());
  if (!state.token) {
    renderLogin();
    return;
  }
  try {
    const { user } = await api.get('/users/me');
    startSession(user);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      localStorage.removeItem(TOKEN_KEY);
      state.token = null;
      renderLogin();
      return;
    }
    // The server cannot be reached: open the app as the last known user; the
    // connection keeps retrying behind the banner and loads everything once it is back.
    let cached = null;
    try {
      cached = JSON.parse(localStorage.getItem(USER_KEY) || 'null');
    } catch { /* no cached user */ }
    if (cached && cached.id) startSession(cached);
    else renderLogin(t('error.network'));
  }
}

function languageSelect(onChange, { compact = false } = {}) {
  return h('select', {
    class: 'lang-select', 'aria-label': t('settings.language'), 'data-testid': 'lang-select',
    onchange: async (e) => {
      await setLanguage(e.target.value, { remember: true });
      document.title = t('app.name');
      onChange();
    },
  }, LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === language(), title: l.label },
    compact ? l.short : l.label)));
}

// ---------------------------------------------------------------- sign in / out
function renderLogin(notice = '', keep = {}) {
  document.title = t('app.name');
  const root = $('#app');
  clear(root);
  const totpRow = h('label', { class: 'field', hidden: !keep.totp },
    h('span', {}, t('login.totp')),
    h('input', { name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '10',
      'data-testid': 'login-totp' }));
  const errorBox = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'login-error' }, notice);
  const form = h('form', { class: 'login-card', 'data-testid': 'login-form', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const body = { username: String(data.get('username')).trim(), password: String(data.get('password')),
      device: navigator.userAgent.slice(0, 120) };
    if (!totpRow.hidden && data.get('totp')) body.totp = String(data.get('totp')).trim();
    const button = $('button[type=submit]', form);
    button.disabled = true;
    errorBox.textContent = '';
    try {
      const res = await api.post('/auth/login', body);
      state.token = res.token;
      localStorage.setItem(TOKEN_KEY, res.token);
      startSession(res.user);
    } catch (err) {
      button.disabled = false;
      if (err.code === 'totp_required') {
        totpRow.hidden = false;
        errorBox.textContent = t('login.totp_needed');
        $('input[name=totp]', form).focus();
      } else if (err.code === 'invalid_totp' || (err.code === 'invalid_credentials' && !totpRow.hidden)) {
        errorBox.textContent = t(err.code === 'invalid_totp' ? 'error.invalid_totp' : 'error.invalid_credentials');
      } else {
        errorBox.textContent = errorText(err);
      }
    }
  } },
  h('div', { class: 'login-brand' }, h('span', { class: 'logo' }, 'T'), h('h1', {}, t('app.name'))),
  h('p', { class: 'login-tagline' }, t('login.tagline')),
  h('label', { class: 'field' }, h('span', {}, t('login.username')),
    h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true,
      'data-testid': 'login-username', value: keep.username || '' })),
  h('label', { class: 'field' }, h('span', {}, t('login.password')),
    h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true,
      'data-testid': 'login-password' })),
  totpRow,
  errorBox,
  h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'login-submit' }, t('login.submit')),
  h('div', { class: 'login-footer' }, languageSelect(() => {
    const data = new FormData(form);
    renderLogin('', { username: data.get('username'), totp: !totpRow.hidden });
  })));
  append(root, h('div', { class: 'login-screen' }, form));
}

async function signOut() {
  try {
    await api.post('/auth/logout');
  } catch { /* the token is dropped anyway */ }
  signedOut();
}

function signedOut() {
  if (!state.token && !state.me) return;
  if (conn) conn.stop();
  conn = null;
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
  Object.assign(state, {
    token: null, me: null, cid: null, view: 'home', booted: false, loadingInitial: false, buffered: [], outbox: [],
    editing: null,
  });
  for (const key of ['users', 'convs', 'details', 'msgs', 'previews', 'presence', 'typing', 'replyTo',
    'firstUnread']) state[key].clear();
  state.seenPositions.clear();
  state.seenOrder = [];
  if (location.hash) history.replaceState(null, '', location.pathname);
  renderLogin();
}

function startSession(user) {
  state.me = user;
  localStorage.setItem(USER_KEY, JSON.stringify(user));
  state.users.set(user.id, user);
  loadOutbox();
  state.status = 'connecting';
  state.sessionStarted = Date.now();
  renderShell();
  conn = new Connection({
    getToken: () => state.token,
    onReady: onReady,
    onFrame: onFrame,
    onStatus: (status) => {
      state.status = status;
      invalidate('banner');
    },
    onAuthFailed: async () => {
      try {
        await api.get('/users/me');
      } catch (err) {
        if (err.status === 401 || err.status === 403) signedOut();
      }
    },
    onResumeFailed: () => {
      // Start fresh: the next `ready` reloads the state over REST.
      state.booted = false;
      state.buffered = [];
    },
  });
  conn.start();
  route();
}

// ---------------------------------------------------------------- connection and events
async function onReady(frame) {
  if (frame.user) {
    state.me = { ...state.me, ...frame.user };
    state.users.set(state.me.id, state.me);
    localStorage.setItem(USER_KEY, JSON.stringify(state.me));
  }
  conn.notify({ type: 'presence', state: document.visibilityState === 'visible' ? 'online' : 'away' });
  if (!state.booted) {
    // A load already running (the connection dropped and came back meanwhile) applies
    // what this connection replays once it is done.
    if (state.loadingInitial) return;
    state.loadingInitial = true;
    try {
      await loadInitialState();
    } catch (err) {
      // Could not load: drop this connection and try again (the banner stays up).
      state.loadingInitial = false;
      state.buffered = [];
      conn.position = null;
      state.status = 'reconnecting';
      invalidate('banner');
      conn.reconnectNow();
      return;
    }
    state.loadingInitial = false;
    state.booted = true;
    const frames = state.buffered;
    state.buffered = [];
    for (const f of frames) onFrame(f);
  } else {
    // Resumed: the server replays what we missed. Refresh the list in the background
    // (absolute counters) and retry read positions that did not reach the server.
    refreshConversations();
    for (const [cid, seq] of readRetry) postRead(cid, seq);
  }
  for (const p of state.outbox) if (p.status === 'pending') deliver(p);
  invalidate('all');
  maybeMarkRead();
}

async function loadInitialState() {
  const [convRes, usersRes] = await Promise.all([
    api.get('/conversations'),
    api.get('/users', { limit: 200 }).catch(() => ({ users: [] })),
  ]);
  for (const u of usersRes.users || []) state.users.set(u.id, u);
  state.convs.clear();
  state.msgs.clear();
  elCache.clear();
  for (const c of convRes.conversations || []) state.convs.set(c.id, normalizeConv(c));
  // Names of direct conversations and presence need the member lists.
  const needDetails = [...state.convs.values()].filter((c) => c.kind !== 'channel').slice(0, 60);
  await Promise.all(needDetails.map((c) => loadDetail(c.id, { quiet: true }).catch(() => {})));
  await loadPresenceForKnownPeople();
  // Load the first page of every conversation's newest message for previews (small lists only).
  if (state.convs.size <= 30) {
    await Promise.all([...state.convs.values()].filter((c) => c.last_seq > 0).map(async (c) => {
      try {
        const res = await api.get(`/conversations/${c.id}/messages`, { limit: 1 });
        const m = (res.messages || [])[res.messages.length - 1];
        if (m) setPreview(m);
      } catch { /* previews are optional */ }
    }));
  }
  if (state.view === 'chat' && state.cid) {
    if (!state.convs.has(state.cid)) {
      location.hash = '#/';
    } else {
      loadLatest(state.cid);
      loadDetail(state.cid);
    }
  }
  if (state.view !== 'chat') invalidate('view');
}

function normalizeConv(c, existing = null) {
  const merged = { ...(existing || {}), ...c };
  for (const k of ['role', 'read_seq', 'unread', 'unread_mentions']) {
    if (c[k] === undefined && existing) merged[k] = existing[k];
  }
  merged.last_seq = Math.max(existing ? existing.last_seq || 0 : 0, c.last_seq || 0);
  if (existing && ts(existing.last_activity_at) > ts(c.last_activity_at)) merged.last_activity_at = existing.last_activity_at;
  if (merged.read_seq === undefined) merged.read_seq = merged.last_seq;
  merged.read_seq = Math.max(existing ? existing.read_seq || 0 : 0, merged.read_seq || 0);
  merged.unread = Math.max(0, merged.last_seq - merged.read_seq);
  if (merged.unread === 0) merged.unread_mentions = 0;
  merged.unread_mentions = merged.unread_mentions || 0;
  return merged;
}

function upsertConv(c) {
  const existing = state.convs.get(c.id);
  state.convs.set(c.id, normalizeConv(c, existing));
  if (c.kind !== 'channel' && !state.details.has(c.id)) loadDetail(c.id, { quiet: true }).catch(() => {});
  invalidate('list', 'header');
}

let refreshing = null;
function refreshConversations() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const res = await api.get('/conversations');
      const seen = new Set();
      for (const c of res.conversations || []) {
        seen.add(c.id);
        const existing = state.convs.get(c.id);
        const merged = normalizeConv(c, existing);
        // The server's counters are authoritative for mentions.
        if (c.unread_mentions !== undefined && merged.unread > 0) merged.unread_mentions = c.unread_mentions;
        state.convs.set(c.id, merged);
        if (c.kind !== 'channel' && !state.details.has(c.id)) loadDetail(c.id, { quiet: true }).catch(() => {});
      }
      for (const cid of [...state.convs.keys()]) if (!seen.has(cid)) state.convs.delete(cid);
      invalidate('list', 'header');
    } catch { /* try again on the next occasion */ }
    refreshing = null;
  })();
  return refreshing;
}

async function loadDetail(cid, { quiet = false } = {}) {
  try {
    const { conversation } = await api.get(`/conversations/${encodeURIComponent(cid)}`);
    state.details.set(cid, conversation);
    const listed = state.convs.get(cid);
    if (listed) {
      const { members, ...rest } = conversation;
      state.convs.set(cid, normalizeConv(rest, listed));
    }
    const unknown = (conversation.members || []).map((m) => m.user_id).filter((uid) => !state.users.has(uid));
    await Promise.all(unknown.slice(0, 50).map((uid) => fetchUser(uid)));
    if (conversation.kind !== 'channel' || (conversation.members || []).length <= 100) {
      loadPresence((conversation.members || []).map((m) => m.user_id).filter((uid) => !state.presence.has(uid)));
    }
    invalidate('list', 'header', 'members', 'messages');
    return conversation;
  } catch (err) {
    if (!quiet) throw err;
    return null;
  }
}

async function loadPresence(uids) {
  const ids = [...new Set(uids)].filter((id) => id && id !== (state.me && state.me.id));
  for (let i = 0; i < ids.length; i += 100) {
    try {
      const res = await api.get('/presence', { user_ids: ids.slice(i, i + 100).join(',') });
      for (const [uid, st] of Object.entries(res.presence || {})) state.presence.set(uid, st);
    } catch { /* best effort */ }
  }
  invalidate('list', 'members', 'header', 'view');
}

function loadPresenceForKnownPeople() {
  const ids = new Set();
  for (const d of state.details.values()) {
    if (d.kind === 'channel') continue;
    for (const m of d.members || []) ids.add(m.user_id);
  }
  return loadPresence([...ids]);
}

function rememberPosition(pos) {
  state.seenPositions.add(pos);
  state.seenOrder.push(pos);
  if (state.seenOrder.length > 5000) state.seenPositions.delete(state.seenOrder.shift());
}

function advancePosition(pos) {
  const cur = conn.position;
  if (cur != null && /^\d+$/.test(String(cur)) && /^\d+$/.test(String(pos))) {
    if (BigInt(pos) <= BigInt(cur)) return;
  }
  conn.position = pos;
}

function onFrame(frame) {
  if (!state.booted) {
    state.buffered.push(frame);
    return;
  }
  if (frame.type === 'event') {
    const pos = String(frame.position);
    if (state.seenPositions.has(pos)) return; // already processed (replay overlap)
    rememberPosition(pos);
    try {
      applyEvent(frame.event || {});
    } catch (err) {
      console.error('event failed', frame, err);
    }
    advancePosition(frame.position);
  } else if (frame.type === 'typing') {
    if (frame.user_id === state.me.id) return;
    let m = state.typing.get(frame.conversation_id);
    if (!m) state.typing.set(frame.conversation_id, (m = new Map()));
    m.set(frame.user_id, Date.now() + TYPING_SHOW_MS);
    setTimeout(() => invalidate('typing', 'list'), TYPING_SHOW_MS + 50);
    invalidate('typing', 'list');
  } else if (frame.type === 'presence') {
    state.presence.set(frame.user_id, frame.state);
    invalidate('list', 'members', 'header', 'view');
  }
}

function applyEvent(ev) {
  const cid = ev.conversation_id;
  switch (ev.kind) {
    case 'message':
      acceptMessage(ev.message);
      break;
    case 'message_edited':
    case 'message_deleted':
    case 'reaction':
      if (ev.message) updateMessage(ev.message);
      break;
    case 'conversation_created':
      if (ev.conversation) upsertConv(ev.conversation);
      refreshConversations();
      break;
    case 'conversation_updated':
      if (ev.conversation) {
        if (state.convs.has(ev.conversation.id)) upsertConv(ev.conversation);
        const d = state.details.get(ev.conversation.id);
        if (d) state.details.set(d.id, { ...d, ...ev.conversation, members: d.members });
        invalidate('list', 'header', 'members');
      }
      break;
    case 'member_added':
      if ((ev.user_ids || []).includes(state.me.id)) {
        if (ev.conversation) upsertConv(ev.conversation);
        refreshConversations();
      } else if (ev.conversation && state.convs.has(cid)) {
        upsertConv(ev.conversation);
      }
      if (state.details.has(cid) || state.cid === cid) loadDetail(cid, { quiet: true });
      break;
    case 'member_removed':
      if (ev.user_id === state.me.id) {
        state.convs.delete(cid);
        state.details.delete(cid);
        state.msgs.delete(cid);
        if (state.cid === cid) {
          toast(t('conversation.removed'));
          location.hash = '#/';
        }
        invalidate('list');
      } else if (state.details.has(cid)) {
        const d = state.details.get(cid);
        d.members = (d.members || []).filter((m) => m.user_id !== ev.user_id);
        const c = state.convs.get(cid);
        if (c && c.member_count) c.member_count = Math.max(0, c.member_count - 1);
        invalidate('members', 'header', 'list');
      }
      break;
    case 'read':
      applyRead(cid, ev.user_id, ev.seq);
      break;
    default:
      break;
  }
}

function applyRead(cid, uid, seq) {
  if (uid === state.me.id) {
    const c = state.convs.get(cid);
    if (!c) return;
    c.read_seq = Math.max(c.read_seq || 0, seq || 0);
    c.unread = Math.max(0, (c.last_seq || 0) - c.read_seq);
    if (c.unread === 0) c.unread_mentions = 0;
    invalidate('list');
  } else {
    const d = state.details.get(cid);
    const member = d && (d.members || []).find((m) => m.user_id === uid);
    if (member) {
      member.read_seq = Math.max(member.read_seq || 0, seq || 0);
      invalidate('messages');
    }
  }
}

function setPreview(m) {
  const prev = state.previews.get(m.conversation_id);
  if (!prev || m.seq >= prev.seq) state.previews.set(m.conversation_id, m);
}

// A stored message arrived (send ack, live or replayed event, gap fill).
function acceptMessage(m) {
  if (!m || m.seq == null) return;
  const cid = m.conversation_id;
  const own = m.sender_id === state.me.id;
  if (own) {
    const i = state.outbox.findIndex((p) => p.client_msg_id === m.client_msg_id);
    if (i >= 0) {
      state.outbox.splice(i, 1);
      saveOutbox();
    }
  }
  const typing = state.typing.get(cid);
  if (typing) typing.delete(m.sender_id);
  const c = state.convs.get(cid);
  if (!c) {
    refreshConversations();
  } else if (m.seq > (c.last_seq || 0)) {
    c.last_seq = m.seq;
    if (ts(m.created_at) > ts(c.last_activity_at)) c.last_activity_at = m.created_at;
    if (own) {
      c.read_seq = Math.max(c.read_seq || 0, m.seq); // sending moves the sender's read position
    } else if ((m.mentions || []).includes(state.me.id)) c.unread_mentions = (c.unread_mentions || 0) + 1;
    c.unread = Math.max(0, c.last_seq - (c.read_seq || 0));
    if (c.unread === 0) c.unread_mentions = 0;
  }
  setPreview(m);
  const s = state.msgs.get(cid);
  if (s && (s.loaded || s.loading)) {
    // While the first page is loading, keep live messages too: the page may have been
    // read before they were committed.
    const newest = newestSeq(s);
    if (!s.bySeq.has(m.seq)) s.bySeq.set(m.seq, m);
    if (s.loading && s.touched) s.touched.add(m.seq);
    if (s.loaded && newest && m.seq > newest + 1) fillGap(cid, newest, m.seq);
  }
  invalidate('list', 'messages', 'typing');
  if (cid === state.cid) requestAnimationFrame(() => maybeMarkRead());
}

function updateMessage(m) {
  const s = state.msgs.get(m.conversation_id);
  if (s && (s.bySeq.has(m.seq) || (s.loading && !s.loaded))) {
    s.bySeq.set(m.seq, m);
    if (s.loading && s.touched) s.touched.add(m.seq);
  }
  const prev = state.previews.get(m.conversation_id);
  if (prev && prev.seq === m.seq) state.previews.set(m.conversation_id, m);
  invalidate('messages', 'list');
}

async function fillGap(cid, after, until) {
  const s = msgStore(cid);
  let cursor = after;
  try {
    while (cursor < until - 1) {
      const res = await api.get(`/conversations/${cid}/messages`, { after_seq: cursor, limit: 200 });
      const list = res.messages || [];
      if (!list.length) break;
      for (const m of list) if (!s.bySeq.has(m.seq)) s.bySeq.set(m.seq, m);
      cursor = list[list.length - 1].seq;
      if (!res.has_more) break;
    }
  } catch { /* the next event or reload fills it */ }
  invalidate('messages');
}

async function loadLatest(cid) {
  const s = msgStore(cid);
  if (s.loading) return;
  s.loading = true;
  s.touched = new Set(); // seqs changed by live events while the page loads: newer than the page
  invalidate('messages');
  try {
    const res = await api.get(`/conversations/${cid}/messages`, { limit: PAGE });
    for (const m of res.messages || []) if (!s.touched.has(m.seq)) s.bySeq.set(m.seq, m);
    s.hasMore = !!res.has_more;
    s.loaded = true;
    const last = (res.messages || [])[(res.messages || []).length - 1];
    if (last) setPreview(last);
  } catch (err) {
    if (err.status === 404) {
      toast(t('error.not_found'), 'error');
      location.hash = '#/';
    }
  } finally {
    s.loading = false;
    s.touched = null;
  }
  invalidate('messages', 'list');
}

async function loadOlder(cid) {
  const s = msgStore(cid);
  if (s.loading || !s.hasMore || !s.loaded) return;
  const before = oldestSeq(s);
  if (before <= 1) {
    s.hasMore = false;
    return;
  }
  s.loading = true;
  const list = $('.messages');
  scrollAnchor = list ? { height: list.scrollHeight, top: list.scrollTop } : null;
  invalidate('messages');
  try {
    const res = await api.get(`/conversations/${cid}/messages`, { before_seq: before, limit: PAGE });
    for (const m of res.messages || []) if (!s.bySeq.has(m.seq)) s.bySeq.set(m.seq, m);
    s.hasMore = !!res.has_more && (res.messages || []).length > 0;
  } catch { /* retried on the next scroll */ }
  s.loading = false;
  invalidate('messages');
}

// ---------------------------------------------------------------- sending
function sendMessage(cid, body, replyTo) {
  const p = {
    client_msg_id: uuid(), conversation_id: cid, body, reply_to_seq: replyTo || null, status: 'pending',
    created_at: new Date().toISOString(),
  };
  state.outbox.push(p);
  saveOutbox();
  stickToBottom = true;
  invalidate('messages', 'list');
  deliver(p);
}

function deliver(p) {
  if (p.inflight) return;
  if (!conn || !conn.ready || !state.booted) {
    p.status = 'pending';
    return;
  }
  p.inflight = true;
  p.status = 'pending';
  const frame = { type: 'send', conversation_id: p.conversation_id, client_msg_id: p.client_msg_id, body: p.body };
  if (p.reply_to_seq) frame.reply_to_seq = p.reply_to_seq;
  conn.request(frame, 15000).then((ack) => {
    p.inflight = false;
    if (ack.message) acceptMessage(ack.message);
  }, (err) => {
    p.inflight = false;
    if (err.code === 'disconnected') {
      p.status = 'pending'; // sent again with the same client_msg_id after reconnecting
    } else {
      p.status = 'failed';
      p.error = err.code;
    }
    saveOutbox();
    invalidate('messages', 'list');
  });
}

function retry(p) {
  p.status = 'pending';
  saveOutbox();
  deliver(p);
  invalidate('messages');
}

function discard(p) {
  state.outbox = state.outbox.filter((x) => x !== p);
  saveOutbox();
  invalidate('messages', 'list');
}

// ---------------------------------------------------------------- read positions
const readTimers = new Map();
const readRetry = new Map();
function maybeMarkRead() {
  if (state.view !== 'chat' || !state.cid || !state.booted || document.visibilityState !== 'visible') return;
  const c = state.convs.get(state.cid);
  const s = state.msgs.get(state.cid);
  if (!c || !s || !s.loaded) return;
  const list = $('.messages');
  if (!list || list.scrollHeight - list.scrollTop - list.clientHeight > 80) return;
  const newest = newestSeq(s);
  if (newest > (c.read_seq || 0)) {
    c.read_seq = newest;
    c.unread = Math.max(0, (c.last_seq || 0) - newest);
    if (c.unread === 0) c.unread_mentions = 0;
    invalidate('list');
    postRead(state.cid, newest);
  }
}

function postRead(cid, seq) {
  readRetry.set(cid, seq);
  clearTimeout(readTimers.get(cid));
  readTimers.set(cid, setTimeout(async () => {
    try {
      await api.post(`/conversations/${cid}/read`, { seq });
      if (readRetry.get(cid) === seq) readRetry.delete(cid);
    } catch (err) {
      if (err.status && err.status !== 0) readRetry.delete(cid);
    }
  }, 250));
}

// ---------------------------------------------------------------- routing
function route() {
  if (!state.me) return;
  const hash = location.hash.replace(/^#\/?/, '');
  const [section, arg, arg2] = hash.split('/').map((x) => decodeURIComponent(x || ''));
  closeMentionPopup();
  state.pickerFor = null;
  state.actionsFor = null;
  if (section === 'c' && arg) {
    openConversation(arg);
  } else {
    state.cid = null;
    state.editing = null;
    if (section === 'channels') state.view = 'channels';
    else if (section === 'directory') state.view = 'directory';
    else if (section === 'admin' && isAdmin()) {
      state.view = 'admin';
      state.adminTab = arg === 'departments' ? 'departments' : 'users';
    } else state.view = 'home';
    state.viewArg = arg2;
    renderMain();
  }
  invalidate('list');
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---------------------------------------------------------------- shell
function renderShell() {
  const root = $('#app');
  clear(root);
  elCache.clear();
  const navItem = (view, hash, label, icon) => h('a', {
    class: 'nav-item', href: hash, dataset: { view }, 'data-testid': `nav-${view}`,
  }, h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, icon), h('span', { class: 'nav-label' }, label));
  const sidebar = h('aside', { class: 'sidebar', 'aria-label': t('nav.conversations') },
    h('div', { class: 'me-bar' },
      avatar(state.me.id, state.me.display_name || state.me.username, { size: 'md', presence: 'online' }),
      h('div', { class: 'me-names' },
        h('div', { class: 'me-name', 'data-testid': 'me-name' }, state.me.display_name || state.me.username),
        h('div', { class: 'me-sub' }, `@${state.me.username}`)),
      languageSelect(() => rerenderAll(), { compact: true }),
      h('button', { class: 'icon-btn', type: 'button', title: t('nav.sign_out'), 'aria-label': t('nav.sign_out'),
        'data-testid': 'sign-out', onclick: () => signOut() }, icon('logout'))),
    h('nav', { class: 'nav' },
      navItem('home', '#/', t('nav.chats'), icon('chat')),
      navItem('channels', '#/channels', t('nav.channels'), icon('hash')),
      navItem('directory', '#/directory', t('nav.directory'), icon('users')),
      isAdmin() ? navItem('admin', '#/admin', t('nav.admin'), icon('settings')) : null),
    h('div', { class: 'list-tools' },
      h('input', { class: 'filter', type: 'search', placeholder: t('list.filter'), 'aria-label': t('list.filter'),
        value: state.filter, oninput: (e) => { state.filter = e.target.value; invalidate('list'); } }),
      h('button', { class: 'btn btn-primary btn-new', type: 'button', title: t('list.new'), 'data-testid': 'new-conversation',
        onclick: () => openNewConversation() }, icon('plus'))),
    h('ul', { class: 'conv-list', 'data-testid': 'conv-list', role: 'list' }));
  const main = h('main', { class: 'main' });
  append(root,
    h('div', { id: 'banner', class: 'banner', hidden: true, role: 'status', 'data-testid': 'banner' }),
    h('div', { class: 'shell' }, sidebar, main));
  renderBanner();
}

function rerenderAll() {
  document.title = t('app.name');
  renderShell();
  route();
  invalidate('all');
}

let bannerTimer = null;
function renderBanner() {
  const el = $('#banner');
  if (!el) return;
  document.documentElement.dataset.connection = state.status;
  // A first connection gets a moment before "Connecting…" is shown; a lost one is
  // announced at once.
  const early = state.status === 'connecting' && Date.now() - state.sessionStarted < 1500;
  if (early && !bannerTimer) bannerTimer = setTimeout(() => { bannerTimer = null; invalidate('banner'); }, 1600);
  const show = state.status !== 'online' && !early;
  el.hidden = !show;
  clear(el);
  if (show) {
    append(el, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
      h('span', {}, state.status === 'connecting' ? t('banner.connecting') : t('banner.reconnecting')),
      h('button', { class: 'link-btn', type: 'button', onclick: () => conn && conn.reconnectNow() }, t('banner.retry')));
  }
}

function convTitle(c) {
  if (!c) return '';
  if (c.kind === 'direct') {
    const peer = directPeer(c.id);
    if (peer) return userName(peer);
    return c.name || (state.details.has(c.id) ? userName(state.me.id) : '…');
  }
  if (c.name) return c.name;
  const d = state.details.get(c.id);
  if (d) {
    return (d.members || []).filter((m) => m.user_id !== state.me.id).slice(0, 4)
      .map((m) => userName(m.user_id)).join(', ') || t('conversation.untitled');
  }
  return t('conversation.untitled');
}

function directPeer(cid) {
  const d = state.details.get(cid);
  if (!d) return null;
  const other = (d.members || []).find((m) => m.user_id !== state.me.id);
  return other ? other.user_id : null;
}

function convAvatar(c, size = 'md') {
  if (c.kind === 'direct') {
    const peer = directPeer(c.id);
    if (peer) return avatar(peer, userName(peer), { size, presence: state.presence.get(peer) || 'offline' });
  }
  if (c.kind === 'channel') return h('span', { class: `avatar avatar-${size} avatar-channel`, 'aria-hidden': 'true' }, '#');
  return avatar(c.id, convTitle(c), { size, person: false });
}

function previewText(c) {
  const typing = typingNames(c.id);
  if (typing.length) return h('span', { class: 'preview-typing' }, t('typing.short'));
  const pending = state.outbox.filter((p) => p.conversation_id === c.id);
  const m = pending.length ? pending[pending.length - 1] : state.previews.get(c.id);
  if (!m) return c.topic || t(`kind.${c.kind}`);
  const who = (m.sender_id || state.me.id) === state.me.id || !m.sender_id ? t('preview.you') : userName(m.sender_id);
  const text = m.deleted ? t('message.recalled') : plainPreview(m.body, 60);
  return c.kind === 'direct' && who !== t('preview.you') ? text : `${who}: ${text}`;
}

function renderConvList() {
  const ul = $('.conv-list');
  if (!ul) return;
  for (const a of document.querySelectorAll('.nav-item')) {
    a.classList.toggle('active', a.dataset.view === (state.view === 'chat' ? 'home' : state.view));
  }
  $('.shell').classList.toggle('main-open', state.view !== 'home');
  const filter = state.filter.trim().toLowerCase();
  const convs = [...state.convs.values()]
    .filter((c) => !filter || convTitle(c).toLowerCase().includes(filter))
    .sort((a, b) => ts(b.last_activity_at || b.created_at) - ts(a.last_activity_at || a.created_at)
      || (b.last_seq || 0) - (a.last_seq || 0));
  let total = 0;
  for (const c of state.convs.values()) if (!(c.id === state.cid && state.view === 'chat')) total += c.unread || 0;
  document.title = total ? `(${total > 99 ? '99+' : total}) ${t('app.name')}` : t('app.name');
  clear(ul);
  if (!convs.length) {
    ul.append(h('li', { class: 'empty-list' }, state.booted ? t('list.empty') : t('common.loading')));
    return;
  }
  for (const c of convs) {
    const unread = c.id === state.cid && state.view === 'chat' ? 0 : c.unread || 0;
    const failed = state.outbox.some((p) => p.conversation_id === c.id && p.status === 'failed');
    ul.append(h('li', { class: `conv-item${c.id === state.cid ? ' active' : ''}${unread ? ' has-unread' : ''}` },
      h('a', { href: `#/c/${encodeURIComponent(c.id)}`, class: 'conv-link', dataset: { cid: c.id }, 'data-testid': 'conv-item' },
        convAvatar(c),
        h('div', { class: 'conv-main' },
          h('div', { class: 'conv-top' },
            h('span', { class: 'conv-name' }, convTitle(c)),
            h('span', { class: 'conv-time' }, fmtListTime(c.last_activity_at))),
          h('div', { class: 'conv-bottom' },
            h('span', { class: 'conv-preview' }, previewText(c)),
            failed ? h('span', { class: 'badge badge-failed', title: t('message.failed') }, '!') : null,
            c.unread_mentions && unread ? h('span', { class: 'badge badge-mention', 'data-testid': 'mention-badge',
              title: t('list.mentions', { n: c.unread_mentions }) }, '@') : null,
            unread ? h('span', { class: 'badge badge-unread', 'data-testid': 'unread-badge',
              title: t('list.unread', { n: unread }) }, unread > 99 ? '99+' : String(unread)) : null)))));
  }
}

function renderMain() {
  const main = $('.main');
  if (!main) return;
  clear(main);
  elCache.clear();
  if (state.view === 'chat') buildChatView(main);
  else renderOtherView();
}

function renderOtherView() {
  const main = $('.main');
  if (!main || state.view === 'chat') return;
  if (state.view === 'home') {
    clear(main);
    main.append(h('div', { class: 'empty-state' },
      h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('chat', 54)),
      h('h2', {}, t('home.title')),
      h('p', {}, t('home.hint')),
      h('div', { class: 'empty-actions' },
        h('button', { class: 'btn btn-primary', type: 'button', onclick: () => openNewConversation() }, t('list.new')),
        h('a', { class: 'btn', href: '#/channels' }, t('channels.browse')))));
  } else if (state.view === 'channels') renderChannels(main);
  else if (state.view === 'directory') renderDirectory(main);
  else if (state.view === 'admin') {
    renderAdmin(main, {
      api, state, tab: state.adminTab, toast, errorText, openModal, confirmDialog, promptDialog,
      backButton, onUsersChanged: (users) => { for (const u of users) state.users.set(u.id, u); invalidate('list'); },
    });
  }
}

function backButton() {
  return h('a', { class: 'icon-btn back-btn', href: '#/', title: t('common.back'), 'aria-label': t('common.back'),
    'data-testid': 'back' }, '‹');
}

// ---------------------------------------------------------------- conversation view
const elCache = new Map(); // key -> { sig, el } for the open conversation's message nodes
let stickToBottom = true;
let scrollAnchor = null;
let mention = null; // { items, index, start }
let lastTypingSent = 0;
let membersBuiltFor = null;

const isPhone = () => window.matchMedia('(max-width: 720px)').matches;

function openConversation(cid) {
  const changed = state.cid !== cid || state.view !== 'chat';
  state.view = 'chat';
  if (changed) {
    state.cid = cid;
    state.editing = null;
    stickToBottom = true;
    membersBuiltFor = null;
    const c = state.convs.get(cid);
    state.firstUnread.set(cid, c && c.unread ? c.read_seq || 0 : null);
  }
  renderMain();
  if (!state.booted) return; // loaded once the connection is ready
  if (!state.convs.has(cid)) {
    loadDetail(cid).then((d) => {
      if (d && (d.members || []).some((m) => m.user_id === state.me.id)) {
        const { members, ...rest } = d;
        upsertConv(rest);
        refreshConversations();
      }
    }).catch(() => {
      toast(t('error.not_found'), 'error');
      go('#/');
    });
  } else {
    loadDetail(cid, { quiet: true });
  }
  const s = msgStore(cid);
  if (!s.loaded) loadLatest(cid);
  if (!isPhone()) setTimeout(() => { const ta = $('.composer-input'); if (ta) ta.focus(); }, 0);
}

function buildChatView(main) {
  const cid = state.cid;
  const list = h('div', { class: 'messages', 'data-testid': 'messages', role: 'log', 'aria-live': 'polite',
    onscroll: () => {
      stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
      $('.jump-latest').hidden = stickToBottom;
      if (list.scrollTop < 300) loadOlder(cid);
      maybeMarkRead();
    } }, h('div', { class: 'messages-inner' }));
  new ResizeObserver(() => { if (stickToBottom) list.scrollTop = list.scrollHeight; }).observe(list);
  main.append(h('section', { class: 'chat', 'data-testid': 'chat', dataset: { cid } },
    h('header', { class: 'chat-header' }),
    h('div', { class: 'chat-body' },
      h('div', { class: 'chat-column' },
        list,
        h('button', { class: 'jump-latest', type: 'button', hidden: true, onclick: () => {
          stickToBottom = true;
          list.scrollTop = list.scrollHeight;
        } }, t('conversation.jump_latest'), ' ↓'),
        h('div', { class: 'typing-line', 'aria-live': 'polite', 'data-testid': 'typing' }),
        buildComposer(cid)),
      h('aside', { class: 'members-panel', hidden: !state.membersOpen, 'data-testid': 'members-panel' }))));
  renderChatHeader();
  renderMessages();
  renderTyping();
  renderMembersPanel();
}

function presenceLabel(uid) {
  return t(`presence.${state.presence.get(uid) || 'offline'}`);
}

function renderChatHeader() {
  const header = $('.chat-header');
  if (!header) return;
  const c = state.convs.get(state.cid) || state.details.get(state.cid);
  clear(header);
  if (!c) {
    header.append(backButton(), h('div', { class: 'chat-title' }, h('h2', {}, t('common.loading'))));
    return;
  }
  const d = state.details.get(c.id);
  let sub;
  if (c.kind === 'direct') {
    const peer = directPeer(c.id);
    sub = peer ? presenceLabel(peer) : '';
  } else {
    const count = c.member_count || (d && d.members ? d.members.length : 0);
    sub = [c.topic, count ? t('members.count', { n: count }) : null].filter(Boolean).join(' · ');
  }
  append(header,
    backButton(),
    convAvatar(c, 'sm'),
    h('div', { class: 'chat-title' },
      h('h2', { 'data-testid': 'chat-title' }, convTitle(c)),
      h('div', { class: 'chat-sub' }, sub)),
    h('button', { class: `icon-btn${state.membersOpen ? ' active' : ''}`, type: 'button', title: t('members.title'),
      'aria-label': t('members.title'), 'aria-pressed': String(state.membersOpen), 'data-testid': 'toggle-members',
      onclick: () => {
        state.membersOpen = !state.membersOpen;
        invalidate('members', 'header');
      } }, icon('users')));
}

function typingNames(cid) {
  const m = state.typing.get(cid);
  if (!m) return [];
  const now = Date.now();
  const names = [];
  for (const [uid, until] of m) {
    if (until > now) names.push(userName(uid));
    else m.delete(uid);
  }
  return names;
}

function renderTyping() {
  const el = $('.typing-line');
  if (!el) return;
  const names = typingNames(state.cid);
  let text = '';
  if (names.length === 1) text = t('typing.one', { name: names[0] });
  else if (names.length === 2) text = t('typing.two', { a: names[0], b: names[1] });
  else if (names.length > 2) text = t('typing.many', { n: names.length });
  el.textContent = text;
  el.classList.toggle('active', !!text);
}

function cached(key, sig, build) {
  const hit = elCache.get(key);
  if (hit && hit.sig === sig) return hit.el;
  const el = build();
  elCache.set(key, { sig, el });
  return el;
}

function receiptText(c, m, lastSentBy) {
  if (!c || c.kind === 'channel') return '';
  const d = state.details.get(c.id);
  if (!d) return '';
  const others = (d.members || []).filter((x) => x.user_id !== state.me.id);
  // Sending a message moves the sender's read position too.
  const readers = others.filter((x) => Math.max(x.read_seq || 0, lastSentBy.get(x.user_id) || 0) >= m.seq).length;
  if (!readers) return t('receipt.sent');
  if (c.kind === 'direct' || readers === others.length) return t('receipt.read');
  return t('receipt.read_by', { n: readers });
}

function renderMessages() {
  const list = $('.messages');
  const inner = $('.messages-inner');
  if (!list || !inner || !state.cid) return;
  const cid = state.cid;
  const s = msgStore(cid);
  const c = state.convs.get(cid) || state.details.get(cid);
  const items = [];
  if (s.loading) {
    items.push(cached('loading', 'x', () => h('div', { class: 'loading-row' }, h('span', { class: 'spinner' }), t('common.loading'))));
  } else if (s.loaded && !s.hasMore) {
    const title = convTitle(c);
    items.push(cached('start', title, () => h('div', { class: 'conv-start' },
      h('div', { class: 'conv-start-title' }, title),
      h('div', {}, t('conversation.start')))));
  }
  const confirmed = [...s.bySeq.values()].sort((a, b) => a.seq - b.seq);
  const pending = state.outbox.filter((p) => p.conversation_id === cid)
    .map((p) => ({ ...p, sender_id: state.me.id, _p: p, reactions: {} }));
  const all = [...confirmed, ...pending];
  const readBefore = state.firstUnread.get(cid);
  const firstUnreadMsg = readBefore == null ? null
    : confirmed.find((m) => m.seq > readBefore && m.sender_id !== state.me.id);
  let lastOwn = null;
  const lastSentBy = new Map();
  for (const m of confirmed) {
    if (m.sender_id === state.me.id && !m.deleted) lastOwn = m;
    lastSentBy.set(m.sender_id, m.seq);
  }
  const d = state.details.get(cid);
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
  if (s.loaded && !all.length) {
    items.push(cached('empty', 'x', () => h('div', { class: 'no-messages' }, t('conversation.empty'))));
  }
  reconcile(inner, items);
  if (scrollAnchor) {
    list.scrollTop = scrollAnchor.top + (list.scrollHeight - scrollAnchor.height);
    scrollAnchor = null;
  } else if (stickToBottom) {
    list.scrollTop = list.scrollHeight;
  }
  const jump = $('.jump-latest');
  if (jump) jump.hidden = stickToBottom;
  maybeMarkRead();
  if (s.loaded && s.hasMore && !s.loading && list.scrollHeight <= list.clientHeight + 40) loadOlder(cid);
}

function canModerate(c) {
  return isAdmin() || (c && c.role === 'owner');
}

function messageNode(c, m, cont, receipt, memberVersion) {
  const own = m.sender_id === state.me.id;
  const pending = !!m._p;
  const key = pending ? `p-${m.client_msg_id}` : `s-${m.seq}`;
  const editing = !pending && state.editing && state.editing.cid === m.conversation_id && state.editing.seq === m.seq;
  const replied = m.reply_to_seq ? msgStore(m.conversation_id).bySeq.get(m.reply_to_seq) : null;
  const sig = JSON.stringify([m.body, m.edited_at, m.deleted, m.reactions, m.status, cont, editing, receipt,
    userName(m.sender_id), replied && [replied.body, replied.deleted, userName(replied.sender_id)],
    state.pickerFor === key, state.actionsFor === key, memberVersion, c && c.role]);
  return cached(key, sig, () => buildMessage(c, m, { own, pending, key, cont, editing, replied, receipt }));
}

function buildMessage(c, m, { own, pending, key, cont, editing, replied, receipt }) {
  const name = userName(m.sender_id);
  const classes = ['msg'];
  if (own) classes.push('own');
  if (cont) classes.push('cont');
  if (pending) classes.push(m.status === 'failed' ? 'failed' : 'pending');
  if (m.deleted) classes.push('deleted');
  if (state.actionsFor === key) classes.push('show-actions');
  const d = state.details.get(m.conversation_id);
  const memberNames = new Set(d ? (d.members || []).map((x) => (state.users.get(x.user_id) || {}).username)
    .filter(Boolean).map((u) => u.toLowerCase()) : []);
  const mdOpts = { me: state.me.username, isMember: (u) => !d || memberNames.has(u.toLowerCase()) };

  let body;
  if (editing) body = buildEditor(m);
  else if (m.deleted) body = h('div', { class: 'msg-body msg-recalled' }, t('message.recalled'));
  else {
    body = h('div', { class: 'msg-body', 'data-testid': 'message-body' }, renderMarkdown(m.body, mdOpts),
      m.edited_at ? h('span', { class: 'msg-edited', title: fmtDateTime(m.edited_at) }, ` ${t('message.edited')}`) : null);
  }

  const quote = m.reply_to_seq ? h('button', { class: 'reply-quote', type: 'button', onclick: (e) => {
    e.stopPropagation();
    const target = document.querySelector(`.msg[data-seq="${m.reply_to_seq}"]`);
    if (target) {
      target.scrollIntoView({ block: 'center', behavior: 'smooth' });
      target.classList.add('flash');
      setTimeout(() => target.classList.remove('flash'), 1200);
    }
  } }, replied
    ? [h('strong', {}, userName(replied.sender_id)), ' ',
      replied.deleted ? t('message.recalled') : plainPreview(replied.body, 90)]
    : t('message.reply_to', { seq: m.reply_to_seq })) : null;

  const reactions = Object.entries(m.reactions || {}).filter(([, users]) => users && users.length);
  const reactionRow = reactions.length ? h('div', { class: 'reactions' }, reactions.map(([emoji, users]) => h('button', {
    class: `reaction${users.includes(state.me.id) ? ' mine' : ''}`, type: 'button', 'data-testid': 'reaction',
    title: users.map((u) => userName(u)).join(', '),
    onclick: (e) => { e.stopPropagation(); toggleReaction(m, emoji); },
  }, h('span', { class: 'reaction-emoji' }, emoji), h('span', { class: 'reaction-count' }, String(users.length))))) : null;

  let status = null;
  if (pending && m.status === 'failed') {
    status = h('div', { class: 'msg-status status-failed', 'data-testid': 'message-failed' },
      h('span', {}, '⚠ ', t('message.failed')),
      h('button', { class: 'link-btn', type: 'button', 'data-testid': 'retry', onclick: () => retry(m._p) }, t('message.retry')),
      h('button', { class: 'link-btn', type: 'button', onclick: () => discard(m._p) }, t('message.discard')));
  } else if (pending) {
    status = h('div', { class: 'msg-status status-pending', 'data-testid': 'message-pending' }, '◷ ', t('message.sending'));
  } else if (receipt) {
    status = h('div', { class: 'msg-status status-sent', 'data-testid': 'receipt' }, '✓ ', receipt);
  }

  let actions = null;
  if (!pending && !m.deleted) {
    const mayRecall = own || canModerate(c);
    actions = h('div', { class: 'msg-actions', role: 'toolbar' },
      h('button', { class: 'act', type: 'button', title: t('message.react'), 'aria-label': t('message.react'),
        'data-testid': 'act-react', onclick: (e) => {
          e.stopPropagation();
          state.pickerFor = state.pickerFor === key ? null : key;
          invalidate('messages');
        } }, '☺'),
      h('button', { class: 'act', type: 'button', title: t('message.reply'), 'aria-label': t('message.reply'),
        'data-testid': 'act-reply', onclick: (e) => { e.stopPropagation(); startReply(m); } }, '↩'),
      own ? h('button', { class: 'act', type: 'button', title: t('message.edit'), 'aria-label': t('message.edit'),
        'data-testid': 'act-edit', onclick: (e) => { e.stopPropagation(); startEdit(m); } }, '✎') : null,
      mayRecall ? h('button', { class: 'act act-danger', type: 'button', title: t('message.recall'),
        'aria-label': t('message.recall'), 'data-testid': 'act-recall',
        onclick: (e) => { e.stopPropagation(); recall(m); } }, '⌫') : null);
  }
  const picker = state.pickerFor === key ? h('div', { class: 'reaction-picker', role: 'menu' },
    QUICK_REACTIONS.map((emoji) => h('button', { type: 'button', class: 'pick', 'data-testid': 'pick-reaction',
      onclick: (e) => {
        e.stopPropagation();
        state.pickerFor = null;
        toggleReaction(m, emoji);
        invalidate('messages');
      } }, emoji))) : null;

  return h('div', {
    class: classes.join(' '), 'data-testid': 'message', dataset: { seq: m.seq ?? '', cmid: m.client_msg_id || '', key },
    onclick: (e) => {
      if (e.target.closest('a, button, textarea, input')) return;
      if (window.getSelection && String(window.getSelection())) return;
      state.actionsFor = state.actionsFor === key ? null : key;
      invalidate('messages');
    },
  },
  cont ? h('div', { class: 'gutter' }, h('time', { class: 'gutter-time', datetime: m.created_at, title: fmtDateTime(m.created_at) }, fmtShortTime(m.created_at)))
    : avatar(m.sender_id, name),
  h('div', { class: 'msg-main' },
    cont ? null : h('div', { class: 'msg-head' },
      h('span', { class: 'msg-sender', 'data-testid': 'message-sender' }, name),
      h('time', { class: 'msg-time', datetime: m.created_at, title: fmtDateTime(m.created_at) }, fmtTime(m.created_at))),
    quote, body, reactionRow, status),
  actions, picker);
}

function buildEditor(m) {
  const ta = h('textarea', { class: 'edit-input', 'data-testid': 'edit-input', 'aria-label': t('message.edit'),
    oninput: (e) => { state.editing.text = e.target.value; },
    onkeydown: (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        saveEdit(m);
      } else if (e.key === 'Escape') {
        state.editing = null;
        invalidate('messages');
      }
    } });
  ta.value = state.editing.text;
  setTimeout(() => {
    if (document.activeElement !== ta) {
      ta.focus();
      ta.setSelectionRange(ta.value.length, ta.value.length);
    }
  }, 0);
  return h('div', { class: 'msg-editor' }, ta,
    h('div', { class: 'editor-actions' },
      h('span', { class: 'hint' }, t('message.edit_hint')),
      h('button', { class: 'btn btn-small', type: 'button', onclick: () => { state.editing = null; invalidate('messages'); } },
        t('common.cancel')),
      h('button', { class: 'btn btn-small btn-primary', type: 'button', 'data-testid': 'edit-save', onclick: () => saveEdit(m) },
        t('common.save'))));
}

function startEdit(m) {
  state.editing = { cid: m.conversation_id, seq: m.seq, text: m.body };
  state.actionsFor = null;
  invalidate('messages');
}

async function saveEdit(m) {
  const text = state.editing ? state.editing.text.trim() : '';
  if (!text) {
    toast(t('error.invalid_body'), 'error');
    return;
  }
  if (text === m.body) {
    state.editing = null;
    invalidate('messages');
    return;
  }
  try {
    const res = await api.patch(`/conversations/${m.conversation_id}/messages/${m.seq}`, { body: text });
    state.editing = null;
    updateMessage(res.message);
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

async function recall(m) {
  state.actionsFor = null;
  if (!(await confirmDialog(t('message.recall_confirm'), { confirmLabel: t('message.recall'), danger: true }))) return;
  try {
    const res = await api.del(`/conversations/${m.conversation_id}/messages/${m.seq}`);
    if (res && res.message) updateMessage(res.message);
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

async function toggleReaction(m, emoji) {
  const mine = ((m.reactions || {})[emoji] || []).includes(state.me.id);
  const path = `/conversations/${m.conversation_id}/messages/${m.seq}/reactions/${encodeURIComponent(emoji)}`;
  try {
    const res = mine ? await api.del(path) : await api.put(path);
    if (res && res.message) updateMessage(res.message);
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

function startReply(m) {
  state.replyTo.set(m.conversation_id, m.seq);
  state.actionsFor = null;
  renderReplyBar();
  const ta = $('.composer-input');
  if (ta) ta.focus();
}

function renderReplyBar() {
  const bar = $('.reply-bar');
  if (!bar) return;
  const seq = state.replyTo.get(state.cid);
  clear(bar);
  bar.hidden = !seq;
  if (!seq) return;
  const m = msgStore(state.cid).bySeq.get(seq);
  append(bar,
    h('div', { class: 'reply-bar-text' },
      h('span', { class: 'reply-bar-label' }, t('composer.replying_to', { name: m ? userName(m.sender_id) : `#${seq}` })),
      h('span', { class: 'reply-bar-preview' }, m ? (m.deleted ? t('message.recalled') : plainPreview(m.body, 100)) : '')),
    h('button', { class: 'icon-btn', type: 'button', title: t('common.cancel'), 'aria-label': t('common.cancel'),
      onclick: () => { state.replyTo.delete(state.cid); renderReplyBar(); } }, '✕'));
}

function buildComposer(cid) {
  const c = state.convs.get(cid);
  const ta = h('textarea', { class: 'composer-input', rows: '1', 'data-testid': 'composer', enterkeyhint: 'send',
    placeholder: t('composer.placeholder', { name: c ? convTitle(c) : '' }), 'aria-label': t('composer.label') });
  ta.value = loadDraft(cid);
  const grow = () => {
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight, 200)}px`;
  };
  const submit = () => {
    const text = ta.value.replace(/^\s*\n/, '').replace(/\s+$/, '');
    if (!text.trim()) return;
    if (new TextEncoder().encode(text).length > 16384) {
      toast(t('error.too_large'), 'error');
      return;
    }
    sendMessage(cid, text, state.replyTo.get(cid));
    state.replyTo.delete(cid);
    renderReplyBar();
    ta.value = '';
    saveDraft(cid, '');
    grow();
    closeMentionPopup();
  };
  ta.addEventListener('input', () => {
    saveDraft(cid, ta.value);
    grow();
    updateMentionPopup(ta);
    if (ta.value.trim() && Date.now() - lastTypingSent > TYPING_SEND_EVERY_MS && conn) {
      lastTypingSent = Date.now();
      conn.notify({ type: 'typing', conversation_id: cid });
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
      const s = msgStore(cid);
      const own = [...s.bySeq.values()].filter((m) => m.sender_id === state.me.id && !m.deleted).sort((a, b) => b.seq - a.seq)[0];
      if (own) {
        e.preventDefault();
        startEdit(own);
      }
    } else if (e.key === 'Escape' && state.replyTo.has(cid)) {
      state.replyTo.delete(cid);
      renderReplyBar();
    }
  });
  ta.addEventListener('blur', () => setTimeout(closeMentionPopup, 150));
  setTimeout(grow, 0);
  const form = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); submit(); ta.focus(); } },
    h('div', { class: 'reply-bar', hidden: true }),
    h('ul', { class: 'mention-popup', hidden: true, role: 'listbox', 'data-testid': 'mention-popup' }),
    h('div', { class: 'composer-row' }, ta,
      h('button', { class: 'btn btn-primary send-btn', type: 'submit', 'data-testid': 'send', title: t('composer.send') },
        h('span', { class: 'send-label' }, t('composer.send')), h('span', { class: 'send-icon', 'aria-hidden': 'true' }, icon('send', 18)))),
    h('div', { class: 'composer-hint' }, t('composer.hint')));
  setTimeout(renderReplyBar, 0);
  return form;
}

function mentionCandidates(query) {
  const d = state.details.get(state.cid);
  if (!d) return [];
  const q = query.toLowerCase();
  return (d.members || []).map((m) => state.users.get(m.user_id)).filter(Boolean)
    .filter((u) => u.id !== state.me.id)
    .filter((u) => !q || u.username.toLowerCase().startsWith(q) || (u.display_name || '').toLowerCase().includes(q))
    .sort((a, b) => (a.username.toLowerCase().startsWith(q) ? 0 : 1) - (b.username.toLowerCase().startsWith(q) ? 0 : 1)
      || a.username.localeCompare(b.username))
    .slice(0, 8);
}

function updateMentionPopup(ta) {
  const before = ta.value.slice(0, ta.selectionStart);
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
  mention = { items, index: 0, start: ta.selectionStart - m[1].length - 1 };
  renderMentionPopup();
}

function renderMentionPopup() {
  const ul = $('.mention-popup');
  if (!ul) return;
  clear(ul);
  ul.hidden = !mention;
  if (!mention) return;
  mention.items.forEach((u, i) => ul.append(h('li', {
    class: `mention-item${i === mention.index ? ' active' : ''}`, role: 'option', 'aria-selected': String(i === mention.index),
    'data-testid': 'mention-item',
    onmousedown: (e) => { e.preventDefault(); chooseMention(i); },
  }, avatar(u.id, u.display_name || u.username, { size: 'xs' }),
  h('span', { class: 'mention-name' }, u.display_name || u.username),
  h('span', { class: 'mention-user' }, `@${u.username}`))));
}

function chooseMention(i) {
  const ta = $('.composer-input');
  if (!ta || !mention) return;
  const u = mention.items[i];
  const insert = `@${u.username} `;
  const end = ta.selectionStart;
  ta.value = ta.value.slice(0, mention.start) + insert + ta.value.slice(end);
  const caret = mention.start + insert.length;
  ta.setSelectionRange(caret, caret);
  saveDraft(state.cid, ta.value);
  closeMentionPopup();
  ta.focus();
}

function closeMentionPopup() {
  mention = null;
  const ul = $('.mention-popup');
  if (ul) {
    ul.hidden = true;
    clear(ul);
  }
}

// ---------------------------------------------------------------- members panel
function renderMembersPanel() {
  const panel = $('.members-panel');
  if (!panel) return;
  panel.hidden = !state.membersOpen;
  if (!state.membersOpen) return;
  const cid = state.cid;
  const c = state.convs.get(cid) || state.details.get(cid);
  const d = state.details.get(cid);
  if (membersBuiltFor !== cid || !panel.firstChild) {
    membersBuiltFor = cid;
    clear(panel);
    append(panel,
      h('div', { class: 'panel-head' },
        h('h3', { class: 'members-title' }, t('members.title')),
        h('button', { class: 'icon-btn', type: 'button', title: t('common.close'), 'aria-label': t('common.close'),
          onclick: () => { state.membersOpen = false; invalidate('members', 'header'); } }, '✕')),
      h('div', { class: 'members-settings' }),
      h('div', { class: 'members-add' }),
      h('ul', { class: 'members-list', 'data-testid': 'members-list' }));
  }
  $('.members-title', panel).textContent = d ? `${t('members.title')} · ${(d.members || []).length}` : t('members.title');
  const manage = c && c.kind !== 'direct' && canModerate(c);
  const settings = $('.members-settings', panel);
  if (manage && d && !settings.firstChild) {
    const name = h('input', { value: d.name || '', placeholder: t('conversation.name'), 'aria-label': t('conversation.name') });
    const topic = h('input', { value: d.topic || '', placeholder: t('conversation.topic'), 'aria-label': t('conversation.topic') });
    settings.append(h('form', { class: 'settings-form', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const res = await api.patch(`/conversations/${cid}`, { name: name.value.trim(), topic: topic.value.trim() });
        upsertConv(res.conversation);
        toast(t('common.saved'));
      } catch (err) {
        toast(errorText(err), 'error');
      }
    } }, name, topic, h('button', { class: 'btn btn-small', type: 'submit' }, t('common.save'))));
  }
  const addBox = $('.members-add', panel);
  const mayAdd = c && c.kind !== 'direct' && (c.kind === 'group' || canModerate(c));
  if (mayAdd && !addBox.firstChild) {
    addBox.append(userPicker({
      placeholder: t('members.add_placeholder'), testid: 'add-member',
      exclude: () => new Set((state.details.get(cid)?.members || []).map((m) => m.user_id)),
      onPick: async (u) => {
        try {
          await api.post(`/conversations/${cid}/members`, { user_ids: [u.id] });
          await loadDetail(cid, { quiet: true });
          toast(t('members.added', { name: u.display_name || u.username }));
        } catch (err) {
          toast(errorText(err), 'error');
        }
      },
    }));
  }
  const ul = $('.members-list', panel);
  clear(ul);
  if (!d) {
    ul.append(h('li', { class: 'loading-row' }, t('common.loading')));
    return;
  }
  const members = [...(d.members || [])].sort((a, b) => (a.role === 'owner' ? 0 : 1) - (b.role === 'owner' ? 0 : 1)
    || userName(a.user_id).localeCompare(userName(b.user_id)));
  for (const m of members) {
    const u = state.users.get(m.user_id);
    const self = m.user_id === state.me.id;
    let action = null;
    if (c.kind !== 'direct' && self) {
      action = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'leave', onclick: async () => {
        if (!(await confirmDialog(t('members.leave_confirm'), { confirmLabel: t('members.leave'), danger: true }))) return;
        try {
          await api.del(`/conversations/${cid}/members/${encodeURIComponent(state.me.id)}`);
          state.convs.delete(cid);
          go('#/');
        } catch (err) {
          toast(errorText(err), 'error');
        }
      } }, t('members.leave'));
    } else if (c.kind !== 'direct' && canModerate(c)) {
      action = h('button', { class: 'icon-btn icon-danger', type: 'button', title: t('members.remove'),
        'aria-label': t('members.remove'), 'data-testid': 'remove-member', onclick: async () => {
          if (!(await confirmDialog(t('members.remove_confirm', { name: userName(m.user_id) }),
            { confirmLabel: t('members.remove'), danger: true }))) return;
          try {
            await api.del(`/conversations/${cid}/members/${encodeURIComponent(m.user_id)}`);
            await loadDetail(cid, { quiet: true });
          } catch (err) {
            toast(errorText(err), 'error');
          }
        } }, '✕');
    }
    ul.append(h('li', { class: 'member', dataset: { uid: m.user_id } },
      avatar(m.user_id, userName(m.user_id), { size: 'sm', presence: self ? 'online' : state.presence.get(m.user_id) || 'offline' }),
      h('div', { class: 'member-names' },
        h('div', { class: 'member-name' }, userName(m.user_id)),
        h('div', { class: 'member-sub' }, [u ? `@${u.username}` : '', self ? t('members.you') : ''].filter(Boolean).join(' · '))),
      m.role === 'owner' ? h('span', { class: 'tag' }, t('role.owner')) : null,
      action));
  }
}

// A search box over the directory that calls onPick(user).
function userPicker({ placeholder, onPick, exclude = () => new Set(), testid = 'user-picker', keepOpen = false, inline = false }) {
  const results = h('ul', { class: 'picker-results', hidden: true });
  let seq = 0;
  const input = h('input', { type: 'search', placeholder, 'aria-label': placeholder, 'data-testid': testid, autocomplete: 'off' });
  const search = async () => {
    const my = ++seq;
    const q = input.value.trim();
    let users = [];
    try {
      const res = await api.get('/users', { query: q || null, limit: 20 });
      users = res.users || [];
    } catch { /* shown as no results */ }
    if (my !== seq) return;
    for (const u of users) state.users.set(u.id, u);
    const skip = exclude();
    users = users.filter((u) => u.id !== state.me.id && !skip.has(u.id) && !u.disabled);
    clear(results);
    results.hidden = false;
    if (!users.length) results.append(h('li', { class: 'picker-empty' }, t('common.no_results')));
    for (const u of users) {
      results.append(h('li', {}, h('button', { type: 'button', class: 'picker-item', 'data-testid': `${testid}-result`,
        onmousedown: (e) => e.preventDefault(),
        onclick: () => {
          onPick(u);
          input.value = '';
          results.hidden = true;
          if (typeof keepOpen === 'function' ? keepOpen() : keepOpen) input.focus();
        } },
      avatar(u.id, u.display_name || u.username, { size: 'xs' }),
      h('span', { class: 'picker-name' }, u.display_name || u.username),
      h('span', { class: 'picker-user' }, `@${u.username}`))));
    }
  };
  let timer = null;
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 150); });
  input.addEventListener('focus', () => search());
  input.addEventListener('blur', () => setTimeout(() => { results.hidden = true; }, 200));
  return h('div', { class: `picker${inline ? ' picker-inline' : ''}` }, input, results);
}

// ---------------------------------------------------------------- new conversation
function openNewConversation(kind = 'direct') {
  openModal(t('new.title'), (close) => {
    let current = kind;
    const chosen = new Map();
    const chips = h('div', { class: 'chips' });
    const nameField = h('label', { class: 'field' }, h('span', {}, t('conversation.name')),
      h('input', { name: 'name', maxlength: '80', 'data-testid': 'new-name' }));
    const topicField = h('label', { class: 'field' }, h('span', {}, t('conversation.topic')),
      h('input', { name: 'topic', maxlength: '200', 'data-testid': 'new-topic' }));
    const errorBox = h('div', { class: 'form-error', role: 'alert' });
    const renderChips = () => {
      clear(chips);
      for (const u of chosen.values()) {
        chips.append(h('span', { class: 'chip' }, u.display_name || u.username,
          h('button', { type: 'button', class: 'chip-x', 'aria-label': t('common.remove'),
            onclick: () => { chosen.delete(u.id); renderChips(); } }, '✕')));
      }
    };
    const picker = userPicker({
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
      hint.textContent = t(`new.hint_${current}`);
    };
    const hint = h('p', { class: 'hint' });
    const form = h('form', { class: 'modal-body', onsubmit: async (e) => {
      e.preventDefault();
      errorBox.textContent = '';
      const body = { kind: current, member_ids: [...chosen.keys()] };
      const name = $('input[name=name]', form).value.trim();
      const topic = $('input[name=topic]', form).value.trim();
      if (current !== 'direct') {
        if (name) body.name = name;
        if (current === 'channel' && topic) body.topic = topic;
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
        const res = await api.post('/conversations', body);
        upsertConv(res.conversation);
        await loadDetail(res.conversation.id, { quiet: true });
        close();
        go(`#/c/${encodeURIComponent(res.conversation.id)}`);
      } catch (err) {
        errorBox.textContent = errorText(err);
      }
    } }, tabs, hint, nameField, topicField,
    h('div', { class: 'field' }, h('span', {}, t('new.members')), chips, picker),
    errorBox,
    h('div', { class: 'modal-actions' },
      h('button', { class: 'btn', type: 'button', onclick: () => close() }, t('common.cancel')),
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'new-create' }, t('new.create'))));
    renderKind();
    return form;
  }, { testid: 'new-conversation-dialog' });
}

async function openDirect(uid) {
  try {
    const res = await api.post('/conversations', { kind: 'direct', member_ids: [uid] });
    upsertConv(res.conversation);
    await loadDetail(res.conversation.id, { quiet: true });
    go(`#/c/${encodeURIComponent(res.conversation.id)}`);
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

// ---------------------------------------------------------------- channels
function renderChannels(main) {
  clear(main);
  const list = h('ul', { class: 'card-list', 'data-testid': 'channel-list' });
  const search = h('input', { type: 'search', placeholder: t('channels.search'), 'aria-label': t('channels.search'),
    'data-testid': 'channel-search' });
  let seq = 0;
  const load = async () => {
    const my = ++seq;
    let channels = [];
    try {
      const res = await api.get('/channels', { query: search.value.trim() || null });
      channels = res.conversations || res.channels || [];
    } catch (err) {
      if (my === seq) {
        clear(list);
        list.append(h('li', { class: 'empty-list' }, errorText(err)));
      }
      return;
    }
    if (my !== seq) return;
    clear(list);
    if (!channels.length) list.append(h('li', { class: 'empty-list' }, t('channels.none')));
    for (const ch of channels) {
      const joined = ch.joined || state.convs.has(ch.id);
      list.append(h('li', { class: 'card', dataset: { cid: ch.id }, 'data-testid': 'channel' },
        h('span', { class: 'avatar avatar-md avatar-channel', 'aria-hidden': 'true' }, '#'),
        h('div', { class: 'card-main' },
          h('div', { class: 'card-title' }, ch.name || t('conversation.untitled')),
          h('div', { class: 'card-sub' }, [ch.topic, t('members.count', { n: ch.member_count || 0 })].filter(Boolean).join(' · '))),
        joined
          ? h('a', { class: 'btn', href: `#/c/${encodeURIComponent(ch.id)}` }, t('channels.open'))
          : h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'join', onclick: async (e) => {
            e.target.disabled = true;
            try {
              await api.post(`/conversations/${ch.id}/members`, { user_ids: [state.me.id] });
              await refreshConversations();
              go(`#/c/${encodeURIComponent(ch.id)}`);
            } catch (err) {
              e.target.disabled = false;
              toast(errorText(err), 'error');
            }
          } }, t('channels.join'))));
    }
  };
  let timer = null;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  append(main, h('section', { class: 'page', 'data-testid': 'channels-page' },
    h('header', { class: 'page-header' }, backButton(), h('h2', {}, t('channels.title')),
      h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'new-channel',
        onclick: () => openNewConversation('channel') }, t('channels.create'))),
    h('div', { class: 'page-body' }, h('div', { class: 'toolbar' }, search), list)));
  load();
}

// ---------------------------------------------------------------- directory
function renderDirectory(main) {
  clear(main);
  let departments = [];
  let selected = state.viewArg || '';
  const deptList = h('ul', { class: 'dept-list', 'data-testid': 'dept-list' });
  const people = h('ul', { class: 'card-list people', 'data-testid': 'people' });
  const search = h('input', { type: 'search', placeholder: t('directory.search'), 'aria-label': t('directory.search'),
    'data-testid': 'directory-search' });
  let seq = 0;
  const renderDepts = () => {
    clear(deptList);
    const item = (id, name, depth) => h('li', {}, h('button', {
      type: 'button', class: `dept${selected === id ? ' active' : ''}`, style: { paddingLeft: `${12 + depth * 16}px` },
      'data-testid': 'dept', onclick: () => { selected = id; search.value = ''; renderDepts(); loadPeople(); },
    }, name));
    deptList.append(item('', t('directory.everyone'), 0));
    const children = new Map();
    for (const d of departments) {
      const key = d.parent_id || '';
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(d);
    }
    const known = new Set(departments.map((d) => d.id));
    const walk = (parent, depth) => {
      for (const d of (children.get(parent) || []).sort((a, b) => a.name.localeCompare(b.name))) {
        deptList.append(item(d.id, d.name, depth));
        walk(d.id, depth + 1);
      }
    };
    walk('', 0);
    // Orphans (parent not visible) at the top level.
    for (const d of departments) if (d.parent_id && !known.has(d.parent_id)) deptList.append(item(d.id, d.name, 0));
  };
  const loadPeople = async () => {
    const my = ++seq;
    const q = search.value.trim();
    let users = [];
    try {
      const res = await api.get('/users', { query: q || null, department_id: q ? null : selected || null, limit: 200 });
      users = res.users || [];
    } catch (err) {
      toast(errorText(err), 'error');
    }
    if (my !== seq) return;
    for (const u of users) state.users.set(u.id, u);
    loadPresence(users.map((u) => u.id).filter((id) => !state.presence.has(id)).slice(0, 200));
    clear(people);
    if (!users.length) people.append(h('li', { class: 'empty-list' }, t('common.no_results')));
    const deptName = new Map(departments.map((d) => [d.id, d.name]));
    for (const u of users.sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username))) {
      const self = u.id === state.me.id;
      people.append(h('li', { class: `card${u.disabled ? ' disabled' : ''}`, 'data-testid': 'person', dataset: { uid: u.id } },
        avatar(u.id, u.display_name || u.username, { size: 'md', presence: self ? 'online' : state.presence.get(u.id) || 'offline' }),
        h('div', { class: 'card-main' },
          h('div', { class: 'card-title' }, u.display_name || u.username,
            u.role === 'owner' || u.role === 'admin' ? h('span', { class: 'tag' }, t(`role.${u.role}`)) : null,
            u.disabled ? h('span', { class: 'tag tag-muted' }, t('admin.disabled')) : null),
          h('div', { class: 'card-sub' }, [`@${u.username}`,
            ...(u.department_ids || []).map((id) => deptName.get(id)).filter(Boolean)].join(' · '))),
        self || u.disabled ? null : h('button', { class: 'btn', type: 'button', 'data-testid': 'message-person',
          onclick: () => openDirect(u.id) }, t('directory.message'))));
    }
  };
  let timer = null;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(loadPeople, 200); });
  append(main, h('section', { class: 'page', 'data-testid': 'directory-page' },
    h('header', { class: 'page-header' }, backButton(), h('h2', {}, t('directory.title'))),
    h('div', { class: 'page-body directory' },
      h('nav', { class: 'dept-nav', 'aria-label': t('directory.departments') },
        h('div', { class: 'section-label' }, t('directory.departments')), deptList),
      h('div', { class: 'directory-main' }, h('div', { class: 'toolbar' }, search), people))));
  renderDepts();
  api.get('/departments').then((res) => {
    departments = res.departments || [];
    renderDepts();
    loadPeople();
  }).catch(() => loadPeople());
}

// ---------------------------------------------------------------- global handlers
document.addEventListener('click', (e) => {
  if (state.pickerFor && !e.target.closest('.reaction-picker, .msg-actions')) {
    state.pickerFor = null;
    invalidate('messages');
  }
});
setInterval(() => { if (state.view === 'chat') invalidate('typing'); }, 2000);

boot();
