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
    this.links = new Map(); // `${file id} ${variant}` -> { url, until }: signed links
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

  // A file to download (an export): its bytes as a Blob, and the response's headers.
  async download(path, query) {
    const url = new URL(path.replace(/^\//, ''), API_BASE);
    for (const [k, v] of Object.entries(query || {})) if (v != null && v !== '') url.searchParams.set(k, v);
    const token = this.getToken();
    const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!res.ok) {
      let e = {};
      try { e = (await res.json()).error || {}; } catch { e = {}; }
      throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.details);
    }
    return { blob: await res.blob(), headers: res.headers };
  }
  // Upload one file (POST /files, multipart field `file`) with XMLHttpRequest, which
  // reports upload progress (fetch does not): `onProgress(loaded, total)` as bytes
  // go out. Returns { promise, abort }: the promise gives the file object, or rejects
  // with an ApiError (code 'aborted' after abort()).
  upload(file, { onProgress } = {}) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open('POST', new URL('files', API_BASE));
      const token = this.getToken();
      if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.responseType = 'json';
      if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onload = () => {
        const data = xhr.response;
        if (xhr.status >= 200 && xhr.status < 300 && data && data.file) {
          resolve(data.file);
          return;
        }
        const e = (data && data.error) || {};
        const err = new ApiError(xhr.status, e.code || `http_${xhr.status}`, e.message || xhr.statusText, e.details,
          xhr.getResponseHeader('Retry-After'));
        if (xhr.status === 401 && err.code === 'unauthenticated' && this.onUnauthenticated) this.onUnauthenticated();
        reject(err);
      };
      xhr.onerror = () => reject(new ApiError(0, 'network', 'network error'));
      xhr.onabort = () => reject(new ApiError(0, 'aborted', 'aborted'));
      const form = new FormData();
      form.append('file', file, file.name || 'pasted');
      xhr.send(form);
    });
    return { promise, abort: () => xhr.abort() };
  }

  // A signed link to a file (`variant`: original | thumbnail | preview) that works
  // without the token until it expires: for <img src> and downloads. Kept until a
  // minute before it expires.
  async fileLink(fileId, variant = 'original') {
    const key = `${fileId} ${variant}`;
    const hit = this.links.get(key);
    if (hit && hit.until > Date.now()) return hit.url;
    const res = await this.post(`/files/${encodeURIComponent(fileId)}/link`, { variant });
    const url = new URL(res.url, document.baseURI).href;
    const expires = Date.parse(res.expires_at) || Date.now() + 120000;
    this.links.set(key, { url, until: Math.max(Date.now(), expires - 60000) });
    if (this.links.size > 2000) this.links.delete(this.links.keys().next().value);
    return url;
  }

  post(path, body = {}) { return this.request('POST', path, { body }); }
  patch(path, body = {}) { return this.request('PATCH', path, { body }); }
  put(path, body) { return this.request('PUT', path, { body }); }
  del(path, body) { return this.request('DELETE', path, { body }); }
}

// One WebSocket connection that keeps itself alive: reconnects with jittered backoff,
// answers `reconnect` frames, pings, and times requests out. The protocol's rules
// (auth and resume position, answers by `ref`, the outbox, gap detection) are not
// here: they are the ClientSession's (sync.js), which this loop feeds with every frame
// and close. What the session makes of them goes on to `onOutcomes(outcomes)`.
export class Connection {
  constructor({ session, getToken, onOutcomes, onStatus }) {
    this.session = session;
    this.getToken = getToken;
    this.onOutcomes = onOutcomes;
    this.onStatus = onStatus;
    this.ws = null;
    this.stopped = true;
    this.attempt = 0;
    this.waiting = new Map(); // ref -> {resolve, reject, timer}
    this.timer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
    this.closedBeforeReady = 0;
  }

