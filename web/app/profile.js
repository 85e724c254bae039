// Profiles: display names and avatars (docs/api.md, "Profile"). The
// username stays the identity (mentions, links); the display name is only
// shown, next to it. Profiles come from member lists, from messages of the
// REST API and from /api/v1/me; live publications carry only the username,
// so views look the rest up here. Users without an avatar get their
// initials on a colour chosen from the username.
import { h } from './dom.js';

/**
 * Up to two initials of a name: the first letters of its first two words,
 * or the first two letters of a single word (emoji and other
 * non-letters are skipped), upper-cased; "?" when there are none.
 * @param {string} name
 */
export function initials(name) {
  const words = String(name ?? '').split(/[\s._-]+/).map((w) => [...w].filter((c) => /\p{L}|\p{N}/u.test(c))).filter((w) => w.length);
  if (!words.length) return '?';
  const out = words.length > 1 ? [words[0][0], words[1][0]] : words[0].slice(0, 2);
  return out.join('').toLocaleUpperCase();
}

/** A hue (0–359) derived from the username, so one user keeps one colour everywhere. */
export function hue(username) {
  let x = 0;
  for (const c of String(username ?? '')) x = (x * 31 + c.codePointAt(0)) % 360;
  return x;
}

/**
 * The known profiles, by username. Dispatches 'change' (detail: the
 * usernames whose name or avatar changed) when a source brings news.
 */
export class Profiles extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, {display_name: string, avatar_url: string}>} */
    this.byName = new Map();
  }

  /**
   * Takes profiles from a list of users, members or messages: objects
   * with username (or user), display_name and avatar_url. A field left
   * out keeps what is known (REST messages leave both out when unset, so
   * only a member list or /me clears them: pass complete = true).
   * @param {any[]} list
   * @param {{complete?: boolean}} [opts]
   */
  update(list, { complete = false } = {}) {
    const changed = [];
    for (const x of list ?? []) {
      const name = x?.username ?? x?.user;
      if (!name) continue;
      const old = this.byName.get(name) ?? { display_name: '', avatar_url: '' };
      const next = {
        display_name: typeof x.display_name === 'string' ? x.display_name : complete ? '' : old.display_name,
        avatar_url: typeof x.avatar_url === 'string' ? x.avatar_url : complete ? '' : old.avatar_url,
      };
      if (!this.byName.has(name) || next.display_name !== old.display_name || next.avatar_url !== old.avatar_url) {
        this.byName.set(name, next);
        changed.push(name);
      }
    }
    if (changed.length) this.dispatchEvent(new CustomEvent('change', { detail: changed }));
    return changed;
  }

  /** The name to show for username: its display name when set, else the username. */
  displayName(username) {
    return this.byName.get(username)?.display_name || username;
  }

  /** The avatar URL of username ('' when none is known). */
  avatarURL(username) {
    const url = this.byName.get(username)?.avatar_url ?? '';
    return url.startsWith('/') ? url : ''; // only same-origin paths (the CSP would refuse others anyway)
  }

  /**
   * An avatar element for username: the image, or the initials of the
   * shown name on the user's colour. Decorative (aria-hidden): the name is
   * always written next to it.
   * @param {string} username
   * @param {string} [size] a class: 'small' or ''
   */
  avatar(username, size = '') {
    const url = this.avatarURL(username);
    const cls = `avatar${size ? ` ${size}` : ''}`;
    if (url) return h('img', { class: cls, src: url, alt: '', 'aria-hidden': 'true', loading: 'lazy', dataset: { user: username } });
    const el = h('span', { class: `${cls} initials`, 'aria-hidden': 'true', dataset: { user: username }, text: initials(this.displayName(username)) });
    el.style.setProperty('--avatar-hue', String(hue(username))); // through the CSSOM: the CSP refuses style attributes
    return el;
  }
}
