// The service worker of the installable web app (manifest.webmanifest). It caches
// nothing and answers no fetch: every request, the API's above all, goes to the
// network as if it were not there. It shows Web Push notifications (docs/notifications.md)
// while no tab is open, and a click on one focuses the app (or opens it) on that
// conversation.
self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

// The same as push.js notificationFor (a classic worker script imports no module).
function notificationFor(data, fallbackTitle = 'Tidings') {
  const cid = data && typeof data.conversation_id === 'string' ? data.conversation_id : '';
  const title = (data && typeof data.sender_name === 'string' && data.sender_name) || fallbackTitle;
  const body = data && typeof data.preview === 'string' ? data.preview : '';
  return {
    title,
    options: {
      body,
      tag: cid ? `c:${cid}` : 'tidings',
      renotify: true,
      data: { url: cid ? `./#/c/${encodeURIComponent(cid)}` : './' },
    },
  };
}

self.addEventListener('push', (event) => {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = null;
  }
  const { title, options } = notificationFor(data);
  event.waitUntil((async () => {
    // a tab of the app in front shows it itself (the Notification API there)
    const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    if (open.some((c) => c.visibilityState === 'visible' && c.focused)) return;
    await self.registration.showNotification(title, { ...options, icon: './icons/icon-192.png' });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || './', self.registration.scope).href;
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of open) {
      if (client.url.startsWith(self.registration.scope)) {
        await client.focus();
        if ('navigate' in client) await client.navigate(url);
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});
