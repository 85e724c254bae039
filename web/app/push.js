// Web Push in the app: registers the service worker (/sw.js) and subscribes
// this browser with the server's VAPID key (GET /api/v1/push/key), or
// unsubscribes it. The server sends a push only when none of the user's
// devices is connected, never for muted rooms.
import { api } from './api.js';

const KEY = (me) => `sori.push.${me}`;

/** Whether this browser can do Web Push at all. */
export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && typeof Notification === 'function';
}

/** base64url (no padding) to bytes, for applicationServerKey. */
export function base64urlBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function registration() {
  return navigator.serviceWorker.register('/sw.js', { scope: '/' });
}

/** Whether this browser holds a push subscription the server knows of (for user me). */
export async function pushEnabled(me) {
  if (!pushSupported() || !localStorage.getItem(KEY(me))) return false;
  const reg = await navigator.serviceWorker.getRegistration('/');
  return Boolean(await reg?.pushManager.getSubscription());
}

/** Subscribes this browser: asks for permission, subscribes with the server's key, registers with the server. */
export async function enablePush(me) {
  if (Notification.permission !== 'granted' && (await Notification.requestPermission()) !== 'granted') {
    throw new Error('Notifications are not allowed for this site.');
  }
  const { public_key: key } = await api.pushKey();
  const reg = await registration();
  await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64urlBytes(key) });
  const res = await api.pushSubscribe(sub.toJSON());
  localStorage.setItem(KEY(me), String(res.id));
}

/** Unsubscribes this browser, at the server and in the browser. */
export async function disablePush(me) {
  const id = localStorage.getItem(KEY(me));
  localStorage.removeItem(KEY(me));
  if (id) await api.pushUnsubscribe(id).catch(() => { /* gone already */ });
  const reg = await navigator.serviceWorker.getRegistration('/');
  await (await reg?.pushManager.getSubscription())?.unsubscribe();
}

/** Registers the service worker without subscribing (notification clicks, later pushes). */
export function registerWorker() {
  if ('serviceWorker' in navigator) registration().catch(() => { /* shown when the user turns push on */ });
}
