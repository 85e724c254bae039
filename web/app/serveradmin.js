// The server-admin page (#/admin), for users with is_admin (docs/api.md,
// "Server administration"): a live view of the server from
// GET /api/v1/admin/stats (the numbers /metrics exposes) with small charts,
// the users (disable, enable, reset password, sessions), the rooms, the
// sign-up mode and invites. The server checks the right on every request;
// a part the server does not offer (404) says so instead of failing.
import { api, request } from './api.js';
import { $, h, replace, formatTime } from './dom.js';

const enc = encodeURIComponent;

export const adminAPI = {
  users: () => request('GET', '/api/v1/admin/users'),
  setDisabled: (name, disabled) => request('POST', `/api/v1/admin/users/${enc(name)}/${disabled ? 'disable' : 'enable'}`),
  resetPassword: (name) => request('POST', `/api/v1/admin/users/${enc(name)}/reset-password`),
  sessions: (name) => request('GET', `/api/v1/admin/users/${enc(name)}/sessions`),
  endSessions: (name) => request('DELETE', `/api/v1/admin/users/${enc(name)}/sessions`),
  endSession: (name, id) => request('DELETE', `/api/v1/admin/users/${enc(name)}/sessions/${enc(id)}`),
  rooms: (after = 0) => request('GET', `/api/v1/admin/rooms?after=${after}&limit=${ROOM_PAGE}`),
  stats: () => request('GET', '/api/v1/admin/stats'),
  setRegistration: (mode) => request('PUT', '/api/v1/admin/registration', { mode }),
  invites: () => request('GET', '/api/v1/admin/invites'),
  createInvite: (ttlSeconds, uses) => request('POST', '/api/v1/admin/invites', { ttl_seconds: ttlSeconds, uses }),
  revokeInvite: (id) => request('DELETE', `/api/v1/admin/invites/${enc(id)}`),
};

/** Rooms per page of the admin room list. */
const ROOM_PAGE = 100;

/** How many samples the charts keep (at one every POLL_MS: two minutes). */
export const HISTORY = 60;
const POLL_MS = 2000;

/**
 * The SVG path of a sparkline of values in a w×h box: the newest value at
 * the right edge, 0 at the bottom, the largest value (at least 1) at the top.
 * @param {number[]} values
 * @param {number} w
 * @param {number} h
 */
export function sparkPath(values, w, h) {
  if (!values.length) return '';
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (HISTORY - 1) : 0;
  const x0 = w - step * (values.length - 1);
  return values.map((v, i) => `${i ? 'L' : 'M'}${(x0 + i * step).toFixed(1)},${(h - (Math.max(0, v) / max) * h).toFixed(1)}`).join(' ');
}

/**
 * The invite link for code: the server's url when it gave one, else this
 * app's #/invite/CODE (the sign-up form reads it).
 * @param {{code: string, url?: string}} invite
 * @param {string} origin
 */
