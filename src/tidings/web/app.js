// Tidings web client: the shell. Plain ES modules, no build step, no third-party code.
//
// The shell holds the one current state (changed only by state.js's `apply`), the
// ClientSession (sync.js) and the socket loop around it (api.js), carries out the
// effects the reducer returns, loads over REST, routes, and renders on the next
// animation frame. The screens are view modules that take a context (`ctx` below):
// login.js, conv_list.js, messages.js, composer.js, members.js, channels.js,
// directory.js, admin.js, new_conversation.js. docs/web.md describes the layout.
import { Api, Connection } from './api.js';
import { h, append, clear, icon, setAvatarSource } from './dom.js';
import { t, setLanguage, pickLanguage, language, LANGUAGES, LANGUAGE_KEY } from './i18n.js';
import { renderAdmin } from './admin.js';
import { renderAccount, renderEnrolment } from './account.js';
import { renderLoginScreen } from './login.js';
import { toast, openModal, confirmDialog, promptDialog, errorText, uuid } from './ui.js';
import { apply, initialState, msgStore, newestSeq, oldestSeq, displayName, jumpPlan, unreadTotal } from './state.js';
import { ClientSession } from './sync.js';
import { buildSidebar, buildMeBar, renderConvList } from './conv_list.js';
import { createChatView } from './messages.js';
import { renderChannels } from './channels.js';
import { renderDirectory } from './directory.js';
import { openNewConversation, openDirect } from './new_conversation.js';
import { userPicker } from './picker.js';
import { backButton } from './names.js';
import { applyTheme, savedTheme, registerServiceWorker } from './pwa.js';
import { setTimeZone } from './format.js';
import { renderSearch, searchForRoute } from './search.js';
import { maybeNotify, setFaviconBadge } from './notifications.js';
import { loadSaved } from './saved.js';
import { loadScheduled, renderScheduledBadges } from './scheduled.js';

const TOKEN_KEY = 'tidings.token';
const USER_KEY = 'tidings.user';
const OIDC_LOGOUT_KEY = 'tidings.oidc_logout'; // the provider's end-session URL, if signed in by it
const PAGE = 50;
const AROUND = 25; // messages loaded on each side of a message jumped to

let state = initialState();
// avatars drawn anywhere (dom.js avatar) show the picture of the user as the state has them
setAvatarSource((uid) => state.users.get(uid) || (state.me && state.me.id === uid ? state.me : null));
let token = localStorage.getItem(TOKEN_KEY);
let session = null; // ClientSession of the signed-in user
let conn = null; // its Connection
let chat = null; // the open conversation's view (messages.js)
let loadingInitial = false;
let buffered = []; // outcomes received before the REST state was loaded
let sessionStarted = 0;

const api = new Api({ getToken: () => token, onUnauthenticated: () => signedOut() });
const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------- state and effects
function dispatch(action) {
  const r = apply(state, action);
  state = r.state;
  for (const effect of r.effects) run(effect);
}

function run(e) {
  switch (e.type) {
    case 'render':
      invalidate(...e.parts);
      break;
    case 'render_later':
      setTimeout(() => invalidate(...e.parts), e.delay);
      break;
    case 'toast':
      toast(t(e.key), e.kind);
      break;
    case 'navigate':
      location.hash = e.hash;
      break;
    case 'load_detail':
      loadDetail(e.cid, { quiet: true });
      break;
    case 'refresh_conversations':
      refreshConversations();
      break;
    case 'load_users':
      for (const uid of e.ids) fetchUser(uid);
      break;
    case 'load_presence':
      loadPresence(e.ids);
      break;
    case 'remember_user':
      localStorage.setItem(USER_KEY, JSON.stringify(e.user));
      break;
    case 'track_history':
      if (session) session.track(e.cid, e.newest);
      break;
    case 'forget_history':
      if (session) session.untrack(e.cid);
      break;
    case 'check_read':
      requestAnimationFrame(() => maybeMarkRead());
      break;
    case 'post_read':
      postRead(e.cid, e.seq);
      break;
    case 'load_latest':
      loadLatest(e.cid);
      break;
    case 'load_thread':
      loadThread(e.cid, e.root);
      break;
    case 'load_thread_replies':
      loadThreadReplies(e.cid, e.root);
      break;
    case 'thread_check_read':
      requestAnimationFrame(() => checkThreadRead());
      break;
    case 'apply_preferences':
      applyPreferences(e.preferences);
      break;
    case 'notify_message':
      maybeNotify(ctx, e.message);
      break;
    default:
      console.error('unknown effect', e);
  }
}

