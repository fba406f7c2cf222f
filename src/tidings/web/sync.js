// The client side of the connection protocol, without IO (docs/protocol.md, docs/web.md).
//
// A ClientSession is the web client's one owner of
//   - the resume position (`since`): which stored events were received, and which
//     replayed ones to drop as already seen;
//   - requests by `ref`: an `ack` or `error` frame is matched to the frame it answers;
//   - the outbox: messages sent but not acknowledged yet, each with its
//     `client_msg_id`, sent again with the same id after a reconnect or a retry;
//   - gap fill: a conversation whose messages the client holds up to `seq` n that
//     receives n + 2 asks for the history in between.
// Frames go in (`receive`, `connectionLost`), frames to write come out (`authFrame`,
// `request`, `send`, `flush`, `retry`), and what happened comes out as plain outcome
// objects. No WebSocket, no timers, no clock, no storage: api.js drives a session from
// the socket, app.js acts on the outcomes.
//
// The protocol rules are those of protocol/session.py:ClientSession, and its outcomes
// have the same names and fields (tests/protocol_vectors/README.md): `receive` and
// `connectionLost` return a list whose first item is that outcome; the web client's own
// outcomes (`sent`, `send_failed`, `fill_gap`) may follow it. Node's test runner checks
// it (tests/web/sync.test.mjs, and the shared vectors in tests/web/vectors.test.mjs).

const RECENT = 10000; // integer positions below the last one remembered one by one
const OPAQUE = 100000; // non-integer positions remembered
const AUTH_ERROR_CODES = new Set(['unauthenticated', 'user_disabled', 'forbidden']);
const CLOSE_AUTH = 4001;
const CLOSE_REVOKED = 4003;
const CLOSE_BAD_RESUME = 4009;
const CLOSE_RESTART = 1012;

// Order key of a stream position, or null if it is not an integer. Positions are
// opaque strings; this server's are decimal integers, which lets the client drop a
// replayed duplicate without asking the server.
export function positionKey(position) {
  const text = String(position);
  return /^[0-9]+$/.test(text) ? BigInt(text) : null;
}

const isObject = (v) => v != null && typeof v === 'object' && !Array.isArray(v);

// What the outbox keeps of a send (also what app.js stores in localStorage).
function entryOf(p) {
  return {
    client_msg_id: p.client_msg_id,
    conversation_id: p.conversation_id,
    body: p.body,
    reply_to_seq: p.reply_to_seq ?? null,
    ...(p.thread_root_seq ? { thread_root_seq: p.thread_root_seq, also_to_conversation: !!p.also_to_conversation } : {}),
    status: p.status === 'failed' ? 'failed' : 'pending',
    created_at: p.created_at ?? null,
    ...(p.error ? { error: p.error } : {}),
    ...(Array.isArray(p.attachments) && p.attachments.length ? { attachments: p.attachments.map(String) } : {}),
  };
}

export class ClientSession {
  constructor({ since = null, outbox = [] } = {}) {
    this.since = since == null ? null : String(since);
    this.ready = false;
    this.connections = 0; // connections that became ready
    this.duplicates = 0; // events dropped because they were received before
    this.outOfOrder = 0; // events below the last position, never seen: delivered anyway
    this.readyPosition = null;
    this.refs = 0;
    this.waiting = new Map(); // ref -> client_msg_id of a send, or null
    this.entries = outbox.filter((p) => p && p.client_msg_id).map(entryOf); // the outbox, in send order
    this.tracked = new Map(); // conversation id -> newest seq held without a gap
    this.filling = new Set(); // conversations with a gap fill under way
    this.forget(this.since);
  }

  // The position to resume from (also `since`): the last stored event received, or
  // the head of the first `ready`.
  get position() {
    return this.since;
  }

  // Refs of the requests not answered yet, oldest first.
  get pending() {
    return [...this.waiting.keys()];
  }

