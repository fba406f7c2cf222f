// Web Push on this device (docs/notifications.md): subscribe the service worker's
// PushManager with the server's VAPID key and hand the subscription to the server
// (POST /push/subscriptions), or take it back. The pure helpers (the key's bytes, what
// the service worker shows for a payload) are unit-tested (tests/web/push.test.mjs);
// sw.js has its own copy of notificationFor (a worker cannot import this module's
// browser-only parts).

// base64url (the server's applicationServerKey) -> the bytes PushManager wants
export function keyBytes(base64url) {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (base64url.length % 4)) % 4);
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

// What a push payload {conversation_id, seq, sender_name, preview?} shows.
export function notificationFor(data, fallbackTitle = 'Tidings') {
  const cid = data && typeof data.conversation_id === 'string' ? data.conversation_id : '';
  const title = (data && typeof data.sender_name === 'string' && data.sender_name) || fallbackTitle;
  const body = data && typeof data.preview === 'string' ? data.preview : '';
  return {
    title,
    options: {
      body,
      tag: cid ? `c:${cid}` : 'tidings', // one per conversation: a newer one replaces it
      renotify: true,
      data: { url: cid ? `./#/c/${encodeURIComponent(cid)}` : './' },
    },
  };
}

export function pushSupported() {
  return typeof window !== 'undefined' && window.isSecureContext && 'serviceWorker' in navigator
    && 'PushManager' in window && 'Notification' in window;
}

async function registration() {
  return navigator.serviceWorker.ready;
}

// This device's subscription, if it has one.
export async function currentSubscription() {
  if (!pushSupported()) return null;
  const reg = await registration();
  return reg.pushManager.getSubscription();
}

// Ask for permission, subscribe with the server's key, tell the server.
export async function enablePush(api) {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw Object.assign(new Error('denied'), { code: 'push_denied' });
  const { public_key: key } = await api.get('/push/vapid-key');
  const reg = await registration();
  let sub = await reg.pushManager.getSubscription();
  if (sub) {
    // subscribed with another key (the server's was replaced): start again
    const have = sub.options && sub.options.applicationServerKey;
    const want = keyBytes(key);
    if (have && new Uint8Array(have).join() !== want.join()) {
      await sub.unsubscribe();
      sub = null;
    }
  }
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  const json = sub.toJSON();
  await api.post('/push/subscriptions', { endpoint: json.endpoint, keys: json.keys });
  return sub;
}

export async function disablePush(api) {
  const sub = await currentSubscription();
  if (!sub) return;
  try {
    await api.del('/push/subscriptions', { endpoint: sub.endpoint });
  } finally {
    await sub.unsubscribe();
  }
}
