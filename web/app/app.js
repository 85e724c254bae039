// Sori web app: authentication, the room list, routing and the connection.
// The room view lives in room.js, the room state in model.js, calls in call.js.
import { SoriClient, Outbox } from '/sdk/index.js';
import { api, APIError } from './api.js';
import { $, h, replace, announce } from './dom.js';
import { RoomModel } from './model.js';
import { parse, plainText } from './markdown.js';
import { pushSupported, pushEnabled, enablePush, disablePush, registerWorker } from './push.js';
import { RoomView } from './room.js';
import { CallPanel } from './call.js';
import { AccountDialog } from './admin.js';
import { Profiles } from './profile.js';
import { ServerAdmin } from './serveradmin.js';

const STATE_TEXT = { connecting: 'connecting…', connected: 'online', reconnecting: 'reconnecting…', disconnected: 'offline' };

const app = {
  me: '',
  client: null,
  rooms: new Map(), // id -> RoomModel
  subs: new Map(), // id -> Subscription of chat:<id>
  current: 0,
  view: null,
  call: null,
  state: 'disconnected',
  wasDown: false,
  depth: false, // the server has threads, pins, notification levels (its room list says "notify")
  outbox: null, // SDK Outbox: messages not acknowledged yet, kept in localStorage per user
  credentialsChanging: null, // a promise while this page changes the password (settles either way)
  reconnectedAfter4501: false, // connectionEnded reconnected once; reset when connected
  profiles: new Profiles(), // display names and avatars, by username
};

// Theme: system, light or dark, chosen in the top bar and kept in this browser.

const THEME_KEY = 'sori.theme';
function applyTheme(choice) {
  const theme = choice === 'light' || choice === 'dark' ? choice : 'system';
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $('#theme').value = theme;
  return theme;
}
applyTheme((() => { try { return localStorage.getItem(THEME_KEY); } catch { return null; } })());
$('#theme').addEventListener('change', (e) => {
  const theme = applyTheme(e.currentTarget.value);
  try { localStorage.setItem(THEME_KEY, theme); } catch { /* private mode: for this page only */ }
});
window.addEventListener('storage', (e) => { if (e.key === THEME_KEY) applyTheme(e.newValue); }); // other tabs follow

// Authentication.

let signingUp = false;
let registration = 'open'; // the server's sign-up mode: open, invite or closed

/** Asks the server's sign-up mode (an older server without the endpoint is open). */
async function loadRegistration() {
  try {
    const res = await api.registration();
    if (['open', 'invite', 'closed'].includes(res?.mode)) registration = res.mode;
  } catch { /* 404 from an older server: open */ }
  return registration;
}