  forget(since) {
    this.last = since == null ? null : positionKey(since);
    // Integer positions at or below the floor were handled (since, or long ago).
    this.floor = this.last == null ? -1n : this.last;
    this.recent = new Set();
    this.recentOrder = [];
    this.opaque = new Set();
    this.opaqueOrder = [];
  }

  // Start again from nothing: no resume position, no history held. The next `ready`
  // head becomes the position (the state is loaded again over REST).
  forgetPosition() {
    this.since = null;
    this.forget(null);
    this.forgetHistory();
  }

  // ---------------------------------------------------------------- writing
  // A new connection is open: its first frame authenticates and resumes.
  authFrame(token) {
    this.ready = false;
    const frame = { type: 'auth', token };
    if (this.since != null) frame.since = this.since;
    return frame;
  }

  // A client frame that waits for an answer, with a fresh `ref`; null when no
  // connection is ready (then nothing is to be written).
  request(frame) {
    if (!this.ready) return null;
    this.refs += 1;
    const ref = String(this.refs);
    const cmid = frame.type === 'send' && typeof frame.client_msg_id === 'string' ? frame.client_msg_id : null;
    this.waiting.set(ref, cmid);
    return { ...frame, ref };
  }

  // The application stopped waiting for `ref` (a timeout). A send given up on fails
  // (the user may retry it, with the same client_msg_id).
  giveUp(ref) {
    const key = String(ref);
    if (!this.waiting.has(key)) return [];
    const cmid = this.waiting.get(key);
    this.waiting.delete(key);
    return cmid ? this.failSend(cmid, 'timeout') : [];
  }

  // Put a message in the outbox. Returns the `send` frame to write now, or null when no
  // connection is ready or when told to `hold` it (`flush` sends it later).
  // `attachments`: ids of uploaded files (POST /files) the message carries.
  // `thread_root_seq`: a reply in that root's thread (`also_to_conversation`: shown in
  // the main timeline too).
  send({ conversation_id, body, reply_to_seq = null, client_msg_id, created_at = null, attachments = null,
    thread_root_seq = null, also_to_conversation = false }, { hold = false } = {}) {
    if (!client_msg_id) throw new Error('client_msg_id is required');
    let entry = this.entry(client_msg_id);
    if (!entry) {
      entry = entryOf({ client_msg_id, conversation_id, body, reply_to_seq, status: 'pending', created_at, attachments,
        thread_root_seq, also_to_conversation });
      this.entries.push(entry);
    }
    return this.deliver(entry, hold);
  }

  // Send a failed message again, with the same client_msg_id.
  retry(clientMsgId, { hold = false } = {}) {
    const entry = this.entry(clientMsgId);
    return entry ? this.deliver(entry, hold) : null;
  }

  // After `ready`: the frames of every pending message not already in flight, oldest first.
  flush() {
    const frames = [];
    for (const entry of this.entries) {
      if (entry.status !== 'pending') continue;
      const frame = this.deliver(entry, false);
      if (frame) frames.push(frame);
    }
    return frames;
  }

  // Drop a message from the outbox (a late answer then settles nothing).
  discard(clientMsgId) {
    this.entries = this.entries.filter((p) => p.client_msg_id !== clientMsgId);
  }

  // Copies of the outbox entries, in send order.
  get outbox() {
    return this.entries.map((p) => ({ ...p }));
  }

  entry(clientMsgId) {
    return this.entries.find((p) => p.client_msg_id === clientMsgId) || null;
  }

  inFlight(clientMsgId) {
    for (const cmid of this.waiting.values()) if (cmid === clientMsgId) return true;
    return false;
  }

  deliver(entry, hold) {
    entry.status = 'pending';
    delete entry.error;
    if (hold || this.inFlight(entry.client_msg_id)) return null;
    const frame = { type: 'send', conversation_id: entry.conversation_id, client_msg_id: entry.client_msg_id,
      body: entry.body };
    if (entry.reply_to_seq) frame.reply_to_seq = entry.reply_to_seq;
    if (entry.attachments) frame.attachments = [...entry.attachments];
    if (entry.thread_root_seq) {
      frame.thread_root_seq = entry.thread_root_seq;
      if (entry.also_to_conversation) frame.also_to_conversation = true;
    }
    return this.request(frame);
  }

