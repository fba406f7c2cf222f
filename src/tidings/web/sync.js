// The client side of the connection protocol, without IO (docs/protocol.md, docs/web.md).
//
// A ClientSession is the one owner of
//   - the resume position (`since`): which stored events were processed, and which
//     replayed ones to drop as already seen;
//   - requests by `ref`: an `ack` or `error` frame is matched to the frame it answers;
//   - the outbox: messages sent but not yet acknowledged, each with its
//     `client_msg_id`, resent with the same id after a reconnect or a retry;
//   - gap fill: a conversation whose messages the client holds up to `seq` n that
//     receives n + 2 asks for the history in between.
// Frames go in (`receive`), frames to write come out (`authFrame`, `send`, `flush`,
// `request`), and what happened comes out as plain outcome objects. No WebSocket, no
// timers, no clock, no storage: api.js drives a session from the socket, app.js acts on
// the outcomes. Node's test runner checks it (tests/web/sync.test.mjs).

const RECENT_LIMIT = 10000;
const OPAQUE_LIMIT = 100000;

// Order key of a stream position, or null if it is not an integer. Positions are
// opaque strings; today the server makes them increasing integers, which lets the
// client drop a replayed duplicate without asking the server.
export function positionKey(position) {
  const text = String(position);
  return /^\d+$/.test(text) ? BigInt(text) : null;
}

// What the outbox keeps of a send (also what is stored in localStorage).
function entryOf(p) {
  return {
    client_msg_id: p.client_msg_id,
    conversation_id: p.conversation_id,
    body: p.body,
    reply_to_seq: p.reply_to_seq ?? null,
    status: p.status === 'failed' ? 'failed' : 'pending',
    created_at: p.created_at ?? null,
    ...(p.error ? { error: p.error } : {}),
  };
}

export class ClientSession {
  constructor({ since = null, outbox = [] } = {}) {
    this.ready = false;
    this.nextRef = 1;
    this.requests = new Map(); // ref -> {kind: 'send' | 'request', client_msg_id?}
    this.entries = outbox.map(entryOf); // in send order
    this.tracked = new Map(); // conversation id -> newest seq held without a gap
    this.filling = new Set(); // conversations with a gap fill under way
    this.resetPosition(since);
  }

  // ---------------------------------------------------------------- position
  resetPosition(since = null) {
    this.received = since == null ? null : String(since);
    this.receivedKey = since == null ? null : positionKey(since);
    // Integer positions at or below the floor were handled before (since, or long ago).
    this.floor = this.receivedKey;
    this.recent = new Set();
    this.recentOrder = [];
    this.seenOpaque = new Set();
    this.seenOpaqueOrder = [];
  }

  // The position to resume from: the last stored event received (or `since`, or the
  // head of the stream at the first `ready`).
  get position() {
    return this.received;
  }

  remember(key) {
    this.recent.add(key);
    this.recentOrder.push(key);
    if (this.recentOrder.length > RECENT_LIMIT) {
      const oldest = this.recentOrder.shift();
      this.recent.delete(oldest);
      if (this.floor == null || oldest > this.floor) this.floor = oldest;
    }
  }

  // True if the event at `position` was not received before (and note it). An
  // integer position at or below the last one is a replayed duplicate, unless it was
  // never seen (delivered out of order): then it is accepted rather than lost.
  accept(position) {
    const pos = String(position);
    const key = positionKey(pos);
    if (key != null) {
      const last = this.receivedKey;
      if (last != null && key <= last) {
        if ((this.floor != null && key <= this.floor) || this.recent.has(key)) return false;
        this.remember(key);
        return true;
      }
      this.receivedKey = key;
      this.remember(key);
    } else {
      if (this.seenOpaque.has(pos)) return false;
      this.seenOpaque.add(pos);
      this.seenOpaqueOrder.push(pos);
      if (this.seenOpaqueOrder.length > OPAQUE_LIMIT) this.seenOpaque.delete(this.seenOpaqueOrder.shift());
    }
    this.received = pos;
    return true;
  }

  // ---------------------------------------------------------------- frames out
  // The first frame of a connection: authenticate, and resume if we have a position.
  authFrame(token) {
    const frame = { type: 'auth', token, ref: 'auth' };
    if (this.received != null) frame.since = this.received;
    return frame;
  }