// The context every view module gets: the current state (read only), dispatch, REST,
// and the shell's few operations. No view keeps global state.
const ctx = {
  api,
  get state() { return state; },
  dispatch,
  userName,
  outbox: () => (session ? session.outbox : []),
  sendMessage,
  invokeCommand,
  loadCommands,
  retry,
  discard,
  notify: (frame) => conn && conn.notify(frame),
  loadDraft,
  saveDraft,
  loadDetail,
  loadOlder,
  loadNewer,
  loadLatestAgain,
  openMessage: (cid, seq) => jumpToMessage(cid, seq),
  loadPresence,
  refreshConversations,
  markRead: () => maybeMarkRead(),
  markUnread: (cid, fromSeq) => markUnread(cid, fromSeq),
  go,
  toast,
  errorText,
  openModal,
  confirmDialog,
  promptDialog,
  backButton,
  userPicker: (opts) => userPicker(ctx, opts),
  openNewConversation: (kind) => openNewConversation(ctx, kind),
  openDirect: (uid) => openDirect(ctx, uid),
  languageSelect: () => languageSelect((code) => {
    rerenderAll();
    // signed in, the choice is the profile's too (every device follows it)
    if (state.me) api.patch('/users/me', { language: code }).catch(() => { /* this device keeps it */ });
  }, { compact: true }),
  applyPreferences: (prefs) => applyPreferences(prefs),
  signOut: () => signOut(),
};

function userName(uid) {
  const name = displayName(state, uid);
  if (name != null) return name;
  if (uid && !pendingUserFetch.has(uid)) fetchUser(uid);
  return '…';
}

const pendingUserFetch = new Set();
async function fetchUser(uid) {
  if (pendingUserFetch.has(uid)) return;
  pendingUserFetch.add(uid);
  try {
    const { user } = await api.get(`/users/${encodeURIComponent(uid)}`);
    dispatch({ type: 'users_loaded', users: [user] });
  } catch { /* keep the placeholder */ }
}

// ---------------------------------------------------------------- storage
// Everything kept under `tidings.` belongs to a signed-in user (token, user, drafts,
// outbox) except the language, a choice of the device: when a session ends (sign-out, or
// the server refuses the token), all of it goes, whoever it belonged to, so that the next
// person at this browser finds nothing of the last one's.
const DEVICE_KEYS = new Set([LANGUAGE_KEY]);

function forgetUserData() {
  for (const store of [localStorage, sessionStorage]) {
    const keys = [];
    for (let i = 0; i < store.length; i += 1) keys.push(store.key(i));
    for (const key of keys) if (key && key.startsWith('tidings.') && !DEVICE_KEYS.has(key)) store.removeItem(key);
  }
}

const draftKey = (cid) => `tidings.draft.${state.me ? state.me.id : ''}.${cid}`;
const outboxKey = () => `tidings.outbox.${state.me ? state.me.id : ''}`;