/** The invite code of an invite link (#/invite/CODE), or ''. */
function inviteFromHash() {
  const m = location.hash.match(/^#\/invite\/([^/?#]+)$/);
  return m ? decodeURIComponent(m[1]) : '';
}

/**
 * The login or sign-up form, as the sign-up mode allows: closed has no
 * sign-up form at all, invite asks for an invite code (prefilled from an
 * invite link).
 */
function showAuth(mode = 'login', invite = '') {
  signingUp = mode === 'signup' && registration !== 'closed';
  $('#auth-switch-row').hidden = registration === 'closed';
  $('#auth-closed').hidden = registration !== 'closed' || mode !== 'signup';
  $('#auth-invite-row').hidden = !(signingUp && registration === 'invite');
  if (invite) $('#auth-invite').value = invite;
  $('#auth-view').hidden = false;
  $('#chat-view').hidden = true;
  $('#logout').hidden = true;
  $('#whoami').hidden = true;
  $('#sidebar-toggle').hidden = true;
  $('#conn').hidden = true;
  $('#auth-title').textContent = signingUp ? 'Create an account' : 'Log in';
  $('#auth-submit').textContent = signingUp ? 'Sign up' : 'Log in';
  $('#auth-switch-text').textContent = signingUp ? 'Have an account?' : 'New here?';
  $('#auth-switch').textContent = signingUp ? 'Log in instead' : 'Create an account';
  $('#auth-password').autocomplete = signingUp ? 'new-password' : 'current-password';
  $('#auth-password-hint').hidden = !signingUp;
  $('#auth-error').textContent = '';
  document.title = `${signingUp ? 'Sign up' : 'Log in'} · Sori`;
  $('#auth-username').focus();
}

$('#auth-switch').addEventListener('click', () => showAuth(signingUp ? 'login' : 'signup'));

$('#auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const username = $('#auth-username').value.trim();
  const password = $('#auth-password').value;
  const invite = signingUp && registration === 'invite' ? $('#auth-invite').value.trim() : '';
  const err = $('#auth-error');
  err.textContent = '';
  if (!username || !password) { err.textContent = 'Enter a username and a password.'; return; }
  if (signingUp && password.length < 8) { err.textContent = 'The password needs at least 8 characters.'; return; }
  if (signingUp && registration === 'invite' && !invite) { err.textContent = 'Enter your invite code.'; return; }
  const button = $('#auth-submit');
  button.disabled = true;
  try {
    const res = signingUp ? await api.signup(username, password, invite) : await api.login(username, password);
    $('#auth-password').value = '';
    if (inviteFromHash() || location.hash === '#/signup') history.replaceState(null, '', '#/');
    await startChat(res.user);
  } catch (ex) {
    err.textContent = ex.status === 401 && !signingUp ? 'Wrong username or password.' : ex.message;
    if (signingUp && ex.status === 403) {
      // The mode changed since the page was loaded (or the invite is spent): show what it is now.
      await loadRegistration();
      const msg = err.textContent;
      showAuth('signup');
      $('#auth-error').textContent = msg;
    }
  } finally {
    button.disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  // This browser stops getting the user's pushes (another user may log in here next).
  if (app.me && pushSupported()) await disablePush(app.me).catch(() => {});
  try { await api.logout(); } catch { /* the session may be gone already */ }
  app.client?.disconnect();
  location.hash = '';
  location.reload();
});

// Connection.

function setConnState(state, info) {
  const conn = $('#conn');
  const prev = app.state;
  app.state = state;
  conn.dataset.state = state;
  conn.textContent = STATE_TEXT[state] ?? state;
  conn.title = state === 'reconnecting' ? 'The connection was lost; reconnecting by itself.' : '';
  app.view?.connectionChanged();
  if (state === 'disconnected' && prev !== 'disconnected') void connectionEnded(info?.code);
  if (state === 'connected') app.reconnectedAfter4501 = false;
  if (state === 'reconnecting' || state === 'disconnected') {
    app.wasDown = true;
    app.view?.model?.setOnline([]); // presence is unknown until the connection is back
  }
  if (state === 'connected' && app.wasDown && prev !== 'connected') {
    app.wasDown = false;
    // Subscriptions resume by themselves; also refresh what only REST knows
    // (new rooms, counts) and let the open room catch up on edge cases.
    loadRooms();
    app.view?.catchUp();
    app.view?.refreshPresence();
    app.view?.refreshMembers();
    app.call?.reconnected();
  }
}

/**
 * The server ended the connection for good (the SDK does not reconnect by
 * itself). When this session ended too — logged out everywhere, password
 * reset by an administrator, account disabled: /me answers 401 — the page
 * goes back to the login form. A 4501 while the session still stands means
 * the connection's token was revoked but this page holds a newer session:
 * its own password change ends every credential of the user and hands this
 * page a fresh session cookie. Then it connects again (the SDK asks
 * getToken for a token of the new session; subscriptions and the outbox
 * resume), once until the connection is back, so a refusal cannot loop.
 */
async function connectionEnded(code) {
  await app.credentialsChanging; // a password change from this page: wait for its new cookie
  try {
    await api.me();
  } catch (err) {
    if (err.status === 401) location.reload();
    return;
  }
  if (code !== 4501 || app.reconnectedAfter4501 || app.client?.state !== 'disconnected') return;
  app.reconnectedAfter4501 = true;
  app.client.connect().catch(() => { /* shown by the state indicator */ });
}

function rpc(method, data) {
  if (!app.client || app.state !== 'connected') return Promise.reject(new Error('not connected'));
  return app.client.rpc(method, data);
}

async function startChat(user) {
  app.me = user.username;
  $('#auth-view').hidden = true;
  $('#chat-view').hidden = false;
  $('#logout').hidden = false;
  $('#conn').hidden = false;
  $('#sidebar-toggle').hidden = false;
  $('#account-open').hidden = false;
  app.profiles.update([user], { complete: true });
  if (user.is_admin) {
    app.admin = new ServerAdmin({ me: app.me, onError: showError });
    $('#admin-open').hidden = false;
  }
  app.account ??= new AccountDialog({
    me: app.me, profiles: app.profiles, hasProfiles: 'display_name' in user,
    // The change closes this page's connection (4501) before its answer
    // brings the new session cookie: connectionEnded waits for it.
    changingPassword: (change) => { app.credentialsChanging = change.then(() => {}, () => {}); },
  });
  const who = $('#whoami');
  who.hidden = false;
  who.textContent = `Signed in as ${user.username}`;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  app.client = new SoriClient({
    url,
    getToken: async () => {
      try {
        return (await api.connectToken()).token;
      } catch (err) {
        if (err instanceof APIError && err.status === 401) { location.reload(); }
        throw err;
      }
    },
  });
  app.client.on('state', (s, info) => setConnState(typeof s === 'string' ? s : s?.state ?? String(s), info));
  app.client.on('push', (msg) => { if (msg.push === 'call') app.call?.onPush(msg); });
  // Messages typed offline wait here (and survive a reload) until the server
  // acknowledged them; each has a client id, so a resend after a lost
  // acknowledgement is recognized by the server and shown once.
  app.outbox = new Outbox(app.client, { key: app.me });
  app.outbox.on('change', (items) => { for (const m of app.rooms.values()) m.setPending(items); });
  app.outbox.on('sent', (item, result) => {
    const id = Number(String(item.channel).replace(/^chat:/, ''));
    app.rooms.get(id)?.acknowledged(item, result?.offset ?? result?.seq);
  });
  setConnState('connecting');
  app.view = new RoomView({
    client: app.client, me: app.me, rooms: app.rooms, rpc, outbox: app.outbox, profiles: app.profiles,
    isOnline: () => app.state === 'connected',
    hasDepth: () => app.depth,
    roomSub: (id) => app.subs.get(id),
    onError: showError,
    onRemoved: (id) => { dropRoom(id); loadRooms(); },
    openMessage: (room, seq) => openMessage(room, seq),
  });
  app.call = new CallPanel({ client: app.client, me: app.me, rpc, slot: $('#call-slot'), panel: $('#call-panel') });
  app.client.connect().catch(() => { /* shown by the state indicator */ });
  // Personal events (user:<name>, docs/api.md): the server publishes there
  // whatever changes this user's room list, so the list follows at once
  // without polling. The channel keeps history, so a reconnect resumes what
  // was missed; when it cannot, the list is reloaded.
  const personal = app.client.subscribe(`user:${app.me}`, { onPublication: (pub) => onPersonalEvent(pub.data) });
  personal.on('unrecovered', () => loadRooms());
  renderNotifyButton();
  await loadRooms();
  // Threads, pins, notification levels and Web Push came with the same
  // server release, whose room list carries "notify": an older server is
  // not asked for what it does not have (no 404s).
  if (app.depth) void setupPush();
  else document.body.classList.add('no-threads');
  route();
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') loadRooms(); });
}

/** Reacts to an event of user:<me>: {type, room, by, role}. Unknown types just refresh the list. */
async function onPersonalEvent(ev) {
  const id = Number(ev?.room);
  const by = ev?.by ? String(ev.by) : 'someone';
  switch (ev?.type) {
    case 'invited':
    case 'dm_opened': {
      await loadRooms();
      const model = app.rooms.get(id);
      if (model) notice(ev.type === 'invited' ? `${by} added you to ${model.displayName}.` : `${by} started a conversation with you.`);
      return;
    }
    case 'kicked': {
      const name = app.rooms.get(id)?.displayName ?? 'a room';
      if (app.rooms.has(id)) dropRoom(id);
      notice(`${by} removed you from ${name}.`);
      return;
    }
    case 'call_ring': // a call started in a direct room with us (call.js rings)
      app.call?.ring(ev);
      return;
    case 'role_changed':
      if (app.current === id) app.view?.refreshMembers();
      notice(`${by} made you ${ev.role ?? 'a member'} of ${app.rooms.get(id)?.displayName ?? 'a room'}.`);
      return;
    default:
      loadRooms();
  }
}

/** A short visible notice in the sidebar (also read out: role="status"). */
function notice(text) {
  const el = $('#sidebar-notice');
  el.textContent = text;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { if (el.textContent === text) el.textContent = ''; }, 8000);
}

