// The web client's state and the one function that changes it (docs/web.md).
//
//   apply(state, action) -> { state, effects }
//
// `state` is never mutated: a new state object is returned, sharing what did not
// change (so a view can compare by identity). `action` is a plain object with a
// `type`: a server event, a REST answer, or something the user did. `effects` are
// plain data for the shell (app.js) to carry out: render parts of the screen, show a
// toast, navigate, load something over REST, post a read position. Nothing here
// touches the DOM, the network, storage, timers or the clock (times come in actions).
// Node's test runner checks it (tests/web/state.test.mjs).

import { withFileUpdate } from './file_kinds.js';
import { countsEveryone } from './notify.js';
import { mergeResults } from './search_query.js';

export const TYPING_SHOW_MS = 6000;
export const ADMIN_TABS = ['users', 'departments', 'sso', 'identity', 'jobs', 'integrations', 'scim', 'webhooks', 'conversations', 'org', 'usage', 'audit'];

export function initialState({ me = null } = {}) {
  return {
    me, // the signed-in user
    users: new Map(), // id -> user
    convs: new Map(), // id -> conversation (list shape, with read_seq, unread, unread_mentions)
    details: new Map(), // id -> conversation with members
    msgs: new Map(), // cid -> { bySeq: Map(seq -> message), hasMore, hasNewer, loaded, loading, touched, gen }
    previews: new Map(), // cid -> last known message
    presence: new Map(), // uid -> online | away | offline
    typing: new Map(), // cid -> Map(uid -> shown until, ms)
    view: 'home', // home | chat | channels | directory | admin
    cid: null, // the open conversation
    viewArg: '',
    adminTab: 'users',
    replyTo: new Map(), // cid -> seq being replied to
    editing: null, // { cid, seq, text }
    actionsFor: null, // key of the message whose action bar is open (touch)
    pickerFor: null, // key of the message whose reaction picker is open
    membersOpen: false,
    firstUnread: new Map(), // cid -> read_seq when the conversation was opened (or null)
    booted: false, // REST state loaded after the first `ready`
    status: 'connecting', // connecting | online | reconnecting
    filter: '', // the conversation list's filter text
    ephemeral: new Map(), // cid -> [{ key, sender, body, at, command, notice }]: only the caller sees them
    commands: [], // the slash commands one may use: [{ name, description, usage }]
    focus: null, // { cid, seq }: the message to scroll to and mark (a search result), once
    search: emptySearch(), // the last search and its results (search.js shows them)
    threads: new Map(), // `${cid}:${root_seq}` -> thread (summary + my following, read_seq, unread)
    thread: null, // { cid, root }: the thread open in the side panel
    threadReplies: new Map(), // `${cid}:${root_seq}` -> Map(seq -> reply) of the open thread
    pinsVersion: new Map(), // cid -> count of pin events seen (pins.js reloads its panel on a change)
    // GET /users/me/notifications: { dnd: {until, schedule}, time_zone, mention_all } (notify.js)
    notifyPrefs: null,
    saved: new Set(), // `${cid}:${seq}` of my saved messages that I know of (saved.js)
    savedVersion: 0, // count of my saved-list events seen (an open saved panel reloads on a change)
    scheduled: new Map(), // id -> my scheduled message not sent yet (pending, sending) or failed (scheduled.js)
    scheduledVersion: 0, // count of changes to it (an open scheduled panel redraws)
    readHold: null, // the cid I marked unread: not marked read again while it stays open
  };
}

// ---------------------------------------------------------------- threads
export const threadKey = (cid, root) => `${cid}:${root}`;

// A message the main timeline shows: every one but the thread replies not also sent to
// the conversation (those are in their thread's panel).
export function inTimeline(m) {
  return !m.thread_root_seq || !!m.also_to_conversation;
}

// The thread unread of a conversation: the followed threads' unread replies.
export function threadUnread(state, cid) {
  let n = 0;
  for (const [key, th] of state.threads) if (key.startsWith(`${cid}:`) && th.following) n += th.unread || 0;
  return n;
}

function acceptThreadReply(state, m, effects) {
  const key = threadKey(m.conversation_id, m.thread_root_seq);
  const next = { ...state };
  const open = state.thread && threadKey(state.thread.cid, state.thread.root) === key;
  if (open) {
    const held = state.threadReplies.get(key) || new Map();
    if (!held.has(m.seq)) next.threadReplies = mapSet(state.threadReplies, key, mapSet(held, m.seq, m));
    effects.push({ type: 'thread_check_read' });
  }
  const th = state.threads.get(key);
  const own = !!state.me && m.sender_id === state.me.id;
  if (own) {
    // replying makes one a follower unless one unfollowed: the server knows which
    if (th) next.threads = mapSet(state.threads, key, { ...th, read_seq: Math.max(th.read_seq || 0, m.seq) });
    effects.push({ type: 'load_thread', cid: m.conversation_id, root: m.thread_root_seq });
  } else if (th && th.following && m.seq > (th.read_seq || 0) && !(th.counted || new Set()).has(m.seq)) {
    const counted = new Set(th.counted || []).add(m.seq); // a replayed event is counted once
    next.threads = mapSet(state.threads, key, { ...th, unread: (th.unread || 0) + 1, counted });
  }
  effects.push(render('thread', 'messages', 'header'));
  return next;
}

function updateThreadReply(state, m) {
  if (!m.thread_root_seq) return state;
  const key = threadKey(m.conversation_id, m.thread_root_seq);
  const held = state.threadReplies.get(key);
  if (!held || !held.has(m.seq)) return state;
  return { ...state, threadReplies: mapSet(state.threadReplies, key, mapSet(held, m.seq, m)) };
}

function applyThreadEvent(state, ev, effects) {
  const cid = ev.conversation_id;
  if (ev.kind === 'thread_updated') {
    const summary = ev.thread;
    if (!summary || summary.root_seq == null) return state;
    const key = threadKey(cid, summary.root_seq);
    const held = state.threads.get(key);
    if (!held) effects.push({ type: 'load_thread', cid, root: summary.root_seq });
    effects.push(render('messages', 'thread', 'header'));
    return { ...state, threads: mapSet(state.threads, key, { ...(held || { following: false, read_seq: 0, unread: 0 }),
      ...summary, conversation_id: cid }) };
  }
  // thread_read: my own state, from another device or this one: the exact unread again
  if (!state.me || ev.user_id !== state.me.id || ev.root_seq == null) return state;
  const key = threadKey(cid, ev.root_seq);
  const held = state.threads.get(key);
  effects.push({ type: 'load_thread', cid, root: ev.root_seq }, render('messages', 'thread', 'header'));
  if (!held) return state;
  return { ...state, threads: mapSet(state.threads, key, { ...held, following: !!ev.following,
    read_seq: ev.read_seq, ...(ev.following ? {} : { unread: 0 }) }) };
}

