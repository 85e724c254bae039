// Administration in the app: a room's member list with roles (kick, promote,
// demote, within what the server allows: admins remove members, owners remove
// and change the role of anyone but themselves), and the account dialog
// (password, API tokens). The server checks every right again; the buttons
// only leave out what would be refused.
import { api } from './api.js';
import { $, h, replace, formatTime, formatSize } from './dom.js';

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
  /** @param {{me: string, profiles?: import('./profile.js').Profiles, onError: (e: Error) => void, refresh: () => void}} ctx */
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
        this.ctx.profiles?.avatar(x.username, 'small'),
        h('span', { class: 'member-name', text: this.#name(x.username) }),
        x.role !== 'member' ? h('span', { class: 'role', text: x.role }) : null,
        online ? h('span', { class: 'visually-hidden', text: ', online' }) : null,
        can.roles.length || can.kick ? h('span', { class: 'member-actions' },
          can.roles.map((r) => h('button', { type: 'button', 'aria-label': `Make ${x.username} ${r === 'admin' ? 'an admin' : r === 'owner' ? 'an owner' : 'a member'}`,
            onclick: () => this.#setRole(x.username, r) }, `Make ${r}`)),
          can.kick ? h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${x.username} from the room`,
            onclick: (e) => this.#kick(e.currentTarget, x.username) }, 'Remove') : null) : null);
    }));
  }

  /** "Alice Liddell (@alice)", or the username alone when no display name is set; "(you)" for me. */
  #name(username) {
    const shown = this.ctx.profiles?.displayName(username) ?? username;
    const name = shown === username ? username : `${shown} (@${username})`;
    return username === this.ctx.me ? `${name} (you)` : name;
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

/** The largest avatar the server takes (docs/api.md, "Profile"). */
export const MAX_AVATAR = 1 << 20;

/** The account dialog: profile (display name, avatar), change password, API tokens. */
export class AccountDialog {
  /**
   * changingPassword(promise) is told of each password change in flight
   * (it closes this page's connection before the new session arrives).
   * @param {{me: string, profiles: import('./profile.js').Profiles, hasProfiles: boolean, changingPassword?: (change: Promise<unknown>) => void}} ctx
   */
  constructor(ctx) {
    this.ctx = ctx;
    this.dialog = $('#account');
    // A server without profiles (its /me has no display_name) gets no profile section.
    $('#profile-title').parentElement.hidden = !ctx.hasProfiles;
    $('#profile-form').addEventListener('submit', (e) => { e.preventDefault(); this.#saveName(e.currentTarget); });
    $('#profile-avatar-file').addEventListener('change', (e) => this.#upload(e.currentTarget));
    $('#profile-avatar-remove').addEventListener('click', () => this.#removeAvatar());
    ctx.profiles.addEventListener('change', (e) => { if (e.detail.includes(ctx.me)) this.#renderProfile(); });
    $('#account-open').addEventListener('click', () => this.open());
    $('#account-close').addEventListener('click', () => this.dialog.close());
    $('#password-form').addEventListener('submit', (e) => { e.preventDefault(); this.#changePassword(e.currentTarget); });
    $('#token-form').addEventListener('submit', (e) => { e.preventDefault(); this.#createToken(e.currentTarget); });
  }

  open() {
    for (const el of this.dialog.querySelectorAll('.error, [role="status"]')) el.textContent = '';
    replace($('#token-secret'));
    this.#renderProfile();
    $('#profile-name').value = this.ctx.profiles.byName.get(this.ctx.me)?.display_name ?? '';
    this.dialog.showModal();
    this.#loadTokens();
  }

  #renderProfile() {
    replace($('#profile-avatar'), this.ctx.profiles.avatar(this.ctx.me, 'large'));
    $('#profile-avatar-remove').hidden = !this.ctx.profiles.avatarURL(this.ctx.me);
  }

  /** Shows the outcome of a profile change: the server answers with /me's shape. */
  #profileDone(res, text) {
    if (res?.user) this.ctx.profiles.update([res.user], { complete: true });
    $('#profile-status').textContent = text;
  }

  #profileReset() {
    $('#profile-error').textContent = '';
    $('#profile-status').textContent = '';
  }

  async #saveName(form) {
    this.#profileReset();
    const name = form.elements.display_name.value.trim();
    try {
      const res = await api.setDisplayName(name);
      this.#profileDone(res, name ? `Your display name is ${res?.user?.display_name ?? name}.` : 'Your display name is cleared: your username is shown.');
    } catch (ex) { $('#profile-error').textContent = ex.message; }
  }

  async #upload(input) {
    this.#profileReset();
    const file = input.files?.[0];
    if (!file) return;
    try {
      if (file.size > MAX_AVATAR) throw new Error(`${file.name} is ${formatSize(file.size)}: an avatar can be up to ${formatSize(MAX_AVATAR)}.`);
      this.#profileDone(await api.setAvatar(file), 'Your avatar is updated.');
    } catch (ex) {
      $('#profile-error').textContent = ex.message;
    } finally { input.value = ''; }
  }

  async #removeAvatar() {
    this.#profileReset();
    try { this.#profileDone(await api.removeAvatar(), 'Your avatar is removed.'); } catch (ex) { $('#profile-error').textContent = ex.message; }
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
      const change = api.changePassword(oldPw, newPw);
      this.ctx.changingPassword?.(change);
      await change;
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