export function inviteLink(invite, origin) {
  if (typeof invite.url === 'string' && /^https?:\/\//.test(invite.url)) return invite.url;
  return `${origin}/#/invite/${enc(invite.code)}`;
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A labelled number with a sparkline of its recent values. */
function chart(label, values, format = (v) => String(v)) {
  const last = values.length ? values[values.length - 1] : 0;
  const box = svg('svg', { viewBox: '0 0 120 32', width: 120, height: 32, class: 'spark', 'aria-hidden': 'true' });
  box.append(svg('path', { d: sparkPath(values, 120, 30), fill: 'none', stroke: 'currentColor', 'stroke-width': 1.5 }));
  return h('div', { class: 'stat', dataset: { stat: label, values: values.join(' ') } },
    h('span', { class: 'stat-label', text: label }),
    h('span', { class: 'stat-value', text: format(last) }), box);
}

/** Missing on this server: a 404/405 from an endpoint the contract names but the server has not got yet. */
function unsupported(err) { return (err?.status === 404 && /^no API endpoint/.test(err.message)) || err?.status === 405; }

export class ServerAdmin {
  /** @param {{me: string, onError: (e: Error) => void}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.timer = 0;
    this.samples = { connections: [], messages_per_second: [], channels: [], slow_consumer_disconnects: [] };
    this.open = false;
    $('#admin-registration').addEventListener('change', (e) => this.#setRegistration(e.currentTarget));
    $('#invite-create-form').addEventListener('submit', (e) => { e.preventDefault(); this.#createInvite(e.currentTarget); });
    $('#admin-refresh-users').addEventListener('click', () => this.loadUsers());
  }

  /** Shows the page and starts the live view. */
  show() {
    if (this.open) return;
    this.open = true;
    document.title = 'Server admin · Sori';
    this.#poll();
    this.loadUsers();
    this.loadRooms();
    this.loadRegistration();
    this.loadInvites();
  }

  /** Stops the live view (the page is left). */
  hide() {
    this.open = false;
    clearTimeout(this.timer);
  }

  async #poll() {
    clearTimeout(this.timer);
    if (!this.open) return;
    try {
      const s = await adminAPI.stats();
      if (!this.open) return;
      for (const k of Object.keys(this.samples)) {
        this.samples[k].push(Number(s?.[k]) || 0);
        if (this.samples[k].length > HISTORY) this.samples[k].shift();
      }
      const t = s?.transports ?? {};
      replace($('#admin-stats'),
        chart('Connections', this.samples.connections),
        chart('Messages/s', this.samples.messages_per_second, (v) => (v < 10 ? v.toFixed(1) : String(Math.round(v)))),
        chart('Channels', this.samples.channels),
        chart('Slow-consumer disconnects', this.samples.slow_consumer_disconnects),
        h('div', { class: 'stat transports', dataset: { stat: 'Transports' } },
          h('span', { class: 'stat-label', text: 'Transports' }),
          h('span', { class: 'stat-value', text: `WebSocket ${t.websocket ?? 0} · SSE ${t.sse ?? 0} · long-poll ${t.poll ?? 0}` })));
      $('#admin-stats-time').textContent = `Updated ${formatTime(s?.time ?? Date.now())}`;
      $('#admin-stats').dataset.samples = String(this.samples.connections.length);
    } catch (err) {
      replace($('#admin-stats'), h('p', { class: 'error', text: err.status === 403 ? 'Only server administrators see this page.' : err.message }));
    }
    if (this.open) this.timer = setTimeout(() => this.#poll(), POLL_MS);
  }

  async loadUsers() {
    const list = $('#admin-users');
    try {
      const res = await adminAPI.users();
      replace(list, (res.users ?? []).map((u) => this.#userRow(u)));
    } catch (err) { replace(list, h('tr', {}, h('td', { colspan: 5, class: 'error', text: err.message }))); }
  }

  #userRow(u) {
    const me = u.username === this.ctx.me;
    const status = h('td', { class: 'user-status', text: `${u.disabled ? 'disabled' : 'active'}${u.online ? ', online' : ''}` });
    const detail = h('td', { class: 'user-detail', colspan: 5 });
    const detailRow = h('tr', { class: 'user-detail-row', hidden: true }, detail);
    const actions = h('td', { class: 'user-actions' },
      me ? null : h('button', { type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.username}`,
        onclick: (e) => this.#toggleDisabled(e.currentTarget, u) }, u.disabled ? 'Enable' : 'Disable'),
      me ? null : h('button', { type: 'button', 'aria-label': `Reset the password of ${u.username}`,
        onclick: (e) => this.#resetPassword(e.currentTarget, u, detailRow, detail) }, 'Reset password'),
      h('button', { type: 'button', 'aria-label': `Sessions of ${u.username}`, 'aria-expanded': 'false',
        onclick: (e) => this.#sessions(e.currentTarget, u, detailRow, detail) }, 'Sessions'));
    const row = h('tr', { dataset: { user: u.username } },
      h('th', { scope: 'row', text: u.username }),
      h('td', { text: u.is_admin ? 'admin' : '' }),
      h('td', { text: formatTime(u.created_at) }),
      status, actions);
    return [row, detailRow];
  }

  async #toggleDisabled(button, u) {
    button.disabled = true;
    try {
      await adminAPI.setDisabled(u.username, !u.disabled);
      await this.loadUsers();
      $('#admin-users-status').textContent = `${u.username} is ${u.disabled ? 'enabled' : 'disabled'}${u.disabled ? '' : ': signed out everywhere, and cannot log in'}.`;
    } catch (err) {
      button.disabled = false;
      $('#admin-users-status').textContent = unsupported(err) ? 'This server cannot disable users yet.' : err.message;
    }
  }

  async #resetPassword(button, u, row, cell) {
    if (!button.dataset.confirm) {
      button.dataset.confirm = '1';
      button.textContent = `Reset ${u.username}'s password?`;
      return;
    }
    delete button.dataset.confirm;
    button.textContent = 'Reset password';
    try {
      const res = await adminAPI.resetPassword(u.username);
      const out = h('input', { readonly: true, value: res.password, 'aria-label': `New password of ${u.username}`, class: 'token-value' });
      replace(cell, h('p', { role: 'status', text: `New password for ${u.username} (shown once; every session of theirs has ended):` }), out);
      row.hidden = false;
      out.select();
    } catch (err) { replace(cell, h('p', { class: 'error', text: err.message })); row.hidden = false; }
  }

  async #sessions(button, u, row, cell) {
    if (button.getAttribute('aria-expanded') === 'true') {
      button.setAttribute('aria-expanded', 'false');
      row.hidden = true;
      return;
    }
    button.setAttribute('aria-expanded', 'true');
    row.hidden = false;
    replace(cell, h('p', { class: 'hint', text: 'Loading…' }));
    try {
      const res = await adminAPI.sessions(u.username);
      const ss = res.sessions ?? [];
      replace(cell,
        h('p', { class: 'session-summary', text: `${ss.length} session${ss.length === 1 ? '' : 's'} and token${ss.length === 1 ? '' : 's'}, ${res.connections ?? 0} open connection${res.connections === 1 ? '' : 's'}` }),
        h('ul', { class: 'plain-list' }, ss.map((x) => h('li', { dataset: { session: x.id } },
          h('span', { text: `${x.kind}${x.label ? ` “${x.label}”` : ''}, since ${formatTime(x.created_at)}${x.expires_at ? `, until ${formatTime(x.expires_at)}` : ''} ` }),
          h('button', { type: 'button', 'aria-label': `End this ${x.kind} of ${u.username}`, onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              await adminAPI.endSession(u.username, x.id);
              button.setAttribute('aria-expanded', 'false');
              await this.#sessions(button, u, row, cell);
            } catch (err) { $('#admin-users-status').textContent = unsupported(err) ? 'This server cannot end one session yet.' : err.message; }
          } }, 'End')))),
        u.username === this.ctx.me ? null : h('button', { type: 'button', class: 'danger', onclick: async (e) => {
          e.currentTarget.disabled = true;
          try {
            await adminAPI.endSessions(u.username);
            button.setAttribute('aria-expanded', 'false');
            await this.#sessions(button, u, row, cell);
            $('#admin-users-status').textContent = `${u.username} is signed out everywhere.`;
          } catch (err) { $('#admin-users-status').textContent = err.message; }
        } }, `Sign ${u.username} out everywhere`));
    } catch (err) { replace(cell, h('p', { class: 'error', text: err.message })); }
  }

  /** Lists the rooms, a page at a time (after: the last room id shown; 0 starts over). */
  async loadRooms(after = 0) {
    const list = $('#admin-rooms');
    try {
      const res = await adminAPI.rooms(after);
      const rooms = res.rooms ?? [];
      list.querySelector('.more-rooms')?.remove();
      const rows = rooms.map((r) => h('tr', { dataset: { room: String(r.id) } },
        h('th', { scope: 'row', text: r.kind === 'direct' ? `direct ${r.id}` : `#${r.name}` }),
        h('td', { text: r.title ?? '' }),
        h('td', { text: r.kind ?? '' }),
        h('td', { class: 'num', text: String(r.members ?? r.member_count ?? '') }),
        h('td', { class: 'num', text: String(r.last_seq ?? '') }),
        h('td', { text: formatTime(r.created_at) })));
      if (rooms.length >= ROOM_PAGE) {
        const last = rooms[rooms.length - 1].id;
        rows.push(h('tr', { class: 'more-rooms' }, h('td', { colspan: 6 }, h('button', { type: 'button', onclick: () => this.loadRooms(last) }, 'More rooms'))));
      }
      if (after) list.append(...rows);
      else replace(list, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, class: 'hint', text: 'No rooms yet.' })));
    } catch (err) {
      replace(list, h('tr', {}, h('td', { colspan: 6, class: unsupported(err) ? 'hint' : 'error',
        text: unsupported(err) ? 'This server does not list rooms to administrators yet.' : err.message })));
    }
  }

  async loadRegistration() {
    const select = $('#admin-registration');
    try {
      const res = await api.registration();
      select.value = res?.mode ?? 'open';
      select.disabled = false;
    } catch (err) {
      select.disabled = true;
      $('#admin-registration-status').textContent = unsupported(err) ? 'This server has no sign-up modes yet: anyone may sign up.' : err.message;
    }
  }

  async #setRegistration(select) {
    const status = $('#admin-registration-status');
    status.textContent = '';
    try {
      const res = await adminAPI.setRegistration(select.value);
      select.value = res?.mode ?? select.value;
      status.textContent = { open: 'Anyone who reaches the server may sign up.', invite: 'Sign-up needs an invite.', closed: 'Sign-up is closed.' }[select.value] ?? '';
    } catch (err) {
      status.textContent = unsupported(err) ? 'This server cannot change the sign-up mode yet.' : err.message;
      this.loadRegistration();
    }
  }

  async loadInvites() {
    const list = $('#admin-invites');
    try {
      const res = await adminAPI.invites();
      const invites = res.invites ?? [];
      replace(list, invites.length ? invites.map((x) => h('li', { dataset: { invite: x.id } },
        h('span', { text: `${x.used ?? 0} of ${x.uses ?? 1} used, expires ${formatTime(x.expires_at)}${x.created_by ? `, by ${x.created_by}` : ''}` }),
        h('button', { type: 'button', 'aria-label': `Revoke the invite ${x.id}`, onclick: async (e) => {
          e.currentTarget.disabled = true;
          try { await adminAPI.revokeInvite(x.id); } catch (err) { $('#invite-error').textContent = err.message; }
          this.loadInvites();
        } }, 'Revoke'))) : h('li', { class: 'hint', text: 'No open invites.' }));
    } catch (err) {
      replace(list, h('li', { class: unsupported(err) ? 'hint' : 'error', text: unsupported(err) ? 'This server does not list invites yet.' : err.message }));
    }
  }

  async #createInvite(form) {
    const err = $('#invite-error');
    err.textContent = '';
    const hours = Number(form.elements.ttl.value);
    const uses = Number(form.elements.uses.value);
    if (!(hours > 0) || !(uses >= 1)) { err.textContent = 'An invite needs a lifetime and at least one use.'; return; }
    try {
      const inv = await adminAPI.createInvite(Math.round(hours * 3600), Math.round(uses));
      const link = inviteLink(inv, location.origin);
      const out = h('input', { readonly: true, value: link, 'aria-label': 'Invite link', class: 'token-value', dataset: { invite: inv.id ?? '' } });
      replace($('#invite-new'),
        h('p', { role: 'status', text: `Invite ${inv.code} created; it expires ${formatTime(inv.expires_at)}.` }), out,
        h('button', { type: 'button', onclick: async () => {
          try { await navigator.clipboard.writeText(link); $('#invite-copied').textContent = 'Link copied.'; } catch { out.select(); $('#invite-copied').textContent = 'Press Ctrl+C to copy the selected link.'; }
        } }, 'Copy link'), h('span', { id: 'invite-copied', class: 'hint', role: 'status' }));
      this.loadInvites();
    } catch (ex) { err.textContent = unsupported(ex) ? 'This server has no invites yet.' : ex.message; }
  }
}