  takeRef() {
    return `r${this.nextRef++}`;
  }

  // A frame that expects an `ack` (ping, presence…): returns it with a fresh `ref`, or
  // null while not ready.
  request(frame) {
    if (!this.ready) return null;
    const ref = this.takeRef();
    this.requests.set(ref, { kind: 'request' });
    return { ...frame, ref };
  }

  // Put a message in the outbox. Returns the `send` frame to write now, or null when not
  // connected or told to `hold` it (it is sent by `flush` after the next `ready`).
  send({ conversation_id, body, reply_to_seq = null, client_msg_id, created_at = null }, { hold = false } = {}) {
    if (!client_msg_id) throw new Error('client_msg_id is required');
    let entry = this.entries.find((p) => p.client_msg_id === client_msg_id);
    if (!entry) {
      entry = entryOf({ client_msg_id, conversation_id, body, reply_to_seq, status: 'pending', created_at });
      this.entries.push(entry);
    }
    if (hold) {
      entry.status = 'pending';
      return null;
    }
    return this.deliver(entry);
  }

  deliver(entry) {
    entry.status = 'pending';
    delete entry.error;
    if (!this.ready || this.inflightRef(entry.client_msg_id)) return null;
    const ref = this.takeRef();
    this.requests.set(ref, { kind: 'send', client_msg_id: entry.client_msg_id });
    const frame = { type: 'send', conversation_id: entry.conversation_id, client_msg_id: entry.client_msg_id,
      body: entry.body, ref };
    if (entry.reply_to_seq) frame.reply_to_seq = entry.reply_to_seq;
    return frame;
  }

  inflightRef(clientMsgId) {
    for (const [ref, r] of this.requests) if (r.kind === 'send' && r.client_msg_id === clientMsgId) return ref;
    return null;
  }

  // After `ready`: the frames of every pending message not already in flight, oldest first.
  flush() {
    const frames = [];
    for (const entry of this.entries) {
      if (entry.status !== 'pending') continue;
      const frame = this.deliver(entry);
      if (frame) frames.push(frame);
    }
    return frames;
  }

  // Send a failed message again, with the same client_msg_id (or, with `hold`, mark it
  // pending for the next `flush`).
  retry(clientMsgId, { hold = false } = {}) {
    const entry = this.entries.find((p) => p.client_msg_id === clientMsgId);
    if (!entry) return null;
    if (hold) {
      entry.status = 'pending';
      delete entry.error;
      return null;
    }
    return this.deliver(entry);
  }

  // Drop a message from the outbox (a late ack is then ignored).
  discard(clientMsgId) {
    this.entries = this.entries.filter((p) => p.client_msg_id !== clientMsgId);
    const ref = this.inflightRef(clientMsgId);
    if (ref) this.requests.delete(ref);
  }

  // Copies of the outbox entries, in send order.
  get outbox() {
    return this.entries.map((p) => ({ ...p }));
  }

  // ---------------------------------------------------------------- frames in
  receive(frame) {
    if (!frame || typeof frame !== 'object') return [];
    switch (frame.type) {
      case 'ready':
        return this.onReady(frame);
      case 'event':
        return this.onEvent(frame);
      case 'ack':
        return this.onAck(frame);
      case 'error':
        return this.onError(frame);
      case 'reconnect':
        return [{ type: 'reconnect' }];
      case 'typing':
      case 'presence':
        return [{ type: frame.type, frame }];
      default:
        return [];
    }
  }

  onReady(frame) {
    this.ready = true;
    const head = frame.position == null ? null : String(frame.position);
    if (this.received == null && head != null) {
      // Nothing received yet: resume from the head we subscribed at, so a drop before
      // the first event loses nothing.
      this.accept(head);
      const key = positionKey(head);
      if (key != null) this.floor = key;
    }
    return [{ type: 'ready', user: frame.user ?? null, position: head }];
  }

  onEvent(frame) {
    if (frame.position == null || !frame.event || typeof frame.event !== 'object') return [];
    const position = String(frame.position);
    if (!this.accept(position)) return [{ type: 'duplicate', position }];
    const out = [{ type: 'event', position, event: frame.event }];
    const m = frame.event.kind === 'message' ? frame.event.message : null;
    if (m) out.push(...this.onMessage(m));
    return out;
  }