function showError(err) {
  const el = $('#sidebar-error');
  const composerErr = $('#composer-error');
  const target = $('#composer').hidden ? el : composerErr;
  target.textContent = err?.message ?? String(err);
  setTimeout(() => { if (target.textContent === (err?.message ?? String(err))) target.textContent = ''; }, 6000);
}

// Rooms.

let loadingRooms = null;

function loadRooms() {
  loadingRooms ??= (async () => {
    try {
      const res = await api.myRooms();
      const seen = new Set();
      for (const info of res.rooms ?? []) {
        seen.add(info.id);
        if ('notify' in info) app.depth = true;
        let model = app.rooms.get(info.id);
        if (model) {
          model.updateInfo(info);
        } else {
          model = new RoomModel(info, app.me, app.profiles);
          app.rooms.set(info.id, model);
          model.setPending(app.outbox.items);
          model.addEventListener('info', () => renderRoomList());
          subscribeRoom(model);
          if (info.kind === 'direct') loadPeer(model);
        }
      }
      for (const id of [...app.rooms.keys()]) if (!seen.has(id)) dropRoom(id);
      if (app.depth) document.body.classList.remove('no-threads');
      renderRoomList();
      if (app.current && !app.rooms.has(app.current) && app.view?.model?.id === app.current) route();
    } catch (err) {
      if (err.status === 401) { location.reload(); return; }
      if (err.status !== 0) showError(err);
    } finally {
      loadingRooms = null;
    }
  })();
  return loadingRooms;
}

