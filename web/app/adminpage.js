// The server-admin page (#/admin, for users with is_admin): users (disable,
// enable, reset password, sessions), rooms, the registration mode with
// invite links, and a live view of the server from /api/v1/admin/stats (the
// numbers /metrics exposes) with small charts drawn on canvases. Everything
// the server says is set as text.
import { api, request } from './api.js';
import { $, h, replace, formatTime } from './dom.js';

const enc = encodeURIComponent;
const admin = {
  users: () => request('GET', '/api/v1/admin/users'),
  setDisabled: (name, off) => request('POST', `/api/v1/admin/users/${enc(name)}/${off ? 'disable' : 'enable'}`),
  resetPassword: (name) => request('POST', `/api/v1/admin/users/${enc(name)}/reset-password`),
  sessions: (name) => request('GET', `/api/v1/admin/users/${enc(name)}/sessions`),
  endSessions: (name) => request('DELETE', `/api/v1/admin/users/${enc(name)}/sessions`),
  rooms: () => request('GET', '/api/v1/admin/rooms'),
  registration: () => request('GET', '/api/v1/auth/registration'),
  setRegistration: (mode) => request('PUT', '/api/v1/admin/registration', { mode }),
  invite: (ttlSeconds, uses) => request('POST', '/api/v1/admin/invites', { ttl_seconds: ttlSeconds, uses }),
  stats: () => request('GET', '/api/v1/admin/stats'),
};

/** How many stats samples the charts keep (one every 2 s: two minutes). */
export const HISTORY = 60;

/**
 * Adds a stats sample to the series (DOM-free; node tests run it). Each
 * series keeps its last HISTORY values.
 * @param {Map<string, number[]>} series
 * @param {Record<string, any>} stats
 */
export function addSample(series, stats) {
  const values = {
    connections: stats.connections, channels: stats.channels, 'messages/s': stats.messages_per_second,
    'slow-consumer disconnects': stats.slow_consumer_disconnects,
    websocket: stats.transports?.websocket, sse: stats.transports?.sse, poll: stats.transports?.poll,
  };
  for (const [k, v] of Object.entries(values)) {
    const list = series.get(k) ?? [];
    list.push(Number.isFinite(Number(v)) ? Number(v) : 0);
    if (list.length > HISTORY) list.splice(0, list.length - HISTORY);
    series.set(k, list);
  }
  return series;
}

export class AdminPage {
  constructor() {
    this.view = $('#admin-view');
    this.series = new Map();
    this.timer = 0;
  }