// The search view's state: the query, its order and conversation filter, the results
// of the pages loaded, the counts per conversation (`allCounts`: of the whole query,
// kept as filters while one conversation is shown), and the request under way (`req`).
export function emptySearch() {
  return { q: '', order: 'newest', conversationId: null, results: [], nextCursor: null, counts: [],
    countsCapped: false, allCounts: [], loading: false, error: null, ran: false, req: 0 };
}

// ---------------------------------------------------------------- slash commands
export const EPHEMERAL_KEPT = 20; // per conversation: older ones are dropped
const COMMAND_RE = /^\/([a-z0-9][a-z0-9_-]{0,31})(?:\s+([\s\S]*))?$/i;

// `/name args` naming a registered command: { command, text }; anything else is null
// (sent as a message, as before: a bot may read it).
export function parseCommand(text, commands) {
  const m = COMMAND_RE.exec(text.trim());
  if (!m) return null;
  const name = m[1].toLowerCase();
  if (!(commands || []).some((c) => c.name === name && !c.disabled)) return null;
  return { command: name, text: (m[2] || '').trim() };
}

// The commands offered while `/prefix` is typed (no space yet): by name.
export function commandMatches(commands, typed, limit = 8) {
  const m = /^\/([a-z0-9_-]*)$/i.exec(typed);
  if (!m) return [];
  const q = m[1].toLowerCase();
  return (commands || []).filter((c) => !c.disabled && c.name.startsWith(q))
    .sort((a, b) => a.name.localeCompare(b.name)).slice(0, limit);
}

// ---------------------------------------------------------------- saved messages
export function savedKey(cid, seq) {
  return `${cid}:${seq}`;
}

export function isSaved(state, cid, seq) {
  return state.saved.has(savedKey(cid, seq));
}

// ---------------------------------------------------------------- scheduled messages
// The states a scheduled message is listed in (GET /scheduled): not sent yet, or failed.
export const SCHEDULED_LISTED = Object.freeze(['pending', 'sending', 'failed']);

