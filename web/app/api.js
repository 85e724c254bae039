// The chat REST API (docs/api.md) as used by the app: same-origin requests
// with the session cookie, and the CSRF token in a header on unsafe methods.

export class APIError extends Error {
  constructor(status, code, message) {
    super(message || `request failed (${status})`);
    this.name = 'APIError';
    this.status = status;
    this.code = code;
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)sori_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

/**
 * request('POST', '/api/v1/rooms', {name: 'x'}) → parsed JSON.
 * body may be a plain object (sent as JSON) or a Blob/File (sent as is).
 */
export async function request(method, path, body, { signal } = {}) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD') {
    const t = csrfToken();
    if (t) headers['X-CSRF-Token'] = t;
  }
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers['Content-Type'] = body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', signal });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new APIError(0, 0, 'The server cannot be reached. Check your connection.');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const e = data?.error ?? data ?? {};
    throw new APIError(res.status, e.code ?? 0, e.message ?? (res.status === 413 ? 'That is too large.' : `request failed (${res.status})`));
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  me: () => request('GET', '/api/v1/me'),
  setDisplayName: (name) => request('PATCH', '/api/v1/me', { display_name: name }),
  setAvatar: (file) => request('PUT', '/api/v1/me/avatar', file),
  removeAvatar: () => request('DELETE', '/api/v1/me/avatar'),
  signup: (username, password, invite) => request('POST', '/api/v1/auth/signup', invite ? { username, password, invite } : { username, password }),
  /** The sign-up mode: {mode: 'open'|'invite'|'closed'} (anyone may ask). */
  registration: () => request('GET', '/api/v1/auth/registration'),
  login: (username, password) => request('POST', '/api/v1/auth/login', { username, password }),
  logout: () => request('POST', '/api/v1/auth/logout'),
  connectToken: () => request('POST', '/api/v1/auth/connect-token'),

  myRooms: () => request('GET', '/api/v1/rooms'),
  publicRooms: () => request('GET', '/api/v1/rooms/public'),
  createRoom: (room) => request('POST', '/api/v1/rooms', room),
  openDirect: (username) => request('POST', `/api/v1/direct/${enc(username)}`),
  room: (id) => request('GET', `/api/v1/rooms/${id}`),
  join: (id) => request('POST', `/api/v1/rooms/${id}/join`),
  leave: (id) => request('POST', `/api/v1/rooms/${id}/leave`),
  members: (id) => request('GET', `/api/v1/rooms/${id}/members`),
  invite: (id, username) => request('POST', `/api/v1/rooms/${id}/members`, { username }),
  setTopic: (id, topic) => request('PATCH', `/api/v1/rooms/${id}`, { topic }),
  thread: (id, root, { after = 0, limit = 200 } = {}) => request('GET', `/api/v1/rooms/${id}/threads/${root}?after=${after}&limit=${limit}`),
  pins: (id) => request('GET', `/api/v1/rooms/${id}/pins`),
  pin: (id, seq, on) => request(on ? 'PUT' : 'DELETE', `/api/v1/rooms/${id}/pins/${seq}`),
  pushKey: () => request('GET', '/api/v1/push/key'),
  pushSubscribe: (subscription) => request('POST', '/api/v1/push/subscriptions', subscription),
  pushUnsubscribe: (id) => request('DELETE', `/api/v1/push/subscriptions/${enc(id)}`),
  kick: (id, username) => request('DELETE', `/api/v1/rooms/${id}/members/${enc(username)}`),
  setRole: (id, username, role) => request('PUT', `/api/v1/rooms/${id}/members/${enc(username)}/role`, { role }),
  changePassword: (oldPassword, newPassword) => request('PUT', '/api/v1/me/password', { old_password: oldPassword, new_password: newPassword }),
  logoutAll: () => request('POST', '/api/v1/auth/logout-all'),
  tokens: () => request('GET', '/api/v1/auth/tokens'),
  createToken: (label, ttlSeconds) => request('POST', '/api/v1/auth/tokens', { label, ttl_seconds: ttlSeconds }),
  revokeToken: (id) => request('DELETE', `/api/v1/auth/tokens/${enc(id)}`),
  setNotify: (id, level) => request('PUT', `/api/v1/rooms/${id}/notify`, { level }),

  messages: (id, { before, after, around, limit = 50 } = {}) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before) q.set('before', String(before));
    if (after) q.set('after', String(after));
    if (around) q.set('around', String(around));
    return request('GET', `/api/v1/rooms/${id}/messages?${q}`);
  },
  post: (id, text, replyTo) => request('POST', `/api/v1/rooms/${id}/messages`, replyTo ? { text, reply_to: replyTo } : { text }),
  edit: (id, seq, text) => request('PATCH', `/api/v1/rooms/${id}/messages/${seq}`, { text }),
  remove: (id, seq) => request('DELETE', `/api/v1/rooms/${id}/messages/${seq}`),
  react: (id, seq, emoji, add) => request(add ? 'PUT' : 'DELETE', `/api/v1/rooms/${id}/messages/${seq}/reactions/${enc(emoji)}`),
  read: (id, seq) => request('POST', `/api/v1/rooms/${id}/read`, { seq }),
  typing: (id) => request('POST', `/api/v1/rooms/${id}/typing`),
  presence: (id) => request('GET', `/api/v1/rooms/${id}/presence`),
  files: (id) => request('GET', `/api/v1/rooms/${id}/files?limit=1000`),
  /** The upload limit in bytes (the file listing carries it as max_size). */
  fileLimit: async (id) => (await request('GET', `/api/v1/rooms/${id}/files?limit=1`)).max_size ?? 0,
  upload: (id, file) => request('POST', `/api/v1/rooms/${id}/files?name=${enc(file.name || 'file')}`, file),
  /** Every word of q is a prefix ("welc" finds "welcome"): the server takes a trailing * as one. */
  search: (q, room) => {
    const prefixes = q.split(/\s+/).filter(Boolean).map((w) => (w.endsWith('*') ? w : `${w}*`)).join(' ');
    const p = new URLSearchParams({ q: prefixes, limit: '50' });
    if (room) p.set('room', String(room));
    return request('GET', `/api/v1/search?${p}`);
  },
};