function subscribeRoom(model) {
  const sub = app.client.subscribe(`chat:${model.id}`, {
    onPublication: (pub) => { model.applyPublication(pub); maybeNotify(model, pub); },
    onJoin: (info) => model.join(info?.info ?? info),
    onLeave: (info) => model.leave(info?.info ?? info),
  });
  // When the server cannot prove continuity (the room's history was lost),
  // start the room over from REST.
  sub.on('unrecovered', () => {
    model.reset();
    if (app.view?.model === model) app.view.show(model);
  });
  sub.on('subscribed', () => { if (app.view?.model === model) app.view.refreshPresence(); });
  app.subs.set(model.id, sub);
}

// Notifications: the browser's Notification API while the tab is hidden, at
// each room's level (model.wantsNotification). Permission is asked from a
// button (browsers refuse prompts that no click started).

function notificationsSupported() { return typeof Notification === 'function'; }

function renderNotifyButton() {
  const button = $('#enable-notifications');
  button.hidden = !notificationsSupported() || Notification.permission !== 'default';
}

$('#enable-notifications').addEventListener('click', async () => {
  try { await Notification.requestPermission(); } catch { /* old callback-only API: ignore */ }
  renderNotifyButton();
  if (Notification.permission === 'denied') notice('Notifications are blocked for this site in the browser settings.');
});

/** Shows the Web Push choice when the browser and the server both support it. */
async function setupPush() {
  if (!pushSupported()) return;
  try {
    if (!(await api.pushKey())?.public_key) return;
  } catch { return; } // a server without Web Push
  registerWorker();
  const box = $('#push-toggle');
  $('#push-choice').hidden = false;
  box.checked = await pushEnabled(app.me).catch(() => false);
  box.addEventListener('change', async () => {
    box.disabled = true;
    try {
      if (box.checked) await enablePush(app.me); else await disablePush(app.me);
      notice(box.checked ? 'Push notifications are on for this browser.' : 'Push notifications are off for this browser.');
    } catch (err) {
      box.checked = !box.checked;
      notice(`Push notifications: ${err.message}`);
    } finally {
      box.disabled = false;
      renderNotifyButton();
    }
  });
}