  get ready() {
    return !!this.ws && this.session.ready;
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
      this.ws = null;
      this.handle(this.session.connectionLost(null));
    }
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
    this.opened = false;
    ws.onopen = () => {
      this.opened = true;
      ws.send(JSON.stringify(this.session.authFrame(this.getToken())));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(this.session.receive(frame));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const wasReady = this.session.ready;
      clearInterval(this.pingTimer);
      const outcomes = this.opened ? this.session.connectionLost(ev.code) : [];
      if (this.opened && !wasReady && this.session.position != null) {
        // The server took the connection but closed it before `ready`: after a few
        // such answers, stop insisting on our position and start fresh.
        this.closedBeforeReady += 1;
        if (this.closedBeforeReady >= 3) {
          this.closedBeforeReady = 0;
          this.session.forgetPosition();
          outcomes.push({ type: 'ended', next: 'resume_refused', unanswered: [], unanswered_sends: [] });
        }
      }
      this.handle(outcomes);
      if (this.stopped) return;
      this.onStatus && this.onStatus('reconnecting', { wasReady, code: ev.code });
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
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

  settle(ref, fn) {
    const w = this.waiting.get(String(ref));
    if (!w) return;
    this.waiting.delete(String(ref));
    clearTimeout(w.timer);
    fn(w);
  }

  // Act on the outcomes that concern the socket, then hand them all on.
  handle(outcomes) {
    if (!outcomes.length) return;
    for (const o of outcomes) {
      if (o.type === 'ready') {
        this.attempt = 0;
        this.closedBeforeReady = 0;
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.keepAlive(), 25000);
        this.onStatus && this.onStatus('online');
      } else if (o.type === 'answered') {
        this.settle(o.ref, (w) => {
          if (o.ok) {
            w.resolve(o.frame);
            return;
          }
          const e = o.frame.error || {};
          const err = new Error(e.message || e.code || 'error');
          err.code = e.code || 'error';
          err.details = e.details;
          w.reject(err);
        });
      } else if (o.type === 'ended') {
        for (const ref of o.unanswered) {
          this.settle(ref, (w) => {
            const err = new Error('disconnected');
            err.code = 'disconnected';
            w.reject(err);
          });
        }
        if (o.next === 'reconnect_soon') this.attempt = 0;
      } else if (o.type === 'reconnect_soon' && this.ws) {
        // The server is going away: reconnect after a short jittered delay.
        const ws = this.ws;
        this.attempt = 0;
        setTimeout(() => { if (this.ws === ws) { try { ws.close(4000); } catch { /* ignore */ } } },
          100 + Math.random() * 400);
      }
    }
    this.onOutcomes && this.onOutcomes(outcomes);
  }

  keepAlive() {
    if (!this.ready) return;
    if (Date.now() - this.lastFrameAt > 70000) {
      this.reconnectNow();
      return;
    }
    this.request({ type: 'ping' }, 20000).catch(() => {});
  }

  // Write `send` frames the session made (from `send`, `flush` or `retry`); one not
  // answered within `timeoutMs` is given up on (the session marks it failed).
  write(frames, timeoutMs = 15000) {
    for (const frame of frames) {
      if (!frame || !this.ws) continue;
      this.ws.send(JSON.stringify(frame));
      setTimeout(() => this.handle(this.session.giveUp(frame.ref)), timeoutMs);
    }
  }

  // Send a frame and wait for its ack. Rejects with code 'disconnected' when the
  // connection is not ready or drops, 'timeout' after `timeoutMs`.
  request(frame, timeoutMs = 15000) {
    return new Promise((resolve, reject) => {
      const out = this.ready ? this.session.request(frame) : null;
      if (!out) {
        const err = new Error('disconnected');
        err.code = 'disconnected';
        reject(err);
        return;
      }
      const timer = setTimeout(() => {
        this.waiting.delete(out.ref);
        this.handle(this.session.giveUp(out.ref));
        const err = new Error('timeout');
        err.code = 'timeout';
        reject(err);
      }, timeoutMs);
      this.waiting.set(out.ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify(out));
    });
  }

  // Fire and forget (typing, presence).
  notify(frame) {
    if (this.ready) this.ws.send(JSON.stringify(frame));
  }
}