  async show() {
    this.view.hidden = false;
    $('#chat-view').hidden = true;
    document.title = 'Server admin · Sori';
    $('#admin-error').textContent = '';
    await Promise.all([this.#users(), this.#rooms(), this.#registration()]);
    this.#poll();
  }

  hide() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.view.hidden = true;
    $('#chat-view').hidden = false;
  }

  #error(err) { $('#admin-error').textContent = err.message; }

  async #users() {
    try {
      const { users = [] } = await admin.users();
      replace($('#admin-users'), users.map((u) => h('tr', { dataset: { user: u.username } },
        h('td', {}, u.username, u.is_admin ? h('span', { class: 'role', text: 'admin' }) : null),
        h('td', { text: u.disabled ? 'disabled' : u.online ? 'online' : 'offline' }),
        h('td', { text: formatTime(u.created_at) }),
        h('td', { class: 'admin-actions' },
          h('button', { type: 'button', onclick: () => this.#act(() => admin.setDisabled(u.username, !u.disabled)) }, u.disabled ? 'Enable' : 'Disable'),
          h('button', { type: 'button', onclick: async (e) => {
            try {
              const { password } = await admin.resetPassword(u.username);
              e.currentTarget.closest('td').append(h('input', { readonly: true, value: password, 'aria-label': `New password of ${u.username}`, class: 'token-value' }));
            } catch (err) { this.#error(err); }
          } }, 'Reset password'),
          h('button', { type: 'button', onclick: (e) => this.#sessions(e.currentTarget.closest('td'), u.username) }, 'Sessions')))));
    } catch (err) { this.#error(err); }
  }

  async #act(fn) {
    try { await fn(); await this.#users(); } catch (err) { this.#error(err); }
  }

  async #sessions(cell, name) {
    cell.querySelector('.sessions')?.remove();
    try {
      const res = await admin.sessions(name);
      cell.append(h('div', { class: 'sessions' },
        h('p', { class: 'hint', text: `${res.connections ?? 0} open connection(s)` }),
        h('ul', { class: 'plain-list' }, (res.sessions ?? []).map((x) => h('li', { text: `${x.kind} ${x.label ?? ''} since ${formatTime(x.created_at)}` }))),
        h('button', { type: 'button', class: 'danger', onclick: () => this.#act(() => admin.endSessions(name)) }, 'Sign out everywhere')));
    } catch (err) { this.#error(err); }
  }

  async #rooms() {
    try {
      const { rooms = [] } = await admin.rooms();
      replace($('#admin-rooms'), rooms.map((r) => h('tr', {},
        h('td', { text: r.title || `#${r.name ?? r.id}` }), h('td', { text: r.kind ?? '' }),
        h('td', { text: String(r.members ?? '') }), h('td', { text: String(r.last_seq ?? '') }))));
    } catch (err) { this.#error(err); }
  }

  async #registration() {
    const select = $('#admin-registration');
    try {
      select.value = (await admin.registration()).mode ?? 'open';
    } catch (err) { this.#error(err); }
    select.onchange = async () => {
      try { await admin.setRegistration(select.value); $('#admin-invite').hidden = select.value !== 'invite'; } catch (err) { this.#error(err); }
    };
    $('#admin-invite').hidden = select.value !== 'invite';
    $('#admin-invite').onsubmit = async (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      try {
        const inv = await admin.invite(Math.round(Number(f.elements.days.value) * 86400), Number(f.elements.uses.value));
        replace($('#admin-invite-link'), h('input', { readonly: true, value: inv.url ?? inv.code, 'aria-label': 'Invite link', class: 'token-value' }),
          h('span', { class: 'hint', text: ` expires ${formatTime(inv.expires_at)}` }));
      } catch (err) { this.#error(err); }
    };
  }

  async #poll() {
    if (this.view.hidden) return;
    try {
      addSample(this.series, await admin.stats());
      this.#charts();
    } catch (err) { this.#error(err); }
    this.timer = setTimeout(() => this.#poll(), 2000);
  }

  #charts() {
    const box = $('#admin-stats');
    for (const [name, values] of this.series) {
      let fig = box.querySelector(`[data-series="${CSS.escape(name)}"]`);
      if (!fig) {
        fig = h('figure', { class: 'chart', dataset: { series: name } },
          h('figcaption', {}, h('span', { class: 'chart-name', text: name }), h('strong', { class: 'chart-value' })),
          h('canvas', { width: 240, height: 60, role: 'img' }));
        box.append(fig);
      }
      const last = values[values.length - 1] ?? 0;
      fig.querySelector('.chart-value').textContent = ` ${Number.isInteger(last) ? last : last.toFixed(1)}`;
      const canvas = fig.querySelector('canvas');
      canvas.setAttribute('aria-label', `${name}: ${last} now, up to ${Math.max(...values)} in the last ${values.length * 2} s`);
      const g = canvas.getContext('2d');
      g.clearRect(0, 0, canvas.width, canvas.height);
      const max = Math.max(1, ...values);
      g.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#2456d6';
      g.lineWidth = 2;
      g.beginPath();
      values.forEach((v, i) => {
        const x = (i / (HISTORY - 1)) * (canvas.width - 2) + 1;
        const y = canvas.height - 2 - (v / max) * (canvas.height - 4);
        if (i) g.lineTo(x, y); else g.moveTo(x, y);
      });
      g.stroke();
    }
  }
}

export { api };