function maybeNotify(model, pub) {
  const ev = pub?.data;
  if (document.visibilityState === 'visible') return; // the page shows it (badge, title, timeline)
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  if (!model.wantsNotification(ev)) return;
  if (pub.time && Date.now() - pub.time > 5 * 60 * 1000) return; // an old one replayed by a resume
  const body = plainText(parse(String(ev.text ?? '').replace(/^\/api\/v1\/files\/\S+$/gm, '📎'))).slice(0, 200);
  const title = model.info.kind === 'direct' ? `${ev.user}` : `${ev.user} in ${model.displayName}`;
  try {
    const n = new Notification(title, { body, tag: `sori-room-${model.id}`, icon: '/favicon.svg' });
    n.onclick = () => { window.focus(); location.hash = `#/room/${model.id}`; n.close(); };
  } catch { /* e.g. Android Chrome allows only service worker notifications */ }
}

function dropRoom(id) {
  app.subs.get(id)?.unsubscribe().catch(() => {});
  app.subs.delete(id);
  app.rooms.delete(id);
  if (app.current === id) {
    app.current = 0;
    location.hash = '#/';
  }
  renderRoomList();
}

async function loadPeer(model) {
  try {
    const res = await api.members(model.id);
    model.setMembers(res.members ?? []);
  } catch { /* shown as "Direct message" */ }
}

function renderRoomList() {
  const groups = [];
  const dms = [];
  for (const m of app.rooms.values()) (m.info.kind === 'direct' ? dms : groups).push(m);
  const byName = (a, b) => a.displayName.localeCompare(b.displayName);
  groups.sort(byName);
  dms.sort(byName);
  const item = (m) => {
    const current = m.id === app.current;
    const label = `${m.displayName}${m.unread ? `, ${m.unread} unread` : ''}${m.mentions ? `, ${m.mentions} mentioning you` : ''}${m.info.kind === 'private' ? ', private' : ''}${m.notify === 'none' ? ', muted' : ''}`;
    return h('li', {}, h('a', { href: `#/room/${m.id}`, 'aria-current': current ? 'page' : null, 'aria-label': label, dataset: { room: String(m.id) } },
      h('span', { class: 'room-name', text: m.displayName }),
      m.info.kind === 'private' ? h('span', { class: 'lock', 'aria-hidden': 'true', title: 'private', text: '🔒' }) : null,
      m.notify === 'none' ? h('span', { class: 'muted-icon', 'aria-hidden': 'true', title: 'muted', text: '🔕' }) : null,
      m.mentions && !current ? h('span', { class: 'badge mention-badge', 'aria-hidden': 'true', title: 'mentions', text: `@${m.mentions > 99 ? '99+' : m.mentions}` }) : null,
      m.unread && !current ? h('span', { class: `badge${m.notify === 'none' ? ' quiet' : ''}`, 'aria-hidden': 'true', text: m.unread > 99 ? '99+' : String(m.unread) }) : null));
  };
  replace($('#room-list'), groups.map(item));
  replace($('#dm-list'), dms.map(item));
  $('#room-list-empty').hidden = groups.length > 0;
  const total = [...app.rooms.values()].reduce((n, m) => n + (m.id === app.current ? 0 : m.unread), 0);
  $('#sidebar-toggle').querySelector('.visually-hidden').textContent = total ? `Show rooms, ${total} unread` : 'Show rooms';
  app.view?.renderTitle();
  if ($('#browse-rooms').open) renderPublicRooms(); // rooms joined or left change what it offers
}

$('#create-room-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  const name = f.elements.name.value.trim();
  try {
    const room = await api.createRoom({ name, title: f.elements.title.value.trim(), kind: f.elements.kind.value });
    f.reset();
    $('#create-room').open = false;
    await loadRooms();
    location.hash = `#/room/${room.id}`;
    announce(`Room ${name} created`);
  } catch (err) { showError(err); }
});

$('#browse-rooms').addEventListener('toggle', (e) => {
  if (e.currentTarget.open) renderPublicRooms({ loading: true });
});

let publicRoomsSeq = 0;

