// Sori's service worker (served as /sw.js, scope /): shows the Web Push
// notifications the server sends when none of the user's devices is
// connected (docs/api.md, "Web Push"), and opens the message they are about
// when clicked. The payload is JSON {type, room, seq, by, title, body}; every
// field is treated as untrusted text (notifications render text only).
/* eslint-env serviceworker */

self.addEventListener('install', () => { self.skipWaiting(); });
self.addEventListener('activate', (event) => { event.waitUntil(self.clients.claim()); });

/** The payload's fields, checked and bounded. */
function payload(data) {
  let p = {};
  try { p = data ? data.json() : {}; } catch { p = { body: data ? data.text() : '' }; }
  if (!p || typeof p !== 'object') p = {};
  const text = (v, n) => (typeof v === 'string' ? v.slice(0, n) : '');
  return {
    type: text(p.type, 32), title: text(p.title, 120) || 'Sori', body: text(p.body, 400), by: text(p.by, 64),
    room: Number.isSafeInteger(p.room) && p.room > 0 ? p.room : 0, seq: Number.isSafeInteger(p.seq) && p.seq > 0 ? p.seq : 0,
  };
}

self.addEventListener('push', (event) => {
  const p = payload(event.data);
  // Every push shows a notification (browsers require it of userVisibleOnly
  // subscriptions); one per room, the newest replacing the last.
  event.waitUntil(self.registration.showNotification(p.title, {
    body: p.body, tag: p.room ? `sori-room-${p.room}` : `sori-${p.type || 'push'}`, icon: '/favicon.svg',
    data: { room: p.room, seq: p.seq, type: p.type },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const { room = 0, seq = 0 } = event.notification.data ?? {};
  const hash = room ? (seq ? `#/rooms/${room}/messages/${seq}` : `#/room/${room}`) : '#/';
  const url = new URL(`/${hash}`, self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of windows) {
      if (new URL(w.url).origin !== self.location.origin) continue;
      await w.focus();
      if ('navigate' in w) await w.navigate(url).catch(() => {});
      return;
    }
    await self.clients.openWindow(url);
  })());
});