  failSend(clientMsgId, code) {
    const entry = this.entry(clientMsgId);
    if (!entry) return [];
    entry.status = 'failed';
    entry.error = code;
    return [{ type: 'send_failed', client_msg_id: clientMsgId, code }];
  }

  // ---------------------------------------------------------------- reading
  // One decoded server frame: [what it means (the protocol's outcome), ...what follows
  // for the web client (outbox, gap fill)].
  receive(frame) {
    if (!isObject(frame)) return [{ type: 'ignored' }];
    switch (frame.type) {
      case 'event': {
        if (frame.position == null || !isObject(frame.event)) return [{ type: 'ignored' }];
        return this.onEvent(String(frame.position), frame.event);
      }
      case 'ready':
        return [this.onReady(frame)];
      case 'ack':
      case 'error':
        return this.onAnswer(frame, frame.type === 'ack');
      case 'reconnect':
        return [{ type: 'reconnect_soon' }];
      default:
        return [{ type: 'signal', frame }];
    }
  }

  onEvent(position, event) {
    let outcome;
    if (this.accept(position)) outcome = { type: 'delivered', position, event, out_of_order: false };
    else if (this.acceptLate(position)) outcome = { type: 'delivered', position, event, out_of_order: true };
    else {
      this.duplicates += 1;
      return [{ type: 'dropped', position }];
    }
    const m = event.kind === 'message' && isObject(event.message) ? event.message : null;
    return m ? [outcome, ...this.onMessage(m)] : [outcome];
  }

  // True (and noted) if `position` is after everything received.
  accept(position) {
    const key = positionKey(position);
    if (key == null) {
      if (this.opaque.has(position)) return false;
      this.opaque.add(position);
      this.opaqueOrder.push(position);
      if (this.opaqueOrder.length > OPAQUE) this.opaque.delete(this.opaqueOrder.shift());
    } else {
      if (this.last != null && key <= this.last) return false;
      this.last = key;
      this.remember(key);
    }
    this.since = position;
    return true;
  }

  // An integer position at or below the last one, never seen: delivered rather than
  // lost (the resume position stays the highest).
  acceptLate(position) {
    const key = positionKey(position);
    if (key == null || key <= this.floor || this.recent.has(key)) return false;
    this.outOfOrder += 1;
    this.remember(key);
    return true;
  }

  remember(key) {
    this.recent.add(key);
    this.recentOrder.push(key);
    if (this.recentOrder.length > RECENT) {
      const oldest = this.recentOrder.shift();
      this.recent.delete(oldest);
      if (oldest > this.floor) this.floor = oldest;
    }
  }

  onReady(frame) {
    this.ready = true;
    this.connections += 1;
    this.readyPosition = frame.position == null ? null : String(frame.position);
    if (this.since == null && this.readyPosition != null) {
      // Nothing received yet: resume from the head this connection subscribed at, so
      // that a drop before the first event loses nothing.
      this.accept(this.readyPosition);
      const head = positionKey(this.readyPosition);
      if (head != null) this.floor = head;
    }
    return { type: 'ready', position: this.readyPosition, user: isObject(frame.user) ? frame.user : null };
  }

  onAnswer(frame, ok) {
    const ref = frame.ref == null ? null : String(frame.ref);
    if (ref != null && this.waiting.has(ref)) {
      const cmid = this.waiting.get(ref);
      this.waiting.delete(ref);
      const out = [{ type: 'answered', ref, ok, frame, client_msg_id: cmid }];
      if (cmid && ok) out.push(...this.settled(cmid, isObject(frame.message) ? frame.message : null));
      else if (cmid) out.push(...this.failSend(cmid, (isObject(frame.error) && frame.error.code) || 'error'));
      return out;
    }
    if (ok || this.ready) return [{ type: 'ignored' }];
    const error = frame.error;
    const code = isObject(error) && typeof error.code === 'string' ? error.code : '';
    if (AUTH_ERROR_CODES.has(code)) return [{ type: 'refused', code, next: 'auth_failed' }];
    if (code === 'invalid_position') {
      this.forgetPosition();
      return [{ type: 'refused', code, next: 'resume_refused' }];
    }
    return [{ type: 'refused', code, next: null }];
  }

