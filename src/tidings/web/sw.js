// The service worker of the installable web app (manifest.webmanifest). It caches
// nothing and answers no fetch: every request, the API's above all, goes to the
// network as if it were not there. It exists so the app can be installed and, later,
// receive Web Push (a 'push' handler will show the notification here).
self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});