function loadDraft(cid) {
  return localStorage.getItem(draftKey(cid)) || '';
}
function saveDraft(cid, text) {
  if (!state.me) return; // signed out meanwhile: keep nothing
  if (text) localStorage.setItem(draftKey(cid), text);
  else localStorage.removeItem(draftKey(cid));
}
function saveOutbox() {
  const keep = session ? session.outbox : [];
  if (keep.length) localStorage.setItem(outboxKey(), JSON.stringify(keep));
  else localStorage.removeItem(outboxKey());
}
function loadOutbox() {
  try {
    const list = JSON.parse(localStorage.getItem(outboxKey()) || '[]');
    return Array.isArray(list) ? list.filter((p) => p && p.client_msg_id) : [];
  } catch {
    return [];
  }
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
  const parts = new Set(dirty);
  dirty.clear();
  const all = parts.has('all');
  if (!state.me || !$('.shell')) return;
  if (all || parts.has('list')) {
    renderConvList(ctx);
    setFaviconBadge(unreadTotal(state));
  }
  if (parts.has('sidebar')) {
    const bar = $('.me-bar');
    if (bar) bar.replaceWith(buildMeBar(ctx));
  }
  if (all || parts.has('banner')) renderBanner();
  if (state.view === 'chat') {
    if (chat) chat.render(parts);
  } else if (parts.has('view') && state.view === 'home') {
    renderOtherView();
  } else if (state.view === 'search' && (all || parts.has('search') || parts.has('view'))) {
    renderOtherView(); // the results, or names that arrived since
  }
  if (all || parts.has('view') || parts.has('members') || parts.has('list')) updatePresenceDots();
  if (all || parts.has('scheduled') || parts.has('view')) renderScheduledBadges(ctx);
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
  applyTheme(savedTheme(), { remember: false });
  registerServiceWorker();
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
  document.addEventListener('click', (e) => {
    if (state.pickerFor && !e.target.closest('.reaction-picker, .msg-actions')) dispatch({ type: 'picker_closed' });
  });
  setInterval(() => { if (state.view === 'chat') invalidate('typing'); }, 2000);
  if (await returnFromSso()) return;
  if (!token) {
    renderLogin();
    return;
  }
  try {
    const me = await api.get('/users/me');
    if (me.second_factor_required) enrolFirst();
    else startSession(me.user, me.preferences);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      forgetUserData();
      token = null;
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
      onChange(e.target.value);
    },
  }, LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === language(), title: l.label },
    compact ? l.short : l.label)));
}

// ---------------------------------------------------------------- sign in / out
// Back from the identity provider (api/v1/auth/oidc/callback sent the browser here):
// `#oidc=done` means a finished sign-in waits, bound to this browser by an HttpOnly
// cookie: exchange it for a session token. `#oidc-error=<reason>` says why not. Nothing
// secret is ever in the address. True when it handled the page.
const SSO_REASONS = ['cancelled', 'provider', 'state', 'invalid_token', 'unavailable', 'not_allowed',
  'disabled', 'rate_limited'];
async function returnFromSso() {
  const m = /^#oidc(=done|-error=(\w+))$/.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, '', location.pathname + location.search);
  if (m[2]) {
    renderLogin(t(`login.oidc_${SSO_REASONS.includes(m[2]) ? m[2] : 'failed'}`));
    return true;
  }
  try {
    const res = await api.post('/auth/oidc/exchange', { device: navigator.userAgent.slice(0, 120) });
    forgetUserData(); // whoever was signed in at this browser before
    signedIn(res);
    if (res.logout_url) localStorage.setItem(OIDC_LOGOUT_KEY, res.logout_url);
  } catch (err) {
    if (token) return false; // a stale return address: the session here goes on
    renderLogin(err.code === 'invalid_credentials' ? t('login.oidc_state') : errorText(err));
  }
  return true;
}

function signedIn(res) {
  token = res.token;
  localStorage.setItem(TOKEN_KEY, res.token);
  if (res.second_factor_required) enrolFirst();
  else startSession(res.user);
}

// The organization requires a second factor and this account has none: this session
// may only enrol one (the server refuses everything else, the WebSocket included), so
// the app waits until it is done.
function enrolFirst() {
  document.title = t('app.name');
  renderEnrolment($('#app'), {
    api, toast, errorText,
    onEnrolled: async () => {
      try {
        const me = await api.get('/users/me');
        if (!me.second_factor_required) startSession(me.user);
      } catch (err) {
        if (err.status === 401 || err.status === 403) signedOut();
      }
    },
    signOut: () => signOut(),
  });
}