  // A stored message of ours reached us (its ack, or its event): out of the outbox.
  settled(cmid, message) {
    const out = [];
    if (this.entry(cmid)) {
      this.discard(cmid);
      out.push({ type: 'sent', client_msg_id: cmid, message });
    }
    if (message) out.push(...this.noteSeq(message.conversation_id, message.seq));
    return out;
  }

  onMessage(m) {
    if (typeof m.client_msg_id === 'string' && this.entry(m.client_msg_id)) {
      // The event of a send whose ack has not come (or never will): settled.
      for (const [ref, cmid] of this.waiting) if (cmid === m.client_msg_id) this.waiting.delete(ref);
      return this.settled(m.client_msg_id, m);
    }
    return this.noteSeq(m.conversation_id, m.seq);
  }

  // ---------------------------------------------------------------- the end of a connection
  // The connection ended (`code`: the server's close code, null without one). Requests
  // in flight are failed; the messages among them stay in the outbox, pending, and are
  // sent again (same client_msg_id) by the next `flush`.
  connectionLost(code = null) {
    this.ready = false;
    const unanswered = [...this.waiting.keys()];
    const sends = [...this.waiting.values()].filter((c) => c != null);
    this.waiting.clear();
    let next = 'reconnect';
    if (code === CLOSE_AUTH || code === CLOSE_REVOKED) next = 'auth_failed';
    else if (code === CLOSE_BAD_RESUME) {
      this.forgetPosition();
      next = 'resume_refused';
    } else if (code === CLOSE_RESTART) next = 'reconnect_soon';
    return [{ type: 'ended', next, unanswered, unanswered_sends: sends }];
  }

  // ---------------------------------------------------------------- gap fill
  // The client holds a conversation's messages up to `newest` (no gap below it).
  track(conversationId, newest) {
    const cur = this.tracked.get(conversationId);
    this.tracked.set(conversationId, Math.max(cur || 0, newest || 0));
  }

  untrack(conversationId) {
    this.tracked.delete(conversationId);
    this.filling.delete(conversationId);
  }

  // The messages held were dropped (the state is loaded again): nothing is tracked.
  forgetHistory() {
    this.tracked.clear();
    this.filling.clear();
  }

  noteSeq(conversationId, seq) {
    if (!this.tracked.has(conversationId) || typeof seq !== 'number') return [];
    const newest = this.tracked.get(conversationId);
    if (seq <= newest) return [];
    if (seq === newest + 1 || newest === 0) {
      if (!this.filling.has(conversationId)) this.tracked.set(conversationId, seq);
      return [];
    }
    if (this.filling.has(conversationId)) return [];
    this.filling.add(conversationId);
    return [{ type: 'fill_gap', conversation_id: conversationId, after_seq: newest, until_seq: seq }];
  }

  // A page of the history asked for by `fill_gap` arrived (ascending `messages`).
  // Returns the next `fill_gap` while messages below `until_seq` are still missing.
  gapPage(conversationId, untilSeq, messages, hasMore) {
    if (!this.filling.has(conversationId)) return [];
    let newest = this.tracked.get(conversationId) || 0;
    for (const m of messages) if (m.seq > newest) newest = m.seq;
    if (messages.length && hasMore && newest < untilSeq - 1) {
      this.tracked.set(conversationId, newest);
      return [{ type: 'fill_gap', conversation_id: conversationId, after_seq: newest, until_seq: untilSeq }];
    }
    this.filling.delete(conversationId);
    this.tracked.set(conversationId, Math.max(newest, untilSeq));
    return [];
  }

  // The history could not be loaded: give up on this gap (the next message or a reload
  // finds it again).
  gapFailed(conversationId) {
    this.filling.delete(conversationId);
  }
}
