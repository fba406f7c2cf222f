// REST and WebSocket access to the Tidings server (protocol v1, docs/protocol.md).

export class ApiError extends Error {
  constructor(status, code, message, details = {}, retryAfter = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter;
  }
}

const API_BASE = new URL('api/v1/', document.baseURI);

export class Api {
  constructor({ getToken, onUnauthenticated }) {
    this.getToken = getToken;
    this.onUnauthenticated = onUnauthenticated;
  }

  async request(method, path, { body, query } = {}) {
    const url = new URL(path.replace(/^\//, ''), API_BASE);
    if (query) {
      for (const [k, v] of Object.entries(query)) if (v != null && v !== '') url.searchParams.set(k, v);
    }
    const headers = { Accept: 'application/json' };
    const token = this.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new ApiError(0, 'network', String(err && err.message));
    }
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.details,
        res.headers.get('Retry-After'));
      if (res.status === 401 && err.code === 'unauthenticated' && this.onUnauthenticated) this.onUnauthenticated();
      throw err;
    }
    return data;
  }

  get(path, query) { return this.request('GET', path, { query }); }
  post(path, body = {}) { return this.request('POST', path, { body }); }
  patch(path, body = {}) { return this.request('PATCH', path, { body }); }
  put(path) { return this.request('PUT', path); }
  del(path) { return this.request('DELETE', path); }
}

// One WebSocket connection that keeps itself alive: authenticates with `since`
// (the last processed position), reconnects with jittered backoff, answers
// `reconnect` frames, and matches `ack`/`error` frames to requests by `ref`.
export class Connection {
  constructor({ getToken, onReady, onFrame, onStatus, onAuthFailed, onResumeFailed }) {
    this.getToken = getToken;
    this.onReady = onReady;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.onAuthFailed = onAuthFailed;
    this.onResumeFailed = onResumeFailed;
    this.position = null; // last processed position (opaque)
    this.ws = null;
    this.ready = false;
    this.stopped = true;
    this.attempt = 0;
    this.nextRef = 1;
    this.waiting = new Map(); // ref -> {resolve, reject, timer}
    this.timer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
  }

  url() {
    const u = new URL('api/v1/ws', document.baseURI);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    if (this.ws) {
      this.ws.onclose = null;
      try { this.ws.close(1000); } catch { /* already closed */ }
    }
    this.ws = null;
    this.ready = false;
    this.failAll('disconnected');
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.opened = false;
    ws.onopen = () => {
      this.opened = true;
      const frame = { type: 'auth', token: this.getToken(), ref: 'auth' };
      if (this.position != null) frame.since = this.position;
      ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const wasReady = this.ready;
      this.ready = false;
      clearInterval(this.pingTimer);
      this.failAll('disconnected');
      if (this.stopped) return;
      if (this.opened && !wasReady && this.position != null) {
        // The server took the connection but closed it before `ready`: after a few
        // such answers, stop insisting on our position and start fresh.
        this.closedBeforeReady = (this.closedBeforeReady || 0) + 1;
        if (this.closedBeforeReady >= 3) this.resumeFailed();
      }
      if (ev.code === 4001 || ev.code === 4003) {
        // Maybe the token is no longer valid; the app checks and signs out if so.
        this.onAuthFailed && this.onAuthFailed(ev.code);
      }
      this.onStatus && this.onStatus('reconnecting', { wasReady, code: ev.code });
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  resumeFailed() {
    this.position = null;
    this.closedBeforeReady = 0;
    this.onResumeFailed && this.onResumeFailed();
  }

  scheduleReconnect(minDelay = 0) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const base = Math.min(5000, 300 * 2 ** Math.min(this.attempt, 5));
    const delay = Math.max(minDelay, base / 2 + Math.random() * base / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped) return;
    this.attempt = 0;
    if (this.ws) {
      try { this.ws.close(4000); } catch { /* ignore */ }
    } else {
      this.connect();
    }
  }

  handle(frame) {
    switch (frame.type) {
      case 'ready':
        this.ready = true;
        this.attempt = 0;
        this.closedBeforeReady = 0;
        if (this.position == null) this.position = frame.position;
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.keepAlive(), 25000);
        this.onStatus && this.onStatus('online');
        this.onReady && this.onReady(frame);
        return;
      case 'ack': {
        const w = this.waiting.get(String(frame.ref));
        if (w) {
          this.waiting.delete(String(frame.ref));
          clearTimeout(w.timer);
          w.resolve(frame);
        }
        return;
      }
      case 'error': {
        if (frame.ref === 'auth' || !this.ready) {
          // An error before `ready` answers the auth frame (whether or not it echoes the ref).
          const code = frame.error && frame.error.code;
          if (code === 'invalid_position' && this.position != null) this.resumeFailed();
          return;
        }
        const w = frame.ref != null ? this.waiting.get(String(frame.ref)) : null;
        if (w) {
          this.waiting.delete(String(frame.ref));
          clearTimeout(w.timer);
          const e = frame.error || {};
          const err = new Error(e.message || e.code);
          err.code = e.code || 'error';
          err.details = e.details;
          w.reject(err);
        }
        return;
      }
      case 'reconnect':
        // The server is going away: reconnect after a short jittered delay.
        if (this.ws) {
          const ws = this.ws;
          this.attempt = 0;
          setTimeout(() => { if (this.ws === ws) { try { ws.close(4000); } catch { /* ignore */ } } },
            100 + Math.random() * 400);
        }
        return;
      default:
        this.onFrame && this.onFrame(frame);
    }
  }

  keepAlive() {
    if (!this.ready) return;
    if (Date.now() - this.lastFrameAt > 70000) {
      this.reconnectNow();
      return;
    }
    this.request({ type: 'ping' }, 20000).catch(() => {});
  }

  // Send a frame and wait for its ack. Rejects with code 'disconnected' when the
  // connection is not ready or drops, 'timeout' after `timeoutMs`.
  request(frame, timeoutMs = 15000) {
    return new Promise((resolve, reject) => {
      if (!this.ready || !this.ws) {
        const err = new Error('disconnected');
        err.code = 'disconnected';
        reject(err);
        return;
      }
      const ref = `r${this.nextRef++}`;
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        const err = new Error('timeout');
        err.code = 'timeout';
        reject(err);
      }, timeoutMs);
      this.waiting.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  // Fire and forget (typing, presence).
  notify(frame) {
    if (this.ready && this.ws) this.ws.send(JSON.stringify(frame));
  }

  failAll(code) {
    for (const [ref, w] of this.waiting) {
      clearTimeout(w.timer);
      const err = new Error(code);
      err.code = code;
      w.reject(err);
      this.waiting.delete(ref);
    }
  }
}