function renderLogin(notice = '', keep = {}) {
  document.title = t('app.name');
  renderLoginScreen($('#app'), {
    api, notice, keep, errorText,
    languageSelect: (onChange) => languageSelect(onChange),
    onSignedIn: signedIn,
    rerender: (kept) => renderLogin('', kept),
  });
}

async function signOut() {
  const providerLogout = localStorage.getItem(OIDC_LOGOUT_KEY);
  try {
    await api.post('/auth/logout');
  } catch { /* the token is dropped anyway */ }
  signedOut();
  // Signed in by the identity provider: end its session too (RP-initiated logout); it
  // sends the browser back here.
  if (providerLogout && /^https?:\/\//.test(providerLogout)) location.assign(providerLogout);
}

function signedOut() {
  if (!token && !state.me) return;
  const old = conn;
  conn = null;
  session = null;
  if (old) old.stop();
  forgetUserData();
  token = null;
  state = initialState();
  chat = null;
  loadingInitial = false;
  buffered = [];
  if (location.hash) history.replaceState(null, '', location.pathname);
  renderLogin();
}

// The user's own settings (GET /users/me, and `user_updated` events of their own
// connections): the theme, the time zone of the times shown, and the language, which
// re-renders the app when it changes.
async function applyPreferences(prefs) {
  if (!prefs) return;
  applyTheme(prefs.theme);
  setTimeZone(prefs.time_zone);
  if (prefs.language && prefs.language !== language() && LANGUAGES.some((l) => l.code === prefs.language)) {
    await setLanguage(prefs.language, { remember: true });
    if (state.me && $('.shell')) rerenderAll();
  } else if (state.me && $('.shell')) {
    invalidate('all');
  }
}

function startSession(user, preferences = null) {
  if (preferences) applyPreferences(preferences);
  else {
    api.get('/users/me').then((me) => {
      if (state.me && state.me.id === me.user.id) {
        dispatch({ type: 'users_loaded', users: [me.user] });
        applyPreferences(me.preferences);
      }
    }).catch(() => { /* the connection reports trouble */ });
  }
  dispatch({ type: 'signed_in', user });
  localStorage.setItem(USER_KEY, JSON.stringify(user));
  sessionStarted = Date.now();
  renderShell();
  session = new ClientSession({ outbox: loadOutbox() });
  const mine = new Connection({
    session,
    getToken: () => token,
    onOutcomes: (outcomes) => { if (conn === mine) onOutcomes(outcomes); },
    onStatus: (status) => { if (conn === mine) dispatch({ type: 'status', status }); },
  });
  conn = mine;
  conn.start();
  route();
}

// ---------------------------------------------------------------- connection and events
function onOutcomes(outcomes) {
  let outboxChanged = false;
  for (const o of outcomes) {
    switch (o.type) {
      case 'ready':
        onReady(o);
        break;
      case 'delivered':
      case 'signal':
        if (!state.booted) buffered.push(o);
        else applyOutcome(o);
        break;
      case 'sent':
        outboxChanged = true;
        if (o.message) dispatch({ type: 'message_stored', message: o.message });
        break;
      case 'send_failed':
        outboxChanged = true;
        break;
      case 'fill_gap':
        fillGap(o);
        break;
      case 'refused':
      case 'ended':
        if (o.next === 'resume_refused') {
          // Start fresh: the next `ready` reloads the state over REST.
          dispatch({ type: 'unbooted' });
          buffered = [];
        } else if (o.next === 'auth_failed' && o.type === 'ended') {
          checkToken(); // maybe the token is no longer valid: then sign out
        }
        break;
      default:
        break; // dropped, answered, reconnect_soon, ignored: nothing more to do here
    }
  }
  if (outboxChanged) {
    saveOutbox();
    invalidate('messages', 'list');
  }
}

function applyOutcome(o) {
  if (o.type === 'delivered') {
    try {
      dispatch({ type: 'event', event: o.event });
    } catch (err) {
      console.error('event failed', o, err);
    }
  } else if (o.frame.type === 'typing') {
    dispatch({ type: 'typing', conversation_id: o.frame.conversation_id, user_id: o.frame.user_id, now: Date.now() });
  } else if (o.frame.type === 'presence') {
    dispatch({ type: 'presence', user_id: o.frame.user_id, state: o.frame.state });
  } else if (o.frame.type === 'ephemeral') {
    dispatch({ type: 'ephemeral', frame: o.frame });
  }
}

async function checkToken() {
  try {
    await api.get('/users/me');
  } catch (err) {
    if (err.status === 401 || err.status === 403) signedOut();
  }
}

async function onReady(o) {
  dispatch({ type: 'ready', user: o.user });
  conn.notify({ type: 'presence', state: document.visibilityState === 'visible' ? 'online' : 'away' });
  if (!state.booted) {
    // A load already running (the connection dropped and came back meanwhile) applies
    // what this connection replays once it is done.
    if (loadingInitial) return;
    loadingInitial = true;
    const mine = session;
    try {
      await loadInitialState();
    } catch (err) {
      if (session !== mine) return;
      // Could not load: drop this connection and try again (the banner stays up).
      loadingInitial = false;
      buffered = [];
      session.forgetPosition();
      dispatch({ type: 'status', status: 'reconnecting' });
      conn.reconnectNow();
      return;
    }
    if (session !== mine) return;
    loadingInitial = false;
    dispatch({ type: 'booted' });
    const pending = buffered;
    buffered = [];
    for (const b of pending) applyOutcome(b);
  } else {
    // Resumed: the server replays what we missed. Refresh the list in the background
    // (absolute counters) and retry read positions that did not reach the server.
    refreshConversations();
    for (const [cid, seq] of readRetry) postRead(cid, seq);
  }
  if (conn && conn.ready) conn.write(session.flush());
  saveOutbox();
  invalidate('all');
  maybeMarkRead();
}

async function loadInitialState() {
  const [convRes, usersRes] = await Promise.all([
    api.get('/conversations'),
    api.get('/users', { limit: 200 }).catch(() => ({ users: [] })),
  ]);
  session.forgetHistory();
  dispatch({ type: 'initial_loaded', conversations: convRes.conversations || [], users: usersRes.users || [] });
  loadCommands();
  loadNotifyPrefs();
  loadSaved(ctx);
  loadScheduled(ctx);
  // Names of direct conversations and presence need the member lists.
  const needDetails = [...state.convs.values()].filter((c) => c.kind !== 'channel').slice(0, 60);
  await Promise.all(needDetails.map((c) => loadDetail(c.id, { quiet: true })));
  await loadPresenceForKnownPeople();
  // Load the first page of every conversation's newest message for previews (small lists only).
  if (state.convs.size <= 30) {
    await Promise.all([...state.convs.values()].filter((c) => c.last_seq > 0).map(async (c) => {
      try {
        const res = await api.get(`/conversations/${c.id}/messages`, { limit: 1 });
        const m = (res.messages || [])[res.messages.length - 1];
        if (m) dispatch({ type: 'preview_loaded', message: m });
      } catch { /* previews are optional */ }
    }));
  }
  if (state.view === 'chat' && state.cid) {
    if (!state.convs.has(state.cid)) {
      location.hash = '#/';
    } else {
      loadLatest(state.cid);
      loadDetail(state.cid, { quiet: true });
    }
  }
  if (state.view !== 'chat') invalidate('view');
}

// Do not disturb, the time zone it follows and who may mention everyone (notify.js).
function loadNotifyPrefs() {
  api.get('/users/me/notifications')
    .then((prefs) => dispatch({ type: 'notify_prefs_loaded', prefs }))
    .catch(() => { /* without them: no do not disturb known, the default confirmation */ });
}

let refreshing = null;
function refreshConversations() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const res = await api.get('/conversations');
      dispatch({ type: 'conversations_refreshed', conversations: res.conversations || [] });
    } catch { /* try again on the next occasion */ }
    refreshing = null;
  })();
  return refreshing;
}