  // A stored message reached us (event or ack): settle the outbox, look for a gap.
  onMessage(m) {
    const out = [];
    const i = this.entries.findIndex((p) => p.client_msg_id === m.client_msg_id);
    if (m.client_msg_id && i >= 0) {
      this.entries.splice(i, 1);
      const ref = this.inflightRef(m.client_msg_id);
      if (ref) this.requests.delete(ref);
      out.push({ type: 'sent', client_msg_id: m.client_msg_id, message: m });
    }
    out.push(...this.noteSeq(m.conversation_id, m.seq));
    return out;
  }

  onAck(frame) {
    const ref = frame.ref == null ? null : String(frame.ref);
    const r = ref == null ? null : this.requests.get(ref);
    if (!r) return [];
    this.requests.delete(ref);
    if (r.kind === 'send') {
      if (frame.message) return this.onMessage(frame.message);
      // An ack without the message: settle the outbox anyway.
      this.entries = this.entries.filter((p) => p.client_msg_id !== r.client_msg_id);
      return [{ type: 'sent', client_msg_id: r.client_msg_id, message: null }];
    }
    return [{ type: 'ack', ref, frame }];
  }

  onError(frame) {
    const error = frame.error || {};
    const code = error.code || 'error';
    if (frame.ref === 'auth' || !this.ready) {
      // An error before `ready` answers the auth frame (whether or not it echoes the ref).
      if (code === 'invalid_position' && this.received != null) return [this.resumeFailed()];
      return [{ type: 'auth_error', code }];
    }
    const ref = frame.ref == null ? null : String(frame.ref);
    const r = ref == null ? null : this.requests.get(ref);
    if (!r) return [{ type: 'error', ref, code, error }];
    this.requests.delete(ref);
    if (r.kind === 'send') {
      const entry = this.entries.find((p) => p.client_msg_id === r.client_msg_id);
      if (!entry) return [];
      entry.status = 'failed';
      entry.error = code;
      return [{ type: 'send_failed', client_msg_id: r.client_msg_id, code }];
    }
    return [{ type: 'error', ref, code, error }];
  }

  // The connection is gone: every request in flight is answered `disconnected`; the
  // messages stay pending and are sent again (same client_msg_id) after the next `ready`.
  closed() {
    this.ready = false;
    const out = [];
    for (const [ref, r] of this.requests) {
      if (r.kind === 'request') out.push({ type: 'error', ref, code: 'disconnected', error: { code: 'disconnected' } });
    }
    this.requests.clear();
    return out;
  }

  // No answer in time: a request fails with `timeout`; a send is marked failed (the user
  // may retry it, with the same client_msg_id).
  expire(ref) {
    const r = this.requests.get(String(ref));
    if (!r) return [];
    this.requests.delete(String(ref));
    if (r.kind === 'send') {
      const entry = this.entries.find((p) => p.client_msg_id === r.client_msg_id);
      if (!entry) return [];
      entry.status = 'failed';
      entry.error = 'timeout';
      return [{ type: 'send_failed', client_msg_id: r.client_msg_id, code: 'timeout' }];
    }
    return [{ type: 'error', ref: String(ref), code: 'timeout', error: { code: 'timeout' } }];
  }

  // The server cannot resume from our position: start fresh (state reloaded over REST).
  resumeFailed() {
    this.resetPosition(null);
    this.tracked.clear();
    this.filling.clear();
    return { type: 'resume_failed' };
  }

  // ---------------------------------------------------------------- gap fill
  // The client holds a conversation's messages up to `newest` (no gap below it).
  track(conversationId, newest) {
    const cur = this.tracked.get(conversationId);
    this.tracked.set(conversationId, Math.max(cur || 0, newest || 0));
  }

  // The messages held were dropped (the state is reloaded): no conversation is tracked.
  forgetHistory() {
    this.tracked.clear();
    this.filling.clear();
  }

  untrack(conversationId) {
    this.tracked.delete(conversationId);
    this.filling.delete(conversationId);
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