/** Lists the public rooms the user is not in (again after joining or leaving one while the panel is open). */
async function renderPublicRooms({ loading = false } = {}) {
  const list = $('#public-rooms');
  const seq = ++publicRoomsSeq;
  if (loading) replace(list, h('li', { class: 'hint', text: 'Loading…' }));
  try {
    const res = await api.publicRooms();
    if (seq !== publicRoomsSeq) return; // a newer listing is on its way
    const rooms = (res.rooms ?? []).filter((r) => !app.rooms.has(r.id));
    if (!rooms.length) {
      const none = (res.rooms ?? []).length ? 'You are in every public room.' : 'There are no public rooms yet: create one above.';
      replace(list, h('li', { class: 'hint', text: none }));
      return;
    }
    replace(list, rooms.map((r) => h('li', {},
      h('span', { text: r.title || `#${r.name}` }),
      h('button', { type: 'button', 'aria-label': `Join ${r.title || r.name}`, onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          await api.join(r.id);
          await loadRooms();
          ev.target.closest('li')?.remove();
          location.hash = `#/room/${r.id}`;
        } catch (err) { showError(err); }
      } }, 'Join'))));
  } catch (err) { replace(list, h('li', { class: 'error', text: err.message })); }
}

$('#dm-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#dm-username');
  const name = input.value.trim();
  if (!name) return;
  try {
    const room = await api.openDirect(name);
    input.value = '';
    await loadRooms();
    location.hash = `#/room/${room.id}`;
  } catch (err) { showError(err.status === 404 ? new Error(`There is no user named ${name}.`) : err); }
});

$('#invite-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#invite-username');
  const err = $('#room-menu-error');
  const status = $('#room-menu-status');
  err.textContent = '';
  status.textContent = '';
  const name = input.value.trim();
  try {
    await api.invite(app.current, name);
    // Visible, and read out by the role="status" paragraph.
    status.textContent = `Invited ${name}: the room is in their list now.`;
    input.value = '';
    app.view.refreshMembers();
  } catch (ex) { err.textContent = ex.status === 404 ? `There is no user named ${name}.` : ex.message; }
});

$('#notify-level').addEventListener('change', async (e) => {
  const select = e.currentTarget;
  const model = app.rooms.get(app.current);
  const err = $('#room-menu-error');
  err.textContent = '';
  if (!model) return;
  const before = model.notify;
  try {
    const res = await api.setNotify(model.id, select.value);
    model.updateInfo({ notify: res?.level ?? res?.notify ?? select.value });
    $('#room-menu-status').textContent = { all: 'You will be notified of every message.', mentions: 'You will be notified of mentions only.', none: 'This room is muted.' }[model.notify] ?? '';
  } catch (ex) {
    select.value = before;
    err.textContent = ex.message;
  }
});

$('#topic-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = $('#room-menu-error');
  err.textContent = '';
  try {
    const room = await api.setTopic(app.current, $('#topic-input').value.trim());
    app.rooms.get(app.current)?.updateInfo(room);
    $('#room-menu').open = false;
  } catch (ex) { err.textContent = ex.message; }
});

// Leaving asks first: a private room cannot be joined again without an invitation.
function setLeaveConfirm(open) {
  $('#leave-confirm').hidden = !open;
  $('#leave-room').hidden = open;
  if (!open) return;
  const model = app.rooms.get(app.current);
  const name = model?.displayName ?? 'this room';
  $('#leave-question').textContent = model?.info.kind === 'private'
    ? `Leave ${name}? It is private: you will need an invitation to come back.`
    : `Leave ${name}?`;
  $('#leave-no').focus();
}
$('#leave-room').addEventListener('click', () => setLeaveConfirm(true));
$('#leave-no').addEventListener('click', () => { setLeaveConfirm(false); $('#leave-room').focus(); });
$('#room-menu').addEventListener('toggle', (e) => {
  if (e.currentTarget.open) return;
  setLeaveConfirm(false);
  $('#room-menu-status').textContent = '';
  $('#room-menu-error').textContent = '';
});
$('#leave-yes').addEventListener('click', async () => {
  const err = $('#room-menu-error');
  err.textContent = '';
  const id = app.current;
  const name = app.rooms.get(id)?.displayName ?? 'the room';
  try {
    await api.leave(id);
    $('#room-menu').open = false;
    dropRoom(id);
    announce(`You left ${name}`);
  } catch (ex) { err.textContent = ex.message; }
});