async function loadDetail(cid, { quiet = false } = {}) {
  try {
    const { conversation } = await api.get(`/conversations/${encodeURIComponent(cid)}`);
    const unknown = (conversation.members || []).map((m) => m.user_id).filter((uid) => !state.users.has(uid));
    await Promise.all(unknown.slice(0, 50).map((uid) => fetchUser(uid)));
    dispatch({ type: 'detail_loaded', conversation });
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
      dispatch({ type: 'presence_loaded', presence: res.presence || {} });
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

// ---------------------------------------------------------------- history
async function loadLatest(cid) {
  if (msgStore(state, cid).loading) return;
  dispatch({ type: 'page_started', cid, mode: 'latest' });
  const gen = msgStore(state, cid).gen;
  try {
    const res = await api.get(`/conversations/${cid}/messages`, { limit: PAGE });
    dispatch({ type: 'page_loaded', cid, mode: 'latest', messages: res.messages || [], has_more: res.has_more, gen });
    loadThreads(cid);
  } catch (err) {
    dispatch({ type: 'page_failed', cid, mode: 'latest', status: err.status, gen });
  }
}

// ---------------------------------------------------------------- threads
// The conversation's threads (summaries and my state: the reply-count lines and the
// thread unread), the newest activity first; one page is enough for the lines shown.
async function loadThreads(cid) {
  try {
    const res = await api.get(`/conversations/${cid}/threads`, { limit: 200 });
    dispatch({ type: 'threads_loaded', cid, threads: res.threads || [] });
  } catch (err) {
    void err; // the timeline works without them; the next open tries again
  }
}

async function loadThread(cid, root) {
  try {
    const res = await api.get(`/conversations/${cid}/threads/${root}`);
    dispatch({ type: 'thread_loaded', cid, thread: res.thread });
  } catch (err) {
    if (err.status === 404 && state.thread && state.thread.root === root) dispatch({ type: 'thread_closed' });
  }
}

async function loadThreadReplies(cid, root) {
  try {
    let after = 0;
    for (;;) {
      const res = await api.get(`/conversations/${cid}/messages`, { thread_root_seq: root, after_seq: after, limit: 200 });
      const messages = res.messages || [];
      dispatch({ type: 'thread_replies_loaded', cid, root, messages });
      if (!res.has_more || !messages.length) return;
      after = messages[messages.length - 1].seq;
    }
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

// The open thread's replies on screen count as read (its own read position).
let threadReading = null;
function checkThreadRead() {
  const open = state.thread;
  if (!open || document.visibilityState !== 'visible') return;
  const th = state.threads.get(`${open.cid}:${open.root}`);
  if (!th || !th.last_reply_seq || (th.read_seq || 0) >= th.last_reply_seq) return;
  const key = `${open.cid}:${open.root}:${th.last_reply_seq}`;
  if (threadReading === key) return;
  threadReading = key;
  api.post(`/conversations/${open.cid}/threads/${open.root}/read`, { seq: th.last_reply_seq })
    .then((res) => dispatch({ type: 'thread_state', cid: open.cid, root: open.root, thread: res.thread }))
    .catch(() => { threadReading = null; });
}

// "Latest messages" after a jump: the window is dropped for the newest page.
function loadLatestAgain(cid) {
  const s = msgStore(state, cid);
  if (!s.hasNewer || s.loading) return false;
  loadLatest(cid);
  return true;
}

// Open message `seq` of `cid` (a search result): scroll to it when it is held, else
// load a window around it (the messages up to it and after it), then scroll there.
async function jumpToMessage(cid, seq) {
  const hash = `#/c/${encodeURIComponent(cid)}`;
  if (jumpPlan(state, cid, seq) === 'focus') {
    dispatch({ type: 'focus_requested', cid, seq });
    go(hash);
    return;
  }
  dispatch({ type: 'page_started', cid, mode: 'around', seq });
  const gen = msgStore(state, cid).gen;
  go(hash);
  const path = `/conversations/${encodeURIComponent(cid)}/messages`;
  try {
    const [upTo, after] = await Promise.all([
      api.get(path, { before_seq: seq + 1, limit: AROUND }),
      api.get(path, { after_seq: seq, limit: AROUND }),
    ]);
    dispatch({ type: 'page_loaded', cid, mode: 'around', gen,
      messages: [...(upTo.messages || []), ...(after.messages || [])],
      has_more: upTo.has_more, has_newer: after.has_more });
  } catch (err) {
    dispatch({ type: 'page_failed', cid, mode: 'around', status: err.status, gen });
  }
}

// After a jump: the page after the newest message held. Returns whether a load started.
function loadNewer(cid) {
  const s = msgStore(state, cid);
  if (s.loading || !s.hasNewer || !s.loaded) return false;
  dispatch({ type: 'page_started', cid, mode: 'newer' });
  const gen = msgStore(state, cid).gen;
  (async () => {
    try {
      const res = await api.get(`/conversations/${cid}/messages`, { after_seq: newestSeq(s), limit: PAGE });
      dispatch({ type: 'page_loaded', cid, mode: 'newer', messages: res.messages || [], has_more: res.has_more, gen });
    } catch {
      dispatch({ type: 'page_failed', cid, mode: 'newer', gen }); // retried on the next scroll
    }
  })();
  return true;
}

// Load the page before the oldest message held. Returns whether a load started.
function loadOlder(cid) {
  const s = msgStore(state, cid);
  if (s.loading || !s.hasMore || !s.loaded) return false;
  const before = oldestSeq(s);
  if (before <= 1) {
    dispatch({ type: 'history_complete', cid });
    return false;
  }
  dispatch({ type: 'page_started', cid, mode: 'older' });
  const gen = msgStore(state, cid).gen;
  (async () => {
    try {
      const res = await api.get(`/conversations/${cid}/messages`, { before_seq: before, limit: PAGE });
      dispatch({ type: 'page_loaded', cid, mode: 'older', messages: res.messages || [], has_more: res.has_more, gen });
    } catch {
      dispatch({ type: 'page_failed', cid, mode: 'older', gen }); // retried on the next scroll
    }
  })();
  return true;
}

// The session saw a seq gap: load the history in between, page by page.
async function fillGap({ conversation_id: cid, after_seq: after, until_seq: until }) {
  const mine = session;
  let next = [];
  try {
    const res = await api.get(`/conversations/${cid}/messages`, { after_seq: after, limit: 200 });
    if (session !== mine) return;
    const list = res.messages || [];
    dispatch({ type: 'page_loaded', cid, mode: 'gap', messages: list });
    next = session.gapPage(cid, until, list, !!res.has_more);
  } catch {
    if (session === mine) session.gapFailed(cid); // the next message or a reload finds it again
  }
  onOutcomes(next);
}

// ---------------------------------------------------------------- slash commands
async function loadCommands() {
  try {
    const res = await api.get('/commands');
    dispatch({ type: 'commands_loaded', commands: res.commands || [] });
  } catch { /* no autocomplete: /text is sent as a message */ }
}

// `/command text`: accepted now, answered later (a message, or an ephemeral reply).
async function invokeCommand(cid, command, text) {
  try {
    await api.post(`/conversations/${encodeURIComponent(cid)}/commands`, { command, text });
  } catch (err) {
    toast(err.code === 'not_found' ? t('command.unknown', { name: command }) : errorText(err), 'error');
    if (err.code === 'not_found') loadCommands();
  }
}

// ---------------------------------------------------------------- sending
function sendMessage(cid, body, replyTo, attachments = [], thread = null) {
  const message = { client_msg_id: uuid(), conversation_id: cid, body, reply_to_seq: replyTo || null,
    created_at: new Date().toISOString(), attachments, ...(thread || {}) };
  const frame = session.send(message, { hold: !state.booted });
  saveOutbox();
  invalidate('messages', 'list');
  if (frame) conn.write([frame]);
}

function retry(clientMsgId) {
  const frame = session.retry(clientMsgId, { hold: !state.booted });
  saveOutbox();
  if (frame && state.booted) conn.write([frame]);
  invalidate('messages');
}

function discard(clientMsgId) {
  session.discard(clientMsgId);
  saveOutbox();
  invalidate('messages', 'list');
}

// ---------------------------------------------------------------- read positions
const readTimers = new Map();
const readRetry = new Map();
function maybeMarkRead() {
  if (state.view !== 'chat' || !state.cid || !state.booted || document.visibilityState !== 'visible') return;
  const s = state.msgs.get(state.cid);
  // A window after a jump is not the newest: nothing is marked read until it is.
  if (!state.convs.get(state.cid) || !s || !s.loaded || s.hasNewer) return;
  if (!chat || chat.cid !== state.cid || !chat.atBottom()) return;
  dispatch({ type: 'read_up_to', cid: state.cid, seq: newestSeq(s) });
}

// Mark a conversation unread from message `fromSeq` on (null: its last message): the
// read position moves back on the server; the open conversation stays unread until left.
async function markUnread(cid, fromSeq = null) {
  readRetry.delete(cid);
  clearTimeout(readTimers.get(cid));
  try {
    const res = await api.post(`/conversations/${encodeURIComponent(cid)}/unread`,
      fromSeq ? { from_seq: fromSeq } : {});
    dispatch({ type: 'marked_unread', cid, read_seq: res.read_seq, unread: res.unread });
    toast(t('unread.marked'));
  } catch (err) {
    toast(errorText(err), 'error');
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
  if (chat) chat.closePopups();
  dispatch({ type: 'routed', section, arg, arg2 });
  if (state.view === 'chat') openConversation(state.cid);
  else renderMain();
  if (state.view === 'search') searchForRoute(ctx);
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function openConversation(cid) {
  renderMain();
  if (!state.booted) return; // loaded once the connection is ready
  if (!state.convs.has(cid)) {
    loadDetail(cid).then((d) => {
      if (d && (d.members || []).some((m) => m.user_id === state.me.id)) {
        const { members, ...rest } = d;
        void members;
        dispatch({ type: 'conversation_upserted', conversation: rest });
        refreshConversations();
      }
    }).catch(() => {
      // A conversation one has left can still be read up to then (a search result in it).
      const s = msgStore(state, cid);
      if (state.focus && state.focus.cid === cid && (s.loading || s.bySeq.size)) return;
      toast(t('error.not_found'), 'error');
      go('#/');
    });
  } else {
    loadDetail(cid, { quiet: true });
  }
  if (!msgStore(state, cid).loaded) loadLatest(cid);
  if (!window.matchMedia('(max-width: 720px)').matches) setTimeout(() => chat && chat.focusComposer(), 0);
}

// ---------------------------------------------------------------- shell
function renderShell() {
  const root = $('#app');
  clear(root);
  chat = null;
  append(root,
    h('div', { id: 'banner', class: 'banner', hidden: true, role: 'status', 'data-testid': 'banner' }),
    h('div', { class: 'shell' }, buildSidebar(ctx), h('main', { class: 'main' })));
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
  const early = state.status === 'connecting' && Date.now() - sessionStarted < 1500;
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

function renderMain() {
  const main = $('.main');
  if (!main) return;
  clear(main);
  chat = null;
  if (state.view === 'chat') {
    chat = createChatView(ctx, state.cid);
    main.append(chat.el);
    chat.render(new Set(['all']));
  } else {
    renderOtherView();
  }
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
        h('button', { class: 'btn btn-primary', type: 'button', onclick: () => ctx.openNewConversation() }, t('list.new')),
        h('a', { class: 'btn', href: '#/channels' }, t('channels.browse')))));
  } else if (state.view === 'channels') renderChannels(main, ctx);
  else if (state.view === 'directory') renderDirectory(main, ctx);
  else if (state.view === 'account') renderAccount(main, ctx);
  else if (state.view === 'search') renderSearch(main, ctx);
  else if (state.view === 'admin') {
    renderAdmin(main, {
      ...ctx, state, tab: state.adminTab,
      onUsersChanged: (users) => dispatch({ type: 'users_loaded', users }),
    });
  }
}

boot();
