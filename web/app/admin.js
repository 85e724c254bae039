// Administration in the app: a room's member list with roles (kick, promote,
// demote, within what the server allows: admins remove members, owners remove
// and change the role of anyone but themselves), and the account dialog
// (password, API tokens). The server checks every right again; the buttons
// only leave out what would be refused.
import { api } from './api.js';
import { $, h, replace, formatTime } from './dom.js';

const RANK = { member: 0, admin: 1, owner: 2 };

/**
 * What me (with role myRole) may do to a member: {kick, roles} where roles
 * are the roles it may be given.
 * @param {string} myRole
 * @param {{username: string, role: string}} member
 * @param {string} me
 */
export function allowedActions(myRole, member, me) {
  if (member.username === me) return { kick: false, roles: [] };
  const mine = RANK[myRole] ?? 0;
  const theirs = RANK[member.role] ?? 0;
  return {
    kick: mine >= 1 && mine > theirs,
    roles: myRole === 'owner' ? ['member', 'admin', 'owner'].filter((r) => r !== member.role) : [],
  };
}

/** Renders the members of the open room into the Members panel. */
export class MembersPanel {
  /** @param {{me: string, onError: (e: Error) => void, refresh: () => void}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.model = null;
    this.list = $('#member-list');
    this.count = $('#member-count');
  }

  show(model) {
    this.model = model;
    this.render();
  }

  render() {
    const m = this.model;
    if (!m) return;
    const members = [...m.members].map(([username, x]) => ({ username, role: x.role }))
      .sort((a, b) => (RANK[b.role] - RANK[a.role]) || a.username.localeCompare(b.username));
    this.count.textContent = `${members.length} member${members.length === 1 ? '' : 's'}`;
    const myRole = m.members.get(this.ctx.me)?.role ?? 'member';
    const direct = m.info.kind === 'direct';
    replace(this.list, members.map((x) => {
      const can = direct ? { kick: false, roles: [] } : allowedActions(myRole, x, this.ctx.me);
      const online = m.online.has(x.username);
      return h('li', { class: 'member', dataset: { user: x.username } },
        h('span', { class: `online-dot${online ? '' : ' off'}`, 'aria-hidden': 'true', text: '●' }),
        h('span', { class: 'member-name', text: x.username === this.ctx.me ? `${x.username} (you)` : x.username }),
        x.role !== 'member' ? h('span', { class: 'role', text: x.role }) : null,
        online ? h('span', { class: 'visually-hidden', text: ', online' }) : null,
        can.roles.length || can.kick ? h('span', { class: 'member-actions' },
          can.roles.map((r) => h('button', { type: 'button', 'aria-label': `Make ${x.username} ${r === 'admin' ? 'an admin' : r === 'owner' ? 'an owner' : 'a member'}`,
            onclick: () => this.#setRole(x.username, r) }, `Make ${r}`)),
          can.kick ? h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${x.username} from the room`,
            onclick: (e) => this.#kick(e.currentTarget, x.username) }, 'Remove') : null) : null);
    }));
  }

  async #setRole(username, role) {
    try {
      await api.setRole(this.model.id, username, role);
      this.ctx.refresh();
    } catch (err) { this.ctx.onError(err); }
  }

  async #kick(button, username) {
    if (!button.dataset.confirm) {
      button.dataset.confirm = '1';
      button.textContent = `Remove ${username}?`;
      setTimeout(() => { if (button.isConnected) { delete button.dataset.confirm; button.textContent = 'Remove'; } }, 5000);
      return;
    }
    try {
      await api.kick(this.model.id, username);
      this.ctx.refresh();
    } catch (err) { this.ctx.onError(err); }
  }
}

/** The account dialog: change password, API tokens. */
export class AccountDialog {
  constructor() {
    this.dialog = $('#account');
    $('#account-open').addEventListener('click', () => this.open());
    $('#account-close').addEventListener('click', () => this.dialog.close());
    $('#password-form').addEventListener('submit', (e) => { e.preventDefault(); this.#changePassword(e.currentTarget); });
    $('#token-form').addEventListener('submit', (e) => { e.preventDefault(); this.#createToken(e.currentTarget); });
  }

  open() {
    for (const el of this.dialog.querySelectorAll('.error, [role="status"]')) el.textContent = '';
    replace($('#token-secret'));
    this.dialog.showModal();
    this.#loadTokens();
  }

  async #changePassword(form) {
    const err = $('#password-error');
    const ok = $('#password-status');
    err.textContent = '';
    ok.textContent = '';
    const oldPw = form.elements.old.value;
    const newPw = form.elements.new.value;
    if (newPw.length < 8) { err.textContent = 'The new password needs at least 8 characters.'; return; }
    if (newPw !== form.elements.again.value) { err.textContent = 'The two new passwords differ.'; return; }
    try {
      await api.changePassword(oldPw, newPw);
      form.reset();
      ok.textContent = 'Password changed. Your other sessions and API tokens were signed out.';
      this.#loadTokens();
    } catch (ex) {
      err.textContent = ex.status === 401 || ex.status === 403 ? 'The current password is wrong.' : ex.message;
    }
  }

  async #loadTokens() {
    const list = $('#token-list');
    try {
      const res = await api.tokens();
      const tokens = res.tokens ?? [];
      replace(list, tokens.length ? tokens.map((t) => h('li', {},
        h('span', { class: 'token-label', text: t.label || '(no label)' }),
        h('span', { class: 'hint', text: ` created ${formatTime(t.created_at)}${t.expires_at ? `, expires ${formatTime(t.expires_at)}` : ', never expires'}` }),
        h('button', { type: 'button', 'aria-label': `Revoke ${t.label || 'token'}`, onclick: async () => {
          try { await api.revokeToken(t.id); this.#loadTokens(); } catch (ex) { $('#token-error').textContent = ex.message; }
        } }, 'Revoke'))) : h('li', { class: 'hint', text: 'No API tokens.' }));
    } catch (ex) { replace(list, h('li', { class: 'error', text: ex.message })); }
  }

  async #createToken(form) {
    const err = $('#token-error');
    err.textContent = '';
    const label = form.elements.label.value.trim();
    const days = Number(form.elements.ttl.value);
    try {
      const t = await api.createToken(label, days > 0 ? Math.round(days * 86400) : 0);
      form.reset();
      const out = h('input', { readonly: true, value: t.token, 'aria-label': 'The new token', class: 'token-value' });
      replace($('#token-secret'), h('p', { role: 'status', text: 'Copy the token now: it is not shown again.' }), out);
      out.select();
      this.#loadTokens();
    } catch (ex) { err.textContent = ex.message; }
  }
}