// Search.

$('#search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = $('#search-input').value.trim();
  if (q) app.view.search(q, $('#search-here').checked);
});
$('#search-close').addEventListener('click', () => { $('#search-results').hidden = true; $('#search-input').focus(); });

async function openMessage(roomId, seq) {
  if (app.current !== roomId) {
    location.hash = `#/room/${roomId}`;
    await route();
  }
  const found = await app.view.reveal(seq);
  if (!found) showError(new Error('That message is no longer available.'));
}

// Phone layout: the sidebar slides over the room.

const chatView = $('#chat-view');
$('#sidebar-toggle').addEventListener('click', () => setSidebar(!chatView.classList.contains('show-sidebar')));
function setSidebar(open) {
  chatView.classList.toggle('show-sidebar', open);
  $('#sidebar-toggle').setAttribute('aria-expanded', String(open));
  if (open) $('#sidebar').querySelector('a, button, input, summary')?.focus();
}
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && chatView.classList.contains('show-sidebar')) { setSidebar(false); $('#sidebar-toggle').focus(); }
});

// Routing: #/room/<id>.

/** Shows the server-admin page (#/admin, administrators only) instead of the chat, or the chat again. */
function showAdmin(on) {
  const was = !$('#admin-view').hidden;
  $('#admin-view').hidden = !on;
  $('#chat-view').hidden = on;
  $('#admin-open').setAttribute('aria-current', on ? 'page' : 'false');
  if (on) app.admin.show();
  else if (was) { app.admin?.hide(); app.view?.renderTitle(); }
}

async function route() {
  if (location.hash === '#/admin' && app.admin) { showAdmin(true); return; }
  showAdmin(false);
  // #/room/ID, or a permalink #/rooms/ID/messages/SEQ (scrolls to the message and highlights it).
  const link = location.hash.match(/^#\/rooms\/(\d+)\/messages\/(\d+)$/);
  const m = link ?? location.hash.match(/^#\/room\/(\d+)$/);
  const id = m ? Number(m[1]) : 0;
  if (link) {
    await routeTo(id);
    if (app.view.model?.id === id) {
      const found = await app.view.reveal(Number(link[2]));
      if (!found) showError(new Error('That message is no longer available.'));
    }
    return;
  }
  await routeTo(id);
}

async function routeTo(id) {
  setSidebar(false);
  let model = app.rooms.get(id);
  if (id && !model) {
    await loadRooms();
    model = app.rooms.get(id);
  }
  if (id && !model) { showError(new Error('You are not a member of that room.')); return; }
  if (!model && !id && app.rooms.size && matchMedia('(min-width: 721px)').matches) {
    // Open the first room on wide screens rather than an empty pane.
    const first = [...app.rooms.values()].sort((a, b) => a.displayName.localeCompare(b.displayName))[0];
    history.replaceState(null, '', `#/room/${first.id}`);
    model = first;
  }
  if (app.view.model === model && model) return;
  app.current = model?.id ?? 0;
  renderRoomList();
  app.call?.setRoom(model ?? null);
  await app.view.show(model ?? null);
  if (model) $('#composer-text').focus({ preventScroll: true });
  else if (!app.rooms.size) setSidebar(true);
}

window.addEventListener('hashchange', () => {
  if (app.me) { route(); return; }
  // Logged out: an invite link or #/signup followed from this page opens the sign-up form.
  const invite = inviteFromHash();
  if (invite || location.hash === '#/signup') showAuth('signup', invite);
});

// Boot: who am I?

(async function boot() {
  try {
    const res = await api.me();
    await startChat(res.user);
  } catch (err) {
    await loadRegistration();
    const invite = inviteFromHash();
    showAuth(location.hash === '#/signup' || invite ? 'signup' : 'login', invite);
    if (err.status !== 401 && err.status !== undefined) $('#auth-error').textContent = err.message;
  }
})();