// My scheduled messages (of conversation `cid`, or all), the soonest first: the order of
// GET /scheduled (send_at, then id).
export function scheduledList(state, cid = null) {
  return [...state.scheduled.values()]
    .filter((x) => cid == null || x.conversation_id === cid)
    .sort((a, b) => (Date.parse(a.send_at) - Date.parse(b.send_at)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function withScheduled(state, item) {
  if (!item || typeof item.id !== 'string') return state;
  const scheduled = SCHEDULED_LISTED.includes(item.state)
    ? mapSet(state.scheduled, item.id, item)
    : mapDelete(state.scheduled, item.id); // sent or cancelled: it leaves the list
  return { ...state, scheduled, scheduledVersion: state.scheduledVersion + 1 };
}

// ---------------------------------------------------------------- small immutable helpers
function mapSet(map, key, value) {
  const next = new Map(map);
  next.set(key, value);
  return next;
}
function mapDelete(map, key) {
  if (!map.has(key)) return map;
  const next = new Map(map);
  next.delete(key);
  return next;
}
const ts = (s) => (s ? Date.parse(s) : 0) || 0;

// A conversation's messages held. Without a jump they run from some page back to the
// newest message. A jump (a search result) holds a window around its message instead:
// `hasNewer` says newer messages exist that are not held, so live messages are not
// added (they would sit after a gap) until the "newer" pages reach the newest again.
// `gen` counts the loads started: a page answering an older load is dropped.
export function emptyStore() {
  return { bySeq: new Map(), hasMore: true, hasNewer: false, loaded: false, loading: false, loadingMode: null,
    touched: null, pendingReactions: null, gen: 0 };
}
export function msgStore(state, cid) {
  return state.msgs.get(cid) || emptyStore();
}
export function newestSeq(store) {
  let max = 0;
  for (const seq of store.bySeq.keys()) if (seq > max) max = seq;
  return max;
}
// Whether a live message goes into the store (see emptyStore).
function takesLive(s) {
  if (s.hasNewer) return s.loading && s.loadingMode === 'newer';
  return s.loaded || s.loading;
}

// What opening message `seq` of `cid` needs: 'focus' when it is held in a store that
// reaches it without a load under way (scroll to it), else 'load' (a window around it).
export function jumpPlan(state, cid, seq) {
  const s = state.msgs.get(cid);
  return s && s.loaded && !s.loading && s.bySeq.has(seq) ? 'focus' : 'load';
}

export function oldestSeq(store) {
  let min = Infinity;
  for (const seq of store.bySeq.keys()) if (seq < min) min = seq;
  return min === Infinity ? 0 : min;
}

// A conversation's unread from its positions: the messages after read_seq but the
// thread replies not also sent to it (`thread_only`: how many of those come after
// read_seq; docs/protocol.md, "Unread"), which are their threads' unread.
function counted(c) {
  const after = Math.max(0, (c.last_seq || 0) - (c.read_seq || 0));
  c.thread_only = Math.min(after, c.thread_only || 0);
  c.unread = after - c.thread_only;
  if (c.unread === 0) c.unread_mentions = 0;
  return c;
}

// Merge a conversation from the server into what we know: counters never go back,
// and unread comes from positions (last_seq - read_seq, less the thread-only replies:
// the server's `unread` tells how many those are).
export function normalizeConv(c, existing = null) {
  const merged = { ...(existing || {}), ...c };
  for (const k of ['role', 'read_seq', 'unread', 'unread_mentions', 'notifications']) {
    if (c[k] === undefined && existing) merged[k] = existing[k];
  }
  merged.last_seq = Math.max(existing ? existing.last_seq || 0 : 0, c.last_seq || 0);
  if (existing && ts(existing.last_activity_at) > ts(c.last_activity_at)) merged.last_activity_at = existing.last_activity_at;
  if (merged.read_seq === undefined) merged.read_seq = merged.last_seq;
  merged.read_seq = Math.max(existing ? existing.read_seq || 0 : 0, merged.read_seq || 0);
  const ahead = existing && (existing.last_seq || 0) > (c.last_seq || 0); // live messages the answer predates
  if (c.unread !== undefined && c.read_seq !== undefined && !ahead) {
    merged.thread_only = Math.max(0, (c.last_seq || 0) - c.read_seq - c.unread);
  } else {
    merged.thread_only = existing ? existing.thread_only || 0 : 0;
  }
  counted(merged);
  merged.unread_mentions = merged.unread_mentions || 0;
  return merged;
}

// My read position moved to `readSeq`: with the server's `unread` when it told it (a
// `read` event, an answer), else what is left of the thread-only replies I know of.
function withCounters(c, readSeq, unread = null) {
  const next = { ...c, read_seq: Math.max(c.read_seq || 0, readSeq || 0) };
  if (unread != null && next.read_seq === readSeq) {
    next.thread_only = Math.max(0, (next.last_seq || 0) - readSeq - unread);
  }
  return counted(next);
}

// ---------------------------------------------------------------- selectors (pure)
export function displayName(state, uid) {
  const u = state.users.get(uid);
  return u ? u.display_name || u.username : null;
}

export function directPeer(state, cid) {
  const d = state.details.get(cid);
  if (!d || !state.me) return null;
  const other = (d.members || []).find((m) => m.user_id !== state.me.id);
  return other ? other.user_id : null;
}

export function isAdmin(state) {
  return !!state.me && (state.me.role === 'owner' || state.me.role === 'admin');
}

// Conversation roles (docs/protocol.md, "Conversation roles"): owners and org admins
// manage (settings, roles); owners, moderators and org admins moderate (rename,
// remove members, recall others' messages, post in announcement channels).
export function canManage(state, c) {
  return isAdmin(state) || (!!c && c.role === 'owner');
}

export function canModerate(state, c) {
  return isAdmin(state) || (!!c && (c.role === 'owner' || c.role === 'moderator'));
}

// Whether the caller may post in `c`: anywhere but in an announcement conversation
// where they are a plain member.
export function mayPost(state, c) {
  return !c || !c.announcement || canModerate(state, c);
}

// Conversations for the list: filtered by `title(c)`, latest activity first.
export function sortedConversations(state, title) {
  const filter = state.filter.trim().toLowerCase();
  return [...state.convs.values()]
    .filter((c) => !filter || title(c).toLowerCase().includes(filter))
    .sort((a, b) => ts(b.last_activity_at || b.created_at) - ts(a.last_activity_at || a.created_at)
      || (b.last_seq || 0) - (a.last_seq || 0));
}

// Unread shown for a conversation (none for the one open on screen).
export function shownUnread(state, c) {
  // the open conversation counts as read, unless I marked it unread (readHold)
  return c.id === state.cid && state.view === 'chat' && state.readHold !== c.id ? 0 : c.unread || 0;
}

export function unreadTotal(state) {
  let total = 0;
  for (const c of state.convs.values()) total += shownUnread(state, c);
  return total;
}

// Who is typing in `cid` at `now` (user ids).
export function typingUsers(state, cid, now) {
  const m = state.typing.get(cid);
  if (!m) return [];
  return [...m].filter(([, until]) => until > now).map(([uid]) => uid);
}

// ---------------------------------------------------------------- the reducer
const render = (...parts) => ({ type: 'render', parts });

export function apply(state, action) {
  const fn = HANDLERS[action.type];
  if (!fn) return { state, effects: [] };
  const effects = [];
  const next = fn(state, action, effects);
  return { state: next || state, effects };
}

// Apply several actions in order; returns the last state and every effect.
export function applyAll(state, actions) {
  const effects = [];
  let s = state;
  for (const a of actions) {
    const r = apply(s, a);
    s = r.state;
    effects.push(...r.effects);
  }
  return { state: s, effects };
}

function upsertConv(state, c, effects) {
  const convs = mapSet(state.convs, c.id, normalizeConv(c, state.convs.get(c.id)));
  if (c.kind !== 'channel' && !state.details.has(c.id)) effects.push({ type: 'load_detail', cid: c.id });
  effects.push(render('list', 'header'));
  return { ...state, convs };
}

function setPreview(previews, m) {
  const prev = previews.get(m.conversation_id);
  if (!prev || m.seq >= prev.seq) return mapSet(previews, m.conversation_id, m);
  return previews;
}

// Whether a message of another member counts in my mention badge of conversation `c`:
// it names me, or mentions everyone where my settings let that count (the time it was
// sent stands for now: the next fetch of the list is exact).
function mentionsMe(meId, m, c) {
  if ((m.mentions || []).includes(meId)) return true;
  return !!m.mentions_everyone && countsEveryone(c.notifications, c.kind, Date.parse(m.created_at) || 0);
}

// A stored message arrived (send ack, live or replayed event, gap fill).
function acceptMessage(state, m, effects) {
  if (!m || m.seq == null) return state;
  const cid = m.conversation_id;
  const own = !!state.me && m.sender_id === state.me.id;
  let next = { ...state };
  const typing = state.typing.get(cid);
  if (typing && typing.has(m.sender_id)) {
    const t = new Map(typing);
    t.delete(m.sender_id);
    next.typing = mapSet(state.typing, cid, t);
  }
  const c = state.convs.get(cid);
  if (!c) {
    effects.push({ type: 'refresh_conversations' });
  } else if (m.seq > (c.last_seq || 0)) {
    const u = { ...c, last_seq: m.seq };
    if (ts(m.created_at) > ts(c.last_activity_at)) u.last_activity_at = m.created_at;
    if (own) {
      u.read_seq = Math.max(c.read_seq || 0, m.seq); // sending moves the sender's read position
    } else if (!inTimeline(m)) {
      u.thread_only = (c.thread_only || 0) + 1; // its thread's unread, not the conversation's
    } else if (state.me && mentionsMe(state.me.id, m, c)) u.unread_mentions = (c.unread_mentions || 0) + 1;
    counted(u);
    next.convs = mapSet(state.convs, cid, u);
    // a message new to this client: the shell asks notify.js whether it notifies
    if (!own) effects.push({ type: 'notify_message', message: m });
  }
  next.previews = setPreview(state.previews, m);
  const s = state.msgs.get(cid);
  if (s && takesLive(s)) {
    // While the first page is loading, keep live messages too: the page may have been
    // read before they were committed.
    if (!s.bySeq.has(m.seq)) {
      const store = { ...s, bySeq: mapSet(s.bySeq, m.seq, m) };
      if (s.loading && s.touched) store.touched = new Set(s.touched).add(m.seq);
      next.msgs = mapSet(state.msgs, cid, store);
    }
  }
  effects.push(render('list', 'messages', 'typing'));
  if (cid === state.cid) effects.push({ type: 'check_read' });
  return next;
}

// A message changed (edit, recall, reaction): replace what we hold.
function updateMessage(state, m) {
  const cid = m.conversation_id;
  const next = { ...state };
  const s = state.msgs.get(cid);
  // While a page loads, a change to a message it may hold is kept (and wins over the
  // page's copy, read before it): the first page, or a "newer" page after a jump.
  const pending = s && s.loading && (!s.loaded || (s.loadingMode === 'newer' && m.seq > s.newerFrom));
  if (s && (s.bySeq.has(m.seq) || pending)) {
    const store = { ...s, bySeq: mapSet(s.bySeq, m.seq, m) };
    if (s.loading && s.touched) store.touched = new Set(s.touched).add(m.seq);
    next.msgs = mapSet(state.msgs, cid, store);
  }
  const prev = state.previews.get(cid);
  if (prev && prev.seq === m.seq) next.previews = mapSet(state.previews, cid, m);
  return next;
}

// One reaction changed: a `reaction` event carries the change (emoji, user_id, added,
// and the emoji's new count), never the message. Applying the same change again changes
// nothing, so a page that already has it is not harmed by it.
export function withReaction(m, { emoji, user_id: uid, added }) {
  const had = (m.reactions || {})[emoji] || [];
  if (had.includes(uid) === !!added) return m;
  const users = added ? [...had, uid] : had.filter((u) => u !== uid);
  const reactions = { ...m.reactions };
  if (users.length) reactions[emoji] = users;
  else delete reactions[emoji];
  return { ...m, reactions };
}

// A reaction event: applied to the message we hold and to the list's preview. While a
// page loads, a change to a message not held yet waits for the page, and is applied to
// the page's copy when it comes (it may have been read before the change).
function applyReaction(state, ev) {
  const cid = ev.conversation_id;
  const s = state.msgs.get(cid);
  const held = s && s.bySeq.get(ev.seq);
  if (held) return updateMessage(state, withReaction(held, ev));
  let next = state;
  if (s && s.loading) {
    const pendingReactions = [...(s.pendingReactions || []), ev];
    next = { ...next, msgs: mapSet(next.msgs, cid, { ...s, pendingReactions }) };
  }
  const prev = next.previews.get(cid);
  if (prev && prev.seq === ev.seq) next = { ...next, previews: mapSet(next.previews, cid, withReaction(prev, ev)) };
  return next;
}

function withPendingReactions(m, pending) {
  for (const ev of pending || []) {
    if (ev.seq !== m.seq) continue;
    m = ev.kind === 'file_updated' ? withFileUpdate(m, ev.file) : withReaction(m, ev);
  }
  return m;
}

// A `file_updated` event: a file attached to message `seq` changed (its thumbnail was
// made, or the scan quarantined it). Like a reaction: applied to the message held and
// to the list's preview; while a page loads, kept for the page's copy.
function applyFileUpdate(state, ev) {
  const cid = ev.conversation_id;
  const s = state.msgs.get(cid);
  const held = s && s.bySeq.get(ev.seq);
  if (held) {
    const m = withFileUpdate(held, ev.file);
    return m === held ? state : updateMessage(state, m);
  }
  let next = state;
  if (s && s.loading) {
    const pendingReactions = [...(s.pendingReactions || []), ev];
    next = { ...next, msgs: mapSet(next.msgs, cid, { ...s, pendingReactions }) };
  }
  const prev = next.previews.get(cid);
  if (prev && prev.seq === ev.seq) next = { ...next, previews: mapSet(next.previews, cid, withFileUpdate(prev, ev.file)) };
  return next;
}

// A `read` event: the position as it is now. It moves forward (a read) or back (marked
// unread, POST …/unread): events come in stream order, so the latest one is the truth.
function applyRead(state, cid, uid, seq, effects, unread = null) {
  if (seq == null) return state;
  if (state.me && uid === state.me.id) {
    const c = state.convs.get(cid);
    if (!c) return state;
    effects.push(render('list'));
    if (seq < (c.read_seq || 0)) {
      // marked unread (here or on another device): mention counts come from the server
      effects.push({ type: 'refresh_conversations' });
      const after = Math.max(0, (c.last_seq || 0) - seq);
      const back = { ...c, read_seq: seq, thread_only: unread != null ? Math.max(0, after - unread) : 0 };
      return { ...state, convs: mapSet(state.convs, cid, counted(back)) };
    }
    return { ...state, convs: mapSet(state.convs, cid, withCounters(c, seq, unread)) };
  }
  const d = state.details.get(cid);
  const member = d && (d.members || []).find((m) => m.user_id === uid);
  if (!member) return state;
  const members = d.members.map((m) => (m.user_id === uid ? { ...m, read_seq: seq } : m));
  effects.push(render('messages'));
  return { ...state, details: mapSet(state.details, cid, { ...d, members }) };
}

function forgetConversation(state, cid) {
  return {
    ...state,
    convs: mapDelete(state.convs, cid),
    details: mapDelete(state.details, cid),
    msgs: mapDelete(state.msgs, cid),
  };
}

function applyEvent(state, ev, effects) {
  const cid = ev.conversation_id;
  const me = state.me ? state.me.id : null;
  switch (ev.kind) {
    case 'message':
      if (ev.message && ev.message.thread_root_seq) {
        return acceptThreadReply(acceptMessage(state, ev.message, effects), ev.message, effects);
      }
      return acceptMessage(state, ev.message, effects);
    case 'thread_updated':
    case 'thread_read':
      return applyThreadEvent(state, ev, effects);
    case 'message_edited':
    case 'message_deleted':
      if (!ev.message) return state;
      effects.push(render('messages', 'list', 'thread'));
      return updateThreadReply(updateMessage(state, ev.message), ev.message);
    case 'reaction':
      if (ev.seq == null || typeof ev.emoji !== 'string' || ev.user_id == null) return state;
      effects.push(render('messages', 'list'));
      return applyReaction(state, ev);
    case 'file_updated':
      if (ev.seq == null || !ev.file || typeof ev.file.id !== 'string') return state;
      effects.push(render('messages', 'list'));
      return applyFileUpdate(state, ev);
    case 'conversation_created': {
      const next = ev.conversation ? upsertConv(state, ev.conversation, effects) : state;
      effects.push({ type: 'refresh_conversations' });
      return next;
    }
    case 'conversation_updated': {
      const c = ev.conversation;
      if (!c) return state;
      let next = state.convs.has(c.id) ? upsertConv(state, c, effects) : state;
      const d = next.details.get(c.id);
      if (d) next = { ...next, details: mapSet(next.details, d.id, { ...d, ...c, members: d.members }) };
      effects.push(render('list', 'header', 'members'));
      return next;
    }
    case 'member_added': {
      let next = state;
      if ((ev.user_ids || []).includes(me)) {
        if (ev.conversation) next = upsertConv(next, ev.conversation, effects);
        effects.push({ type: 'refresh_conversations' });
      } else if (ev.conversation && state.convs.has(cid)) {
        next = upsertConv(next, ev.conversation, effects);
      }
      if (state.details.has(cid) || state.cid === cid) effects.push({ type: 'load_detail', cid });
      return next;
    }
    case 'member_removed': {
      if (ev.user_id === me) {
        effects.push({ type: 'forget_history', cid }, render('list'));
        if (state.cid === cid) effects.push({ type: 'toast', key: 'conversation.removed' }, { type: 'navigate', hash: '#/' });
        return forgetConversation(state, cid);
      }
      const d = state.details.get(cid);
      if (!d) return state;
      const next = { ...state, details: mapSet(state.details, cid,
        { ...d, members: (d.members || []).filter((m) => m.user_id !== ev.user_id) }) };
      const c = state.convs.get(cid);
      if (c && c.member_count) next.convs = mapSet(state.convs, cid, { ...c, member_count: Math.max(0, c.member_count - 1) });
      effects.push(render('members', 'header', 'list'));
      return next;
    }
    case 'message_pinned':
    case 'message_unpinned':
      // The pinned list lives in its panel (pins.js), fetched when opened: count the
      // change so that an open panel reloads.
      if (cid == null) return state;
      return { ...state, pinsVersion: mapSet(state.pinsVersion, cid, (state.pinsVersion.get(cid) || 0) + 1) };
    case 'message_saved':
    case 'message_unsaved': {
      // My own saved list (only my devices get these): the message's save button, and
      // an open saved panel reloads.
      if (cid == null || ev.seq == null) return state;
      const key = savedKey(cid, ev.seq);
      const saved = new Set(state.saved);
      if (ev.kind === 'message_saved') saved.add(key);
      else saved.delete(key);
      effects.push(render('messages', 'thread'));
      return { ...state, saved, savedVersion: state.savedVersion + 1 };
    }
    case 'scheduled_message_created':
    case 'scheduled_message_updated':
      // My own scheduled list (only my devices get these): the item whole, as it is now.
      if (ev.user_id !== me) return state;
      effects.push(render('scheduled'));
      return withScheduled(state, ev.scheduled);
    case 'scheduled_message_deleted': {
      if (ev.user_id !== me || !state.scheduled.has(ev.scheduled_id)) return state;
      effects.push(render('scheduled'));
      return { ...state, scheduled: mapDelete(state.scheduled, ev.scheduled_id),
        scheduledVersion: state.scheduledVersion + 1 };
    }
    case 'member_role_changed': {
      // A member's role (owner, moderator, member) changed: their row in the member
      // list, and the caller's own role in the conversation list when it is theirs.
      if (ev.user_id == null || typeof ev.role !== 'string') return state;
      let next = state;
      const d = state.details.get(cid);
      if (d && d.members) {
        next = { ...next, details: mapSet(next.details, cid,
          { ...d, members: d.members.map((m) => (m.user_id === ev.user_id ? { ...m, role: ev.role } : m)) }) };
      }
      const c = state.convs.get(cid);
      if (c && ev.user_id === me) next = { ...next, convs: mapSet(next.convs, cid, { ...c, role: ev.role }) };
      effects.push(render('members', 'header'));
      return next;
    }
    case 'read':
      return applyRead(state, cid, ev.user_id, ev.seq, effects, typeof ev.unread === 'number' ? ev.unread : null);
    case 'notifications_updated': {
      // my own settings in a conversation (another tab, or this one): replace them
      const c = state.convs.get(cid);
      if (!c || ev.user_id !== me || !ev.notifications) return state;
      effects.push(render('list', 'header'));
      return { ...state, convs: mapSet(state.convs, cid, { ...c, notifications: { ...ev.notifications } }) };
    }
    case 'dnd_updated':
      if (ev.user_id !== me || !ev.dnd) return state;
      effects.push(render('list', 'view'));
      return { ...state, notifyPrefs: { ...(state.notifyPrefs || {}), dnd: { ...ev.dnd } } };
    case 'user_updated': {
      // a profile change: one copy per shared conversation (the same user each time),
      // and on one's own connections the preferences too
      const u = ev.user;
      if (!u || typeof u.id !== 'string') return state;
      const merged = { ...(state.users.get(u.id) || {}), ...u };
      const next = { ...state, users: mapSet(state.users, u.id, merged) };
      if (u.id === me) {
        next.me = { ...state.me, ...u };
        effects.push({ type: 'remember_user', user: next.me });
        if (ev.preferences) effects.push({ type: 'apply_preferences', preferences: ev.preferences });
        if (ev.preferences && state.notifyPrefs) {
          next.notifyPrefs = { ...state.notifyPrefs, time_zone: ev.preferences.time_zone || null };
        }
        effects.push(render('sidebar'));
      }
      effects.push(render('list', 'header', 'members', 'messages'));
      return next;
    }
    default:
      return state;
  }
}

const HANDLERS = {
  // ---------------------------------------------------------- notification settings
  notify_prefs_loaded(state, { prefs }, effects) {
    if (!prefs) return state;
    effects.push(render('list'));
    return { ...state, notifyPrefs: { dnd: prefs.dnd || null, time_zone: prefs.time_zone || null,
      mention_all: prefs.mention_all || null } };
  },
  conversation_notifications(state, { cid, notifications }, effects) {
    const c = state.convs.get(cid);
    if (!c || !notifications) return state;
    effects.push(render('list', 'header'));
    return { ...state, convs: mapSet(state.convs, cid, { ...c, notifications: { ...notifications } }) };
  },
  // ---------------------------------------------------------- threads
  threads_loaded(state, { cid, threads = [] }, effects) {
    let map = state.threads;
    for (const th of threads) map = mapSet(map, threadKey(cid, th.root_seq), { ...th });
    effects.push(render('messages', 'thread', 'header'));
    return { ...state, threads: map };
  },
  thread_loaded(state, { cid, thread }, effects) {
    if (!thread) return state;
    effects.push(render('messages', 'thread', 'header'), { type: 'thread_check_read' });
    return { ...state, threads: mapSet(state.threads, threadKey(cid, thread.root_seq), { ...thread }) };
  },
  thread_state(state, { cid, root, thread }, effects) {
    const key = threadKey(cid, root);
    const held = state.threads.get(key);
    if (!held || !thread) return state;
    effects.push(render('messages', 'thread', 'header'));
    return { ...state, threads: mapSet(state.threads, key, { ...held, ...thread, counted: null }) };
  },
  thread_opened(state, { cid, root }, effects) {
    effects.push({ type: 'load_thread', cid, root }, { type: 'load_thread_replies', cid, root }, render('thread'));
    return { ...state, thread: { cid, root }, membersOpen: false };
  },
  thread_closed(state, action, effects) {
    effects.push(render('thread'));
    return { ...state, thread: null, threadReplies: new Map() };
  },
  thread_replies_loaded(state, { cid, root, messages = [] }, effects) {
    const key = threadKey(cid, root);
    const held = new Map(state.threadReplies.get(key) || []);
    for (const m of messages) held.set(m.seq, m);
    effects.push(render('thread'), { type: 'thread_check_read' });
    return { ...state, threadReplies: mapSet(state.threadReplies, key, held) };
  },
  // ---------------------------------------------------------- session
  signed_in(state, { user }) {
    void state;
    const s = initialState({ me: user });
    return { ...s, users: mapSet(s.users, user.id, user) };
  },
  ready(state, { user }, effects) {
    if (!user || !state.me) return state;
    const me = { ...state.me, ...user };
    effects.push({ type: 'remember_user', user: me });
    return { ...state, me, users: mapSet(state.users, me.id, me) };
  },
  status(state, { status }, effects) {
    if (state.status === status) return state;
    effects.push(render('banner'));
    return { ...state, status };
  },
  // The REST state is (re)loaded from scratch: conversations replace what we had,
  // messages are forgotten (they are loaded again as conversations are opened).
  initial_loaded(state, { conversations, users = [] }, effects) {
    const us = new Map(state.users);
    for (const u of users) us.set(u.id, u);
    if (state.me) us.set(state.me.id, us.get(state.me.id) || state.me);
    const convs = new Map();
    for (const c of conversations) convs.set(c.id, normalizeConv(c));
    effects.push(render('all'));
    return { ...state, users: us, convs, msgs: new Map() };
  },
  booted(state, action, effects) {
    effects.push(render('all'));
    return { ...state, booted: true };
  },
  unbooted(state) {
    return { ...state, booted: false };
  },
  // A fresh GET /conversations: the server's counters, merged; conversations we
  // are no longer in are dropped.
  conversations_refreshed(state, { conversations }, effects) {
    const convs = new Map();
    for (const c of conversations) {
      const merged = normalizeConv(c, state.convs.get(c.id));
      // The server's counters are authoritative for mentions.
      if (c.unread_mentions !== undefined && merged.unread > 0) merged.unread_mentions = c.unread_mentions;
      convs.set(c.id, merged);
      if (c.kind !== 'channel' && !state.details.has(c.id)) effects.push({ type: 'load_detail', cid: c.id });
    }
    effects.push(render('list', 'header'));
    return { ...state, convs };
  },
  conversation_upserted(state, { conversation }, effects) {
    return upsertConv(state, conversation, effects);
  },
  conversation_left(state, { cid }, effects) {
    effects.push({ type: 'forget_history', cid }, render('list'));
    return { ...state, convs: mapDelete(state.convs, cid) };
  },
  detail_loaded(state, { conversation }, effects) {
    const cid = conversation.id;
    const next = { ...state, details: mapSet(state.details, cid, conversation) };
    const listed = state.convs.get(cid);
    if (listed) {
      const { members, ...rest } = conversation;
      void members;
      next.convs = mapSet(state.convs, cid, normalizeConv(rest, listed));
    }
    const ids = (conversation.members || []).map((m) => m.user_id);
    const unknown = ids.filter((uid) => !state.users.has(uid)).slice(0, 50);
    if (unknown.length) effects.push({ type: 'load_users', ids: unknown });
    if (conversation.kind !== 'channel' || ids.length <= 100) {
      const missing = ids.filter((uid) => !state.presence.has(uid) && uid !== (state.me && state.me.id));
      if (missing.length) effects.push({ type: 'load_presence', ids: missing });
    }
    effects.push(render('list', 'header', 'members', 'messages'));
    return next;
  },
  users_loaded(state, { users }, effects) {
    if (!users.length) return state;
    const us = new Map(state.users);
    for (const u of users) us.set(u.id, u);
    effects.push(render('all'));
    const mine = state.me && users.find((u) => u.id === state.me.id);
    if (mine) {
      effects.push(render('sidebar'));
      return { ...state, users: us, me: { ...state.me, ...mine } };
    }
    return { ...state, users: us };
  },
  presence_loaded(state, { presence }, effects) {
    const p = new Map(state.presence);
    for (const [uid, st] of Object.entries(presence || {})) p.set(uid, st);
    effects.push(render('list', 'members', 'header', 'view'));
    return { ...state, presence: p };
  },

  // ---------------------------------------------------------- from the connection
  event(state, { event }, effects) {
    return applyEvent(state, event || {}, effects);
  },
  typing(state, { conversation_id: cid, user_id: uid, now }, effects) {
    if (state.me && uid === state.me.id) return state;
    const m = new Map(state.typing.get(cid) || []);
    m.set(uid, now + TYPING_SHOW_MS);
    effects.push(render('typing', 'list'), { type: 'render_later', delay: TYPING_SHOW_MS + 50, parts: ['typing', 'list'] });
    return { ...state, typing: mapSet(state.typing, cid, m) };
  },
  // Something only this user sees (a slash command's private reply): kept in memory
  // for its conversation until dismissed or reloaded, never stored.
  ephemeral(state, { frame }, effects) {
    const cid = frame && frame.conversation_id;
    if (!cid) return state;
    const list = state.ephemeral.get(cid) || [];
    const sender = frame.sender || {};
    const entry = {
      key: `${frame.invocation_id || 'x'}-${list.length}-${frame.at || ''}`,
      sender_id: sender.id || null,
      body: String(frame.body || ''),
      at: frame.at || new Date().toISOString(),
      command: frame.command || null,
      notice: frame.notice || null,
    };
    const users = sender.id && !state.users.has(sender.id) ? mapSet(state.users, sender.id, sender) : state.users;
    effects.push(render('messages'));
    return { ...state, users, ephemeral: mapSet(state.ephemeral, cid, [...list, entry].slice(-EPHEMERAL_KEPT)) };
  },
  ephemeral_dismissed(state, { cid, key }, effects) {
    const list = state.ephemeral.get(cid);
    if (!list) return state;
    effects.push(render('messages'));
    const left = list.filter((e) => e.key !== key);
    return { ...state, ephemeral: left.length ? mapSet(state.ephemeral, cid, left) : mapDelete(state.ephemeral, cid) };
  },
  commands_loaded(state, { commands }) {
    return { ...state, commands: (commands || []).filter((c) => !c.disabled) };
  },
  presence(state, { user_id: uid, state: st }, effects) {
    effects.push(render('list', 'members', 'header', 'view'));
    return { ...state, presence: mapSet(state.presence, uid, st) };
  },
  // A stored message from a send's ack.
  message_stored(state, { message }, effects) {
    if (message && message.thread_root_seq) {
      return acceptThreadReply(acceptMessage(state, message, effects), message, effects);
    }
    return acceptMessage(state, message, effects);
  },
  // My saved messages as the server listed them (GET /saved): which ones I saved.
  // GET /scheduled: my list as it is now (replaces what was held).
  scheduled_loaded(state, { scheduled }, effects) {
    if (!Array.isArray(scheduled)) return state;
    const held = new Map();
    for (const x of scheduled) if (x && typeof x.id === 'string' && SCHEDULED_LISTED.includes(x.state)) held.set(x.id, x);
    effects.push(render('scheduled'));
    return { ...state, scheduled: held, scheduledVersion: state.scheduledVersion + 1 };
  },
  saved_loaded(state, { saved }, effects) {
    if (!Array.isArray(saved)) return state;
    effects.push(render('messages', 'thread'));
    return { ...state, saved: new Set(saved.map((x) => savedKey(x.conversation_id, x.seq))) };
  },
  // The newest message of a conversation, for the list's preview.
  preview_loaded(state, { message }, effects) {
    const previews = setPreview(state.previews, message);
    if (previews === state.previews) return state;
    effects.push(render('list'));
    return { ...state, previews };
  },
  // A changed message from a REST answer (edit, recall, reaction).
  message_updated(state, { message }, effects) {
    if (!message) return state;
    effects.push(render('messages', 'list'));
    return updateMessage(state, message);
  },

  // ---------------------------------------------------------- history pages
  page_started(state, { cid, mode, seq }, effects) {
    const s = msgStore(state, cid);
    const gen = (s.gen || 0) + 1;
    if (mode === 'around') {
      // A jump to message `seq`: a window around it replaces what was held (whatever
      // load was under way), and the session stops filling gaps here until the window
      // reaches the newest message again.
      const store = { ...emptyStore(), loading: true, loadingMode: 'around', touched: new Set(), gen, around: seq };
      effects.push({ type: 'forget_history', cid }, render('messages'));
      return { ...state, msgs: mapSet(state.msgs, cid, store), focus: { cid, seq } };
    }
    if (s.loading) return state;
    if (mode === 'older' && (!s.hasMore || !s.loaded)) return state;
    if (mode === 'newer' && (!s.hasNewer || !s.loaded)) return state;
    // The newest page after a jump starts over: the window is dropped.
    const base = mode === 'latest' && s.hasNewer ? { ...emptyStore(), hasMore: true } : s;
    const store = { ...base, loading: true, loadingMode: mode, gen };
    // Seqs changed by live events while the newest page loads are newer than the page.
    if (mode === 'latest' || mode === 'newer') store.touched = new Set();
    if (mode === 'newer') store.newerFrom = newestSeq(s); // the page starts after it
    effects.push(render('messages'));
    return { ...state, msgs: mapSet(state.msgs, cid, store) };
  },
  page_loaded(state, { cid, mode, messages: page = [], has_more: hasMore, has_newer: hasNewer, gen }, effects) {
    const s = msgStore(state, cid);
    if (gen != null && gen !== s.gen) return state; // an answer to a load since replaced
    if (mode === 'around' && s.loadingMode !== 'around') return state;
    // reactions that came while this page was on its way (see applyReaction)
    const messages = s.pendingReactions ? page.map((m) => withPendingReactions(m, s.pendingReactions)) : page;
    const bySeq = new Map(s.bySeq);
    const store = { ...s, loading: false, loadingMode: null, touched: null, pendingReactions: null, bySeq };
    let previews = state.previews;
    if (mode === 'latest') {
      for (const m of messages) if (!(s.touched && s.touched.has(m.seq))) bySeq.set(m.seq, m);
      store.hasMore = !!hasMore;
      store.hasNewer = false;
      store.loaded = true;
      const last = messages[messages.length - 1];
      if (last) previews = setPreview(previews, last);
      effects.push({ type: 'track_history', cid, newest: newestSeq(store) });
    } else if (mode === 'older') {
      for (const m of messages) if (!bySeq.has(m.seq)) bySeq.set(m.seq, m);
      store.hasMore = !!hasMore && messages.length > 0;
    } else if (mode === 'around' || mode === 'newer') {
      // `messages`: ascending, the window (around: up to and after the target; newer:
      // after the newest held). `has_more`: older ones exist (around); `has_newer`
      // (around) or `has_more` (newer): newer ones exist that are not held yet.
      for (const m of messages) if (!(s.touched && s.touched.has(m.seq))) bySeq.set(m.seq, m);
      const pageNewest = messages.length ? messages[messages.length - 1].seq : newestSeq(s);
      const pageOldest = messages.length ? messages[0].seq : 0;
      const newer = mode === 'around' ? !!hasNewer : !!hasMore && messages.length > 0;
      if (mode === 'around') {
        store.hasMore = !!hasMore && messages.length > 0;
        store.loaded = true;
        // Changes to messages outside the window that came while it loaded: not held.
        if (store.hasMore) for (const seq of [...bySeq.keys()]) if (seq < pageOldest) bySeq.delete(seq);
      }
      store.hasNewer = newer;
      if (newer) {
        for (const seq of [...bySeq.keys()]) if (seq > pageNewest) bySeq.delete(seq);
      } else {
        // The newest is held again: the session fills any gap after the page from here.
        const last = messages[messages.length - 1];
        if (last) previews = setPreview(previews, last);
        effects.push({ type: 'track_history', cid, newest: pageNewest });
      }
    } else {
      // A gap fill: never replace what live events brought. A window after a jump takes
      // none while it does not reach the newest (the session was told to stop filling
      // there; this one started before), nor anything older than what it holds.
      if (s.hasNewer || s.loadingMode === 'around') return state;
      const floor = s.hasMore && s.bySeq.size ? oldestSeq(s) : 0;
      for (const m of messages) if (!bySeq.has(m.seq) && m.seq >= floor) bySeq.set(m.seq, m);
      store.loading = s.loading;
      store.loadingMode = s.loadingMode;
      store.touched = s.touched;
      store.pendingReactions = s.pendingReactions;
    }
    effects.push(render('messages', 'list'));
    return { ...state, msgs: mapSet(state.msgs, cid, store), previews };
  },
  page_failed(state, { cid, mode, status, gen }, effects) {
    const s = state.msgs.get(cid);
    if (!s) return state;
    if (gen != null && gen !== s.gen) return state;
    if ((mode === 'latest' || mode === 'around') && status === 404) {
      effects.push({ type: 'toast', key: 'error.not_found', kind: 'error' }, { type: 'navigate', hash: '#/' });
    } else if (mode === 'around') {
      // The window could not be loaded: show the newest messages instead.
      effects.push({ type: 'toast', key: 'search.jump_failed', kind: 'error' }, { type: 'load_latest', cid });
      effects.push(render('messages', 'list'));
      return { ...state, msgs: mapSet(state.msgs, cid, { ...emptyStore(), gen: s.gen }), focus: null };
    }
    effects.push(render('messages', 'list'));
    return { ...state, msgs: mapSet(state.msgs, cid,
      { ...s, loading: false, loadingMode: null, touched: null, pendingReactions: null }) };
  },
  // Open message `seq` of `cid` held already (jumpPlan said 'focus'): scroll to it.
  focus_requested(state, { cid, seq }, effects) {
    effects.push(render('messages'));
    return { ...state, focus: { cid, seq } };
  },
  history_complete(state, { cid }) {
    const s = state.msgs.get(cid);
    if (!s || !s.hasMore) return state;
    return { ...state, msgs: mapSet(state.msgs, cid, { ...s, hasMore: false }) };
  },

  // ---------------------------------------------------------- search
  // A search starts (`more`: the next page of the same one). `req` numbers them: an
  // answer to an older one is dropped.
  search_started(state, { q, order, conversationId = null, more = false }, effects) {
    const prev = state.search;
    const query = q ?? prev.q;
    const sort = order || prev.order;
    if (more && (!prev.nextCursor || prev.loading)) return state;
    const same = query === prev.q && sort === prev.order;
    const next = { ...prev, q: query, order: sort, conversationId: more ? prev.conversationId : conversationId,
      loading: true, error: null, ran: true, req: prev.req + 1 };
    if (!more) {
      next.results = [];
      next.nextCursor = null;
      if (!same) Object.assign(next, { counts: [], allCounts: [], countsCapped: false });
    }
    effects.push(render('search'));
    return { ...state, search: next };
  },
  search_loaded(state, { req, page, more = false }, effects) {
    const prev = state.search;
    if (req !== prev.req) return state;
    const counts = (page && page.counts) || [];
    effects.push(render('search'));
    return { ...state, search: { ...prev, loading: false,
      results: mergeResults(more ? prev.results : [], page),
      nextCursor: (page && page.next_cursor) || null,
      counts,
      countsCapped: !!(page && page.counts_capped),
      // the counts are of the whole query: the first page's stay for the next pages, and
      // those of all conversations stay while one is shown
      allCounts: (more || prev.conversationId) && prev.allCounts.length ? prev.allCounts : counts } };
  },
  // `error`: { code, field, message } of the server's answer.
  search_failed(state, { req, error }, effects) {
    if (req !== state.search.req) return state;
    effects.push(render('search'));
    return { ...state, search: { ...state.search, loading: false, error: error || { code: 'network' } } };
  },

  // ---------------------------------------------------------- read positions
  // The newest message of the open conversation is on screen: mark it read here at
  // once and tell the server.
  read_up_to(state, { cid, seq }, effects) {
    const c = state.convs.get(cid);
    if (!c || seq <= (c.read_seq || 0)) return state;
    if (state.readHold === cid) return state; // marked unread: not read again until left
    const u = counted({ ...c, read_seq: seq }); // the `read` event that follows is exact
    effects.push(render('list'), { type: 'post_read', cid, seq });
    return { ...state, convs: mapSet(state.convs, cid, u) };
  },

  // I marked a conversation unread (POST …/unread answered): its counters now, and
  // while it stays open it is not marked read again (readHold), with the divider above
  // the first unread message.
  marked_unread(state, { cid, read_seq: readSeq, unread }, effects) {
    const c = state.convs.get(cid);
    if (!c || readSeq == null) return state;
    const after = Math.max(0, (c.last_seq || 0) - readSeq);
    const u = counted({ ...c, read_seq: readSeq, thread_only: unread != null ? Math.max(0, after - unread) : 0 });
    effects.push(render('list', 'messages'), { type: 'refresh_conversations' });
    return { ...state, convs: mapSet(state.convs, cid, u), readHold: cid,
      firstUnread: mapSet(state.firstUnread, cid, u.unread ? readSeq : null) };
  },

  // ---------------------------------------------------------- navigation and UI
  // `section` and `arg`s come from the location hash (#/c/<id>, #/channels, …).
  routed(state, { section, arg = '', arg2 = '' }, effects) {
    const next = { ...state, pickerFor: null, actionsFor: null };
    // a conversation marked unread may be read again once one has left it
    if (state.readHold && !(section === 'c' && arg === state.readHold)) next.readHold = null;
    if (state.focus && !(section === 'c' && arg === state.focus.cid)) next.focus = null;
    if (section === 'c' && arg) {
      const changed = state.cid !== arg || state.view !== 'chat';
      next.view = 'chat';
      if (changed) {
        next.cid = arg;
        next.editing = null;
        const c = state.convs.get(arg);
        next.firstUnread = mapSet(state.firstUnread, arg, c && c.unread ? c.read_seq || 0 : null);
      }
      effects.push(render('list'));
      return next;
    }
    next.cid = null;
    next.editing = null;
    if (section === 'channels') next.view = 'channels';
    else if (section === 'directory') next.view = 'directory';
    else if (section === 'account') next.view = 'account';
    else if (section === 'search') next.view = 'search';
    else if (section === 'admin' && isAdmin(state)) {
      next.view = 'admin';
      next.adminTab = ADMIN_TABS.includes(arg) ? arg : 'users';
    } else next.view = 'home';
    next.viewArg = section === 'search' ? arg : arg2;
    effects.push(render('list'));
    return next;
  },
  filter_changed(state, { filter }, effects) {
    effects.push(render('list'));
    return { ...state, filter };
  },
  members_toggled(state, { open }, effects) {
    effects.push(render('members', 'header'));
    return { ...state, membersOpen: open === undefined ? !state.membersOpen : !!open };
  },
  picker_toggled(state, { key }, effects) {
    effects.push(render('messages'));
    return { ...state, pickerFor: state.pickerFor === key ? null : key };
  },
  picker_closed(state, action, effects) {
    if (!state.pickerFor) return state;
    effects.push(render('messages'));
    return { ...state, pickerFor: null };
  },
  actions_toggled(state, { key }, effects) {
    effects.push(render('messages'));
    return { ...state, actionsFor: state.actionsFor === key ? null : key };
  },
  edit_started(state, { message: m }, effects) {
    effects.push(render('messages'));
    return { ...state, editing: { cid: m.conversation_id, seq: m.seq, text: m.body }, actionsFor: null };
  },
  edit_changed(state, { text }) {
    return state.editing ? { ...state, editing: { ...state.editing, text } } : state;
  },
  edit_ended(state, action, effects) {
    effects.push(render('messages'));
    return { ...state, editing: null };
  },
  reply_started(state, { message: m }, effects) {
    effects.push(render('reply'));
    return { ...state, replyTo: mapSet(state.replyTo, m.conversation_id, m.seq), actionsFor: null };
  },
  reply_cleared(state, { cid }, effects) {
    if (!state.replyTo.has(cid)) return state;
    effects.push(render('reply'));
    return { ...state, replyTo: mapDelete(state.replyTo, cid) };
  },
};

export const ACTIONS = Object.freeze(Object.keys(HANDLERS));
