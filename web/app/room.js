// RoomView renders the open room: the timeline with scroll-back, message
// actions (reply, react, edit, delete), receipts, typing, who is online, the
// composer with attachments, and search results. Every user-provided string
// is set with textContent (see dom.js); nothing here parses HTML.
import { api } from './api.js';
import { $, h, replace, formatTime, formatSize, announce } from './dom.js';
import { PAGE } from './model.js';
import { formatBlocks, formatInline } from './format.js';
import { parse, plainText, searchTerms } from './markdown.js';
import { emojiPicker } from './emoji.js';
import { mentionAt, matchNames, completeMention } from './complete.js';
import { MembersPanel } from './admin.js';
import { ThreadPanel } from './thread.js';

/** Consecutive messages of one author closer than this share one header. */
const GROUP_GAP_MS = 5 * 60 * 1000;
const FILE_LINE = /^\/api\/v1\/files\/([A-Za-z0-9_-]{8,128})$/;
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** "Today", "Yesterday" or the date, for day dividers. */
function dayLabel(t) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (t.toDateString() === today.toDateString()) return 'Today';
  if (t.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return t.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: t.getFullYear() === today.getFullYear() ? undefined : 'numeric' });
}

export class RoomView {
  /** @param {{client: any, me: string, onError: (e: Error) => void, navigate: (id: number) => void, rooms: Map<number, any>}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.model = null;
    this.els = new Map(); // seq -> li
    this.reply = null; // message being replied to
    this.attachment = null; // File picked in the composer
    this.loadingOlder = false;
    this.lastTypingSent = 0;
    this.readTimer = 0;
    this.unsentRead = null; // {model, seq}: a read receipt waiting for readTimer
    this.typingTimer = 0;
    this.liveSub = null;
    this.listeners = [];
    this.mention = null; // the open @mention list: {at, found, active}
    this.newFrom = null; // seq after which the "New messages" line goes (null: none)
    this.linkedSeq = 0; // the message a permalink opened (highlighted until another one is)
    this.regroupQueued = false;
    this.dom = {
      title: $('#room-title'), topic: $('#room-topic'), timeline: $('#timeline'), list: $('#messages'),
      older: $('#load-older'), empty: $('#empty-room'), typing: $('#typing'), composer: $('#composer'),
      text: $('#composer-text'), file: $('#composer-file'), send: $('#composer-send'), error: $('#composer-error'),
      replyBox: $('#reply-preview'), replyText: $('#reply-text'), attachBox: $('#attachment-preview'),
      jump: $('#jump-latest'), online: $('#online'), onlineCount: $('#online-count'), onlineList: $('#online-list'),
      menu: $('#room-menu'), results: $('#search-results'), resultList: $('#search-list'), pending: $('#pending'),
    };
    this.threadPanel = new ThreadPanel(this);
    // A profile changed (a member list or a page of messages brought it): the open room shows it.
    ctx.profiles?.addEventListener('change', (e) => {
      const m = this.model;
      if (!m || this.profileRender) return;
      const names = new Set(e.detail);
      if (![...m.members.keys()].some((u) => names.has(u)) && ![...m.messages.values()].some((x) => names.has(x.user))) return;
      this.profileRender = true;
      queueMicrotask(() => {
        this.profileRender = false;
        if (this.model !== m) return;
        for (const msg of m.timeline()) this.#renderMessage(msg);
        this.membersPanel.render();
        this.threadPanel.render();
      });
    });
    this.membersPanel = new MembersPanel({ me: ctx.me, profiles: ctx.profiles, onError: (e) => ctx.onError(e), refresh: () => this.refreshMembers() });
    this.#wire();
  }

  #wire() {
    const d = this.dom;
    d.composer.addEventListener('submit', (e) => { e.preventDefault(); this.send(); });
    d.text.addEventListener('keydown', (e) => {
      if (this.#mentionKey(e)) return;
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
      if (e.key === 'Escape' && this.reply) { this.setReply(null); }
    });
    d.text.addEventListener('input', () => { this.#autosize(); this.#typing(); this.#updateMentions(); });
    d.text.addEventListener('click', () => this.#updateMentions());
    d.text.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== d.text) this.#closeMentions(); }, 150));
    d.file.addEventListener('change', () => this.pickFile(d.file.files?.[0] ?? null));
    const emojiButton = $('#composer-emoji');
    emojiButton.addEventListener('click', () => {
      const open = d.composer.querySelector('.emoji-picker');
      if (open) { open.remove(); emojiButton.setAttribute('aria-expanded', 'false'); return; }
      const close = () => { picker.remove(); emojiButton.setAttribute('aria-expanded', 'false'); d.text.focus(); };
      const picker = emojiPicker({
        label: 'Insert an emoji', onClose: close,
        onPick: (emoji) => {
          const t = d.text;
          const at = t.selectionStart ?? t.value.length;
          t.setRangeText(emoji, at, t.selectionEnd ?? at, 'end');
          close();
        },
      });
      emojiButton.setAttribute('aria-expanded', 'true');
      d.composer.querySelector('.composer-row').before(picker);
      picker.querySelector('input').focus();
    });
    $('#reply-cancel').addEventListener('click', () => { this.setReply(null); d.text.focus(); });
    d.older.addEventListener('click', () => this.loadOlder());
    d.jump.addEventListener('click', () => { this.scrollToBottom(); this.#maybeMarkRead(); d.text.focus(); });
    d.timeline.addEventListener('scroll', () => {
      if (this.#atBottom()) { d.jump.hidden = true; this.#maybeMarkRead(); }
    }, { passive: true });
    document.addEventListener('visibilitychange', () => this.#maybeMarkRead());
    window.addEventListener('focus', () => this.#maybeMarkRead());
    // Scroll-back: load older messages when the button scrolls into view.
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && this.model?.loaded) this.loadOlder();
    }, { root: d.timeline, rootMargin: '200px 0px 0px 0px' });
    this.observer.observe(d.older);
    setInterval(() => this.#renderTyping(), 1000);
  }

  /** Shows model's room (null: the empty welcome state). */
  async show(model) {
    this.hide();
    this.model = model;
    const d = this.dom;
    d.empty.hidden = Boolean(model);
    d.composer.hidden = !model;
    d.online.hidden = !model;
    d.menu.hidden = !model || model.info.kind === 'direct';
    $('#members-panel').hidden = !model;
    d.results.hidden = true;
    replace(d.list);
    replace(d.pending);
    this.els.clear();
    this.setReply(null);
    this.setAttachment(null);
    this.linkedSeq = 0;
    // The "New messages" line goes above the first message after what was read when the room opened.
    this.newFrom = model && model.unread > 0 ? model.lastRead : null;
    d.jump.hidden = true;
    d.older.hidden = true;
    if (!model) {
      d.title.textContent = 'Welcome';
      d.topic.textContent = '';
      document.title = 'Sori chat';
      return;
    }
    const on = (type, fn) => { model.addEventListener(type, fn); this.listeners.push([type, fn]); };
    on('message', (e) => this.#onMessage(e.detail.message));
    on('change', (e) => this.#renderMessage(e.detail.message));
    on('snapshot', (e) => this.#onSnapshot(e.detail));
    on('reloaded', () => this.#renderAll());
    on('receipts', () => { this.#renderReceipts(); this.membersPanel.render(); });
    on('online', () => { this.#renderOnline(); this.membersPanel.render(); });
    on('typing', () => this.#renderTyping());
    on('info', () => this.#renderHeader());
    on('members-changed', () => this.refreshMembers());
    on('files', () => this.#renderFileMessages());
    on('pending', () => { this.#renderPending(); this.threadPanel.renderPending(); });
    on('pins', () => this.#renderPins());
    on('thread', () => this.threadPanel.render());
    this.#renderHeader();
    this.#renderAll();
    this.#renderPending();
    this.membersPanel.show(model);
    this.#renderPins();
    void this.refreshPins();
    this.#renderOnline();
    this.#renderTyping();
    this.liveSub = this.ctx.client.subscribe(`chat:${model.id}#live`, { onPublication: (pub) => model.applySignal(pub.data) });
    this.refreshMembers();
    this.refreshPresence();
    void this.uploadLimit(model);
    if (!model.loaded) {
      try {
        const res = await api.messages(model.id, { limit: PAGE });
        if (this.model !== model) return;
        model.applySnapshot(res.messages ?? []);
      } catch (err) { this.ctx.onError(err); }
    } else {
      this.catchUp();
    }
    this.scrollToBottom();
    this.#maybeMarkRead();
  }

  hide() {
    this.#sendRead();
    this.threadPanel?.close();
    if (!this.model) return;
    for (const [type, fn] of this.listeners) this.model.removeEventListener(type, fn);
    this.listeners = [];
    this.liveSub?.unsubscribe().catch(() => { /* the connection is gone: nothing to undo */ });
    this.liveSub = null;
    this.model = null;
  }

  /** Fetches what a REST snapshot can add after the newest message we hold (after a reconnect). */
  async catchUp() {
    const model = this.model;
    if (!model?.loaded) return;
    try {
      for (let i = 0; i < 20; i++) {
        const after = model.newestSeq;
        const res = await api.messages(model.id, { after, limit: PAGE });
        if (this.model !== model) return;
        const list = res.messages ?? [];
        model.applySnapshot(list);
        if (list.length < PAGE) break;
      }
    } catch (err) { this.ctx.onError(err); }
  }

  async refreshMembers() {
    const model = this.model;
    if (!model) return;
    try {
      const res = await api.members(model.id);
      model.setMembers(res.members ?? []);
    } catch (err) {
      if (err.status === 403 || err.status === 404) this.ctx.onRemoved?.(model.id);
    }
  }

  async refreshPresence() {
    const model = this.model;
    if (!model) return;
    const sub = this.ctx.roomSub(model.id);
    try {
      const res = await sub.presence();
      const clients = Array.isArray(res) ? res : (res?.clients ?? Object.values(res?.presence ?? {}));
      model.setOnline(clients);
      return;
    } catch { /* not subscribed yet: fall back to REST */ }
    try {
      const res = await api.presence(model.id);
      model.setOnline((res.users ?? []).map((user) => ({ user, client: user })));
    } catch { /* best effort */ }
  }

  // Rendering.

  #renderHeader() {
    const m = this.model;
    if (!m) return;
    this.dom.title.textContent = m.displayName;
    this.dom.topic.textContent = m.info.topic ?? '';
    this.renderTitle();
    $('#notify-level').value = m.notify;
    $('#notify-level').parentElement.hidden = !('notify' in m.info); // a server without notification levels
    const topicInput = $('#topic-input');
    if (document.activeElement !== topicInput) topicInput.value = m.info.topic ?? '';
  }

  /** The tab title: the open room, and the unread messages of every room (a background tab shows them all). */
  renderTitle() {
    const m = this.model;
    let unread = 0;
    for (const r of this.ctx.rooms.values()) unread += r.unread;
    document.title = `${unread ? `(${unread}) ` : ''}${m ? m.displayName : 'Sori chat'} · Sori`;
  }

  #renderAll() {
    const m = this.model;
    this.els.clear();
    replace(this.dom.list, m.timeline().map((msg) => {
      const li = this.#build(msg);
      this.els.set(msg.seq, li);
      return li;
    }));
    this.dom.older.hidden = !m.loaded || !m.hasOlder;
    this.#renderGap();
    this.#regroup();
    this.#renderReceipts();
  }

  /**
   * The "Load newer messages" button where messages may be missing: after
   * the page a far permalink jumped to, before the recent ones (model.gap).
   */
  #renderGap() {
    this.dom.list.querySelector(':scope > .gap')?.remove();
    const gap = this.model?.gap;
    if (!gap) return;
    let next = null;
    for (const el of this.dom.list.children) { if (Number(el.dataset.seq) >= gap.before) { next = el; break; } }
    this.dom.list.insertBefore(h('li', { class: 'gap' },
      h('button', { type: 'button', onclick: (e) => this.loadNewer(e.currentTarget) }, 'Load newer messages')), next);
  }

  /** Loads the page after the gap's start; the gap closes when it reaches the recent messages. */
  async loadNewer(button) {
    const model = this.model;
    if (!model?.gap || this.loadingNewer) return;
    this.loadingNewer = true;
    if (button) button.disabled = true;
    try {
      const res = await api.messages(model.id, { after: model.gap.after, limit: PAGE });
      if (this.model === model) model.fillGap(res.messages ?? []);
    } catch (err) { this.ctx.onError(err); } finally {
      this.loadingNewer = false;
      if (button) button.disabled = false;
    }
  }

  #onSnapshot({ added, seqs }) {
    const m = this.model;
    const wasBottom = this.#atBottom();
    const before = this.dom.timeline.scrollHeight;
    const top = this.dom.timeline.scrollTop;
    const oldFirst = this.dom.list.firstElementChild ? Number(this.dom.list.firstElementChild.dataset.seq) : Infinity;
    for (const seq of seqs) this.#renderMessage(m.messages.get(seq));
    this.dom.older.hidden = !m.hasOlder;
    this.#renderGap();
    this.#renderReceipts();
    const prepended = added.some((x) => x.seq < oldFirst);
    if (prepended && !wasBottom) {
      this.dom.timeline.scrollTop = top + (this.dom.timeline.scrollHeight - before); // keep the reader's place
    } else if (wasBottom) {
      this.scrollToBottom();
    }
  }

  #onMessage(msg) {
    if (msg.thread) { this.#renderMessage(msg); return; } // the thread panel shows it; the root counts it
    const wasBottom = this.#atBottom();
    this.#renderMessage(msg);
    this.#renderReceipts();
    this.#renderTyping();
    const mine = msg.user === this.ctx.me;
    // Arriving unseen (tab hidden or scrolled up): the line marks where the unseen ones begin.
    if (!mine && this.newFrom === null && (!wasBottom || document.visibilityState !== 'visible')) {
      this.newFrom = msg.seq - 1;
      this.#scheduleRegroup();
    }
    if (!mine) announce(`${msg.user}: ${plainText(parse(this.#body(msg.text).rest)) || 'sent a file'}`);
    if (wasBottom || mine) {
      this.scrollToBottom();
      this.#maybeMarkRead();
    } else {
      this.dom.jump.hidden = false;
    }
  }

  /**
   * A message's author: avatar, then the display name with the username
   * after it when they differ (the username is what @mentions use).
   */
  #author(user) {
    const p = this.ctx.profiles;
    const shown = p ? p.displayName(user) : user;
    return h('span', { class: 'msg-user' }, p ? p.avatar(user, 'small') : null,
      h('span', { class: 'msg-name', text: shown }),
      shown !== user ? h('span', { class: 'msg-username', text: `@${user}` }) : null);
  }

  /** Inserts or replaces the element of msg, in seq order. */
  #renderMessage(msg) {
    if (!msg) return;
    if (msg.thread) { this.threadPanel.render(); return; } // replies live in their thread
    const old = this.els.get(msg.seq);
    const li = this.#build(msg);
    if (old) {
      const hadFocus = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      old.replaceWith(li);
      if (hadFocus) li.querySelector(`[data-action="${hadFocus}"]`)?.focus();
    } else {
      let next = null;
      for (const el of this.dom.list.children) { if (Number(el.dataset.seq) > msg.seq) { next = el; break; } }
      this.dom.list.insertBefore(li, next);
    }
    this.els.set(msg.seq, li);
    this.#scheduleRegroup();
    // Replies quoting this message show its new text.
    for (const q of this.dom.list.querySelectorAll(`.msg-reply[data-target="${msg.seq}"]`)) {
      q.replaceWith(this.#quote(msg.seq));
    }
  }

  #scheduleRegroup() {
    if (this.regroupQueued) return;
    this.regroupQueued = true;
    queueMicrotask(() => { this.regroupQueued = false; this.#regroup(); });
  }

  /**
   * One pass over the timeline in order: a message continues its
   * predecessor's group (class "cont": no repeated name) when the same author
   * wrote it within GROUP_GAP_MS on the same day; the first message of each
   * day carries a day divider, and the first unread one when the room was
   * opened carries the "New messages" line.
   */
  #regroup() {
    let prev = null;
    let prevDay = '';
    let newShown = false;
    for (const li of this.dom.list.children) {
      if (li.classList.contains('gap')) { prev = null; prevDay = ''; continue; } // no run or day spans missing messages
      const msg = this.model?.messages.get(Number(li.dataset.seq));
      if (!msg) continue;
      const t = new Date(msg.created_at);
      const day = Number.isNaN(t.getTime()) ? prevDay : t.toDateString();
      const newDay = day !== prevDay;
      const cont = Boolean(prev) && !newDay && prev.user === msg.user && !msg.reply_to &&
        t - new Date(prev.created_at) < GROUP_GAP_MS;
      li.classList.toggle('cont', cont);
      const isNew = !newShown && this.newFrom !== null && msg.seq > this.newFrom && msg.user !== this.ctx.me;
      if (isNew) newShown = true;
      this.#marker(li, 'day-divider', newDay ? dayLabel(t) : '');
      this.#marker(li, 'new-line', isNew ? 'New messages' : '');
      prev = msg;
      prevDay = day;
    }
  }

  /** Puts (or removes, for empty text) a separator line of kind at the top of li. */
  #marker(li, kind, text) {
    const old = li.querySelector(`:scope > .${kind}`);
    if (!text) { old?.remove(); return; }
    if (old?.textContent === text) return;
    const el = h('div', { class: `separator ${kind}`, role: 'separator', text });
    if (old) old.replaceWith(el);
    else if (kind === 'day-divider') li.prepend(el);
    else {
      const day = li.querySelector(':scope > .day-divider');
      if (day) day.after(el); else li.prepend(el);
    }
  }

  #build(msg) {
    const mine = msg.user === this.ctx.me;
    const li = h('li', { class: `msg${mine ? ' mine' : ''}${msg.deleted ? ' deleted' : ''}${msg.seq === this.linkedSeq ? ' linked' : ''}`, id: `msg-${msg.seq}`,
      dataset: { seq: String(msg.seq), user: msg.user } });
    const time = h('time', { class: 'msg-time', datetime: msg.created_at ?? '', text: formatTime(msg.created_at) });
    li.append(h('div', { class: 'msg-head' },
      this.#author(msg.user), time,
      msg.edited && !msg.deleted ? h('span', { class: 'msg-edited', text: '(edited)' }) : null,
      this.model?.pins.has(msg.seq) ? h('span', { class: 'msg-pinned', title: `Pinned by ${this.model.pins.get(msg.seq).pinned_by}`, text: '📌 pinned' }) : null));
    if (msg.reply_to) li.append(this.#quote(msg.reply_to));
    if (msg.deleted) {
      li.append(h('p', { class: 'msg-body', text: 'This message was deleted.' }));
    } else {
      const { body, files } = this.#body(msg.text);
      if (body) li.append(body);
      for (const id of files) li.append(this.#attachment(id));
      if (msg.reactions.size) li.append(this.#reactions(msg));
      if (msg.thread_replies) {
        const unread = this.model.threadUnread(msg.seq);
        li.append(h('button', { type: 'button', class: `thread-summary${unread ? ' unread' : ''}`, dataset: { action: 'open-thread' },
          onclick: () => this.openThread(msg.seq) },
        `${msg.thread_replies} repl${msg.thread_replies === 1 ? 'y' : 'ies'}`, unread ? h('span', { class: 'new-dot', text: ' · new' }) : null));
      }
      li.append(this.#actions(msg, mine));
    }
    li.append(h('p', { class: 'receipts' }));
    return li;
  }

  /**
   * Splits message text into its Markdown body (rendered by format.js) and
   * file references (lines that are /api/v1/files/<id>).
   */
  #body(text) {
    const files = [];
    const lines = [];
    for (const line of (text ?? '').split('\n')) {
      const f = line.trim().match(FILE_LINE);
      if (f) files.push(f[1]);
      else lines.push(line);
    }
    const rest = lines.join('\n').trim();
    return { body: rest ? h('div', { class: 'msg-body' }, formatBlocks(rest, { me: this.ctx.me })) : null, files, rest };
  }

  #attachment(id) {
    const url = `/api/v1/files/${encodeURIComponent(id)}`;
    const model = this.model;
    const meta = model.files.get(id);
    if (!meta) void model.wantFile(id, () => api.files(model.id));
    const name = meta?.name ?? 'attachment';
    if (meta && IMAGE_TYPES.has(meta.content_type)) {
      return h('div', { class: 'attachment', dataset: { named: '1' } },
        h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' },
          h('img', { src: url, alt: name, loading: 'lazy', decoding: 'async' })));
    }
    return h('div', { class: 'attachment', dataset: meta ? { named: '1' } : {} },
      h('a', { class: 'file-card', href: url, download: name, rel: 'noopener noreferrer' },
        h('span', { 'aria-hidden': 'true', text: '📄' }), h('span', { class: 'file-name', text: name }),
        meta ? h('span', { class: 'hint', text: formatSize(meta.size) }) : null));
  }

  /** Re-renders the messages with attachments once file metadata arrived. */
  #renderFileMessages() {
    const model = this.model;
    if (!model) return;
    for (const msg of model.messages.values()) {
      if (msg.deleted) continue;
      const { files } = this.#body(msg.text);
      // Only those still showing a nameless card: a re-render resets an image's loading.
      if (files.some((id) => model.files.has(id)) && this.els.get(msg.seq)?.querySelector('.attachment:not([data-named])')) {
        this.#renderMessage(msg);
      }
    }
    this.#renderReceipts();
  }

  #quote(seq) {
    const target = this.model.messages.get(seq);
    let text = [`Reply to an earlier message (#${seq})`];
    if (target) text = [`${target.user}: `, target.deleted ? 'deleted message' : formatInline(this.#firstLine(target.text), { me: this.ctx.me })];
    return h('div', { class: 'msg-reply', dataset: { target: String(seq) } },
      h('span', { 'aria-hidden': 'true', text: '↪ ' }), h('span', { class: 'visually-hidden', text: 'In reply to ' }), text);
  }

  /** The first line of a message's text for previews ("file" for a file alone). */
  #firstLine(text) {
    return (text ?? '').split('\n').find((l) => l.trim() && !FILE_LINE.test(l.trim())) ?? 'file';
  }

  #reactions(msg) {
    const box = h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' });
    for (const [emoji, users] of msg.reactions) {
      const mine = users.has(this.ctx.me);
      const names = [...users].join(', ');
      box.append(h('button', { type: 'button', 'aria-pressed': mine ? 'true' : 'false', title: names,
        'aria-label': `${emoji} ${users.size}, from ${names}. ${mine ? 'Remove your reaction' : 'React too'}`,
        onclick: () => this.react(msg, emoji, !mine) }, `${emoji} ${users.size}`));
    }
    return box;
  }

  #actions(msg, mine) {
    const bar = h('div', { class: 'msg-actions', role: 'toolbar', 'aria-label': `Actions for ${msg.user}'s message` });
    bar.append(h('button', { type: 'button', dataset: { action: 'reply' }, onclick: () => { this.setReply(msg); this.dom.text.focus(); } }, 'Reply'));
    bar.append(h('button', { type: 'button', dataset: { action: 'react' }, 'aria-expanded': 'false', onclick: (e) => this.#togglePicker(e.currentTarget, msg) }, 'React'));
    if (!msg.thread) bar.append(h('button', { type: 'button', dataset: { action: 'thread' }, onclick: () => this.openThread(msg.seq) }, 'Thread'));
    const pinned = this.model.pins.has(msg.seq);
    bar.append(h('button', { type: 'button', dataset: { action: 'pin' }, onclick: () => this.pin(msg, !pinned) }, pinned ? 'Unpin' : 'Pin'));
    bar.append(h('button', { type: 'button', dataset: { action: 'link' }, onclick: () => this.copyLink(msg) }, 'Copy link'));
    if (mine) {
      bar.append(h('button', { type: 'button', dataset: { action: 'edit' }, onclick: () => this.#startEdit(msg) }, 'Edit'));
      bar.append(h('button', { type: 'button', dataset: { action: 'delete' }, onclick: (e) => this.#confirmDelete(e.currentTarget, msg) }, 'Delete'));
    }
    return bar;
  }

  #togglePicker(button, msg) {
    const li = this.els.get(msg.seq);
    const open = li.querySelector('.emoji-picker');
    if (open) { open.remove(); button.setAttribute('aria-expanded', 'false'); return; }
    button.setAttribute('aria-expanded', 'true');
    const close = () => { picker.remove(); button.setAttribute('aria-expanded', 'false'); button.focus(); };
    const mine = (emoji) => Boolean(this.model.messages.get(msg.seq)?.reactions.get(emoji)?.has(this.ctx.me));
    const picker = emojiPicker({
      label: 'Pick a reaction', pressed: mine, onClose: close,
      onPick: (emoji) => { picker.remove(); this.react(msg, emoji, !mine(emoji)); },
    });
    li.querySelector('.msg-actions').after(picker);
    picker.querySelector('input').focus();
  }

  // @mention completion: a listbox under the composer while "@prefix" is
  // being typed; ↑/↓ move, Enter or Tab picks, Escape closes.

  #updateMentions() {
    const t = this.dom.text;
    const at = this.model ? mentionAt(t.value, t.selectionStart ?? t.value.length) : null;
    if (!at) { this.#closeMentions(); return; }
    const names = [...this.model.members.keys()].filter((n) => n !== this.ctx.me);
    const role = this.model.members.get(this.ctx.me)?.role;
    if (this.model.info.kind !== 'direct' && (role === 'owner' || role === 'admin')) names.push('room');
    const found = matchNames(names, at.prefix);
    if (!found.length) { this.#closeMentions(); return; }
    this.mention = { at, found, active: 0 };
    this.#renderMentions();
  }

  #renderMentions() {
    const list = $('#mention-list');
    const { found, active } = this.mention;
    replace(list, found.map((name, i) => h('li', { id: `mention-opt-${i}`, role: 'option', 'aria-selected': i === active ? 'true' : 'false',
      onmousedown: (e) => { e.preventDefault(); this.#pickMention(name); } },
    `@${name}`, name === 'room' ? h('span', { class: 'hint', text: ' everyone here' }) : null)));
    list.hidden = false;
    this.dom.text.setAttribute('aria-expanded', 'true');
    this.dom.text.setAttribute('aria-activedescendant', `mention-opt-${active}`);
  }

  #closeMentions() {
    this.mention = null;
    $('#mention-list').hidden = true;
    this.dom.text.setAttribute('aria-expanded', 'false');
    this.dom.text.removeAttribute('aria-activedescendant');
  }

  #pickMention(name) {
    const t = this.dom.text;
    const { text, caret } = completeMention(t.value, this.mention.at, name);
    t.value = text;
    t.setSelectionRange(caret, caret);
    this.#closeMentions();
    t.focus();
  }

  /** Handles a key while the list is open; true when it was the list's. */
  #mentionKey(e) {
    if (!this.mention || e.isComposing) return false;
    const n = this.mention.found.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      this.mention.active = (this.mention.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.#renderMentions();
    } else if (e.key === 'Enter' && this.mention.found[this.mention.active].toLowerCase() === this.mention.at.prefix.toLowerCase()) {
      this.#closeMentions(); // the name is typed out already: Enter sends
      return false;
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      this.#pickMention(this.mention.found[this.mention.active]);
    } else if (e.key === 'Escape') {
      this.#closeMentions();
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  #confirmDelete(button, msg) {
    if (button.dataset.confirm) {
      this.remove(msg);
      return;
    }
    button.dataset.confirm = '1';
    button.textContent = 'Confirm delete';
    button.classList.add('danger');
    setTimeout(() => {
      if (!button.isConnected) return;
      delete button.dataset.confirm;
      button.textContent = 'Delete';
    }, 5000);
  }

  #startEdit(msg) {
    const li = this.els.get(msg.seq);
    const body = li.querySelector('.msg-body');
    const { files } = this.#body(msg.text);
    const textOnly = msg.text.split('\n').filter((l) => !FILE_LINE.test(l.trim())).join('\n');
    const area = h('textarea', { rows: 2, maxlength: 4000, 'aria-label': 'Edit message' });
    area.value = textOnly;
    const cancel = () => this.#renderMessage(this.model.messages.get(msg.seq));
    const save = async () => {
      const fileLines = files.map((id) => `/api/v1/files/${id}`);
      const text = [area.value.trim(), ...fileLines].filter(Boolean).join('\n');
      if (!text || text === msg.text) { cancel(); return; }
      try { await api.edit(this.model.id, msg.seq, text); } catch (err) { this.ctx.onError(err); return; }
      cancel();
      this.dom.text.focus();
    };
    const form = h('form', { class: 'edit-form', onsubmit: (e) => { e.preventDefault(); save(); } },
      area, h('span', { class: 'row' },
        h('button', { type: 'button', onclick: () => { cancel(); this.dom.text.focus(); } }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary' }, 'Save')));
    area.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
      if (e.key === 'Escape') { e.preventDefault(); cancel(); this.dom.text.focus(); }
    });
    if (body) body.replaceWith(form); else li.querySelector('.msg-head').after(form);
    li.querySelector('.msg-actions')?.remove();
    area.focus();
  }

  /**
   * The outbox's messages for this room below the timeline: waiting for the
   * connection, being sent, refused (with Retry and Discard), or sent and not
   * yet back from the server. model.pendingVisible() leaves out those the
   * timeline shows, so a message is never shown twice.
   */
  #renderPending() {
    const m = this.model;
    if (!m) return;
    const wasBottom = this.#atBottom();
    replace(this.dom.pending, m.pendingVisible().filter((it) => !it.data?.thread).map((item) => this.pendingElement(item)));
    if (wasBottom) this.scrollToBottom();
  }

  /** One outbox item as a pending message element. */
  pendingElement(item) {
    const online = this.ctx.isOnline();
    const { body, files } = this.#body(item.data.text);
    const status = item.state === 'failed' ? `Not sent: ${item.error?.message ?? 'refused'}`
      : item.state === 'sent' ? 'Sent' : item.state === 'sending' ? 'Sending…' : online ? 'Queued' : 'Waiting for the connection…';
    return h('li', { class: `msg mine pending${item.state === 'failed' ? ' failed' : ''}`, dataset: { clientId: item.id, state: item.state } },
      h('div', { class: 'msg-head' }, this.#author(this.ctx.me),
        h('span', { class: 'msg-status', role: item.state === 'failed' ? 'alert' : null, text: status })),
      body, files.length ? h('p', { class: 'hint', text: '📎 file' }) : null,
      item.state === 'failed' ? h('span', { class: 'row' },
        h('button', { type: 'button', onclick: () => this.ctx.outbox.retry(item.id) }, 'Retry'),
        h('button', { type: 'button', onclick: () => this.ctx.outbox.discard(item.id) }, 'Discard')) : null);
  }

  /** Re-renders the pending messages' status after a connection change. */
  connectionChanged() { this.#renderPending(); this.threadPanel.renderPending(); }

  #renderReceipts() {
    const m = this.model;
    if (!m) return;
    const by = m.receiptsBySeq();
    for (const [seq, li] of this.els) {
      const users = by.get(seq);
      const p = li.querySelector('.receipts');
      if (p) p.textContent = users ? `Seen by ${users.sort().join(', ')}` : '';
    }
  }

  #renderOnline() {
    const m = this.model;
    if (!m) return;
    const users = [...m.online.keys()].sort();
    this.dom.onlineCount.textContent = `${users.length} online`;
    replace(this.dom.onlineList, users.map((u) => h('li', {},
      h('span', { class: 'online-dot', 'aria-hidden': 'true', text: '●' }), u === this.ctx.me ? `${u} (you)` : u)));
  }

  #renderTyping() {
    const m = this.model;
    if (!m) { this.dom.typing.textContent = ''; return; }
    const users = m.typingUsers();
    const text = users.length === 0 ? '' : users.length === 1 ? `${users[0]} is typing…`
      : users.length === 2 ? `${users[0]} and ${users[1]} are typing…` : 'Several people are typing…';
    if (this.dom.typing.textContent !== text) this.dom.typing.textContent = text;
  }

  // Actions.

  setReply(msg) {
    this.reply = msg;
    this.dom.replyBox.hidden = !msg;
    replace(this.dom.replyText, msg ? [`Replying to ${msg.user}: `, formatInline(this.#firstLine(msg.text), { me: this.ctx.me })] : []);
  }

  /** The room's upload limit in bytes (0 while unknown), fetched once per room. */
  async uploadLimit(model = this.model) {
    if (!model) return 0;
    if (!model.maxFileSize) {
      try { model.maxFileSize = await api.fileLimit(model.id); } catch { /* checked by the server on upload */ }
    }
    if (model === this.model && model.maxFileSize) {
      $('label[for="composer-file"]').title = `Attach a file (up to ${formatSize(model.maxFileSize)})`;
    }
    return model.maxFileSize;
  }

  /** A file picked in the composer: refused at once when over the limit, else attached. */
  async pickFile(file) {
    const d = this.dom;
    d.error.textContent = '';
    if (!file) { this.setAttachment(null); return; }
    const limit = await this.uploadLimit();
    if (limit && file.size > limit) {
      this.setAttachment(null);
      d.error.textContent = `${file.name} is ${formatSize(file.size)}: files can be up to ${formatSize(limit)}.`;
      return;
    }
    this.setAttachment(file);
  }

  setAttachment(file) {
    this.attachment = file;
    const box = this.dom.attachBox;
    if (box.dataset.url) URL.revokeObjectURL(box.dataset.url);
    delete box.dataset.url;
    replace(box);
    box.hidden = !file;
    if (!file) { this.dom.file.value = ''; return; }
    if (IMAGE_TYPES.has(file.type)) {
      const url = URL.createObjectURL(file);
      box.dataset.url = url;
      box.append(h('img', { src: url, alt: `Preview of ${file.name}` }));
    }
    const limit = this.model?.maxFileSize;
    box.append(h('span', { text: `${file.name} (${formatSize(file.size)}${limit ? ` of up to ${formatSize(limit)}` : ''})` }),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': `Remove ${file.name}`, onclick: () => { this.setAttachment(null); this.dom.text.focus(); } }, '✕'));
  }

  /**
   * Sends the composer's message through the outbox (SDK Outbox): queued
   * and persisted at once, shown as pending, sent now or on reconnect, with a
   * client id the server deduplicates by. A file is uploaded first (that
   * needs the server); its message then goes through the outbox as well.
   */
  async send() {
    const model = this.model;
    if (!model || this.sending) return;
    const d = this.dom;
    let text = d.text.value.trim();
    const file = this.attachment;
    if (!text && !file) return;
    this.sending = true;
    d.send.disabled = true;
    d.error.textContent = '';
    try {
      if (file) {
        const meta = await api.upload(model.id, file);
        model.addFile(meta);
        text = [text, `/api/v1/files/${meta.id}`].filter(Boolean).join('\n');
      }
      const data = { type: 'message', text };
      if (this.reply?.seq) data.reply_to = this.reply.seq;
      const { sent } = this.ctx.outbox.publish(`chat:${model.id}`, data);
      sent.catch((err) => { if (err?.code === 'outbox_full') d.error.textContent = `Not sent: ${err.message}`; });
      this.lastTypingSent = 0; // the next keystroke is news again
      this.#closeMentions();
      d.text.value = '';
      this.#autosize();
      this.setReply(null);
      this.setAttachment(null);
      this.scrollToBottom();
    } catch (err) {
      const limit = err.status === 413 ? await this.uploadLimit(model) : 0;
      d.error.textContent = limit && file
        ? `Not sent: ${file.name} is ${formatSize(file.size)}; files can be up to ${formatSize(limit)}.`
        : `Not sent: ${err.message}`;
    } finally {
      this.sending = false;
      d.send.disabled = false;
      d.text.focus();
    }
  }

  /** The permalink of a message: #/rooms/{id}/messages/{seq}. */
  permalink(msg) {
    return `${location.origin}${location.pathname}#/rooms/${this.model.id}/messages/${msg.seq}`;
  }

  async copyLink(msg) {
    const url = this.permalink(msg);
    try {
      await navigator.clipboard.writeText(url);
      announce('Link copied');
      this.dom.error.textContent = '';
    } catch {
      this.dom.error.textContent = `Link: ${url}`; // no clipboard access: show it to copy by hand
    }
  }

  async pin(msg, on) {
    try { await api.pin(this.model.id, msg.seq, on); } catch (err) { this.ctx.onError(err); }
  }

  async refreshPins() {
    const model = this.model;
    if (!model || !this.ctx.hasDepth()) return;
    try {
      const res = await api.pins(model.id);
      if (this.model === model) model.setPins(res.pins ?? []);
    } catch (err) {
      // A server without pins and threads (404/405): their buttons go.
      if (err.status === 404 || err.status === 405) document.body.classList.add('no-threads');
    }
  }

  #renderPins() {
    const m = this.model;
    if (!m) return;
    const box = $('#pins');
    box.hidden = m.pins.size === 0;
    $('#pin-count').textContent = `📌 ${m.pins.size}`;
    $('#pin-count').setAttribute('aria-label', `${m.pins.size} pinned message${m.pins.size === 1 ? '' : 's'}`);
    replace($('#pin-list'), [...m.pins].sort((a, b) => String(b[1].pinned_at).localeCompare(String(a[1].pinned_at))).map(([seq, p]) => {
      const msg = m.messages.get(seq);
      return h('li', {}, h('button', { type: 'button', class: 'link-button', onclick: () => { box.open = false; this.ctx.openMessage(m.id, seq); } },
        msg ? `${msg.user}: ` : `#${seq}`, msg ? formatInline(this.#firstLine(msg.text), { me: this.ctx.me }) : null),
      h('span', { class: 'hint', text: ` pinned by ${p.pinned_by}` }));
    }));
    for (const seq of this.els.keys()) {
      const li = this.els.get(seq);
      const has = Boolean(li.querySelector('.msg-pinned'));
      if (has !== m.pins.has(seq)) this.#renderMessage(m.messages.get(seq));
    }
  }

  /** Opens root's thread in the side panel. */
  openThread(root) { return this.threadPanel.open(root); }

  /** Sends a reply in a thread through the outbox. */
  sendThreadReply(root, text) {
    const model = this.model;
    if (!model || !text.trim()) return;
    this.ctx.outbox.publish(`chat:${model.id}`, { type: 'message', text: text.trim(), thread: root });
  }

  /** Builds a message element for the thread panel (no thread button there). */
  buildForThread(msg) { return this.#build(msg); }

  async react(msg, emoji, add) {
    try { await api.react(this.model.id, msg.seq, emoji, add); } catch (err) { this.ctx.onError(err); }
  }

  async remove(msg) {
    try { await api.remove(this.model.id, msg.seq); this.dom.text.focus(); } catch (err) { this.ctx.onError(err); }
  }

  async loadOlder() {
    const model = this.model;
    if (!model || this.loadingOlder || !model.hasOlder || !model.oldest) return;
    this.loadingOlder = true;
    this.dom.older.disabled = true;
    try {
      const res = await api.messages(model.id, { before: model.oldest, limit: PAGE });
      if (this.model === model) model.applySnapshot(res.messages ?? [], { older: true });
    } catch (err) { this.ctx.onError(err); } finally {
      this.loadingOlder = false;
      this.dom.older.disabled = false;
    }
  }

  /**
   * Scrolls to a message and highlights it. A message up to two pages back
   * is reached by scrolling back (the timeline stays continuous); further
   * back, the page around it is fetched (?around=) and shown above the
   * recent messages with a "Load newer messages" gap between them, rather
   * than loading every page in between.
   */
  async reveal(seq) {
    const model = this.model;
    if (!model) return false;
    for (let i = 0; i < 2 && model.missing(seq) && !model.gap && model.hasOlder && model.oldest > seq; i++) {
      await this.loadOlder();
    }
    if (this.model !== model) return false;
    if (model.missing(seq) && (model.hasOlder || model.gap || seq > model.oldest)) {
      try {
        const res = await api.messages(model.id, { around: seq, limit: PAGE });
        if (this.model !== model) return false;
        model.applyAround(res.messages ?? []);
      } catch (err) { this.ctx.onError(err); return false; }
    }
    const known = model.messages.get(seq);
    if (known?.thread) return this.threadPanel.open(known.thread, seq); // a reply: shown in its thread
    const li = this.els.get(seq);
    if (!li) return false;
    for (const el of this.dom.list.querySelectorAll('.msg.linked')) el.classList.remove('linked');
    this.linkedSeq = seq;
    li.scrollIntoView({ block: 'center' });
    // "linked" marks the message the link is about until another one is opened; "flash" draws the eye once.
    li.classList.add('flash', 'linked');
    li.tabIndex = -1;
    li.focus({ preventScroll: true });
    setTimeout(() => li.classList.remove('flash'), 2500);
    return true;
  }

  #typing() {
    const model = this.model;
    if (!model || !this.dom.text.value.trim()) return;
    const now = Date.now();
    if (now - this.lastTypingSent < 3000) return;
    this.lastTypingSent = now;
    this.ctx.rpc('chat.typing', { room: model.id }).catch(() => api.typing(model.id).catch(() => {}));
  }

  #maybeMarkRead() {
    const model = this.model;
    if (!model || !model.loaded || document.visibilityState !== 'visible' || !this.#atBottom()) return;
    const seq = model.newestSeq;
    if (!seq || (seq <= model.lastRead && model.unread === 0)) return;
    model.markedRead(seq);
    clearTimeout(this.readTimer);
    this.unsentRead = { model, seq };
    this.readTimer = setTimeout(() => this.#sendRead(), 300);
  }

  /** Sends the read receipt waiting for its timer now (also when the room is left: it is not dropped by the next room's). */
  #sendRead() {
    clearTimeout(this.readTimer);
    const r = this.unsentRead;
    this.unsentRead = null;
    if (!r) return;
    this.ctx.rpc('chat.read', { room: r.model.id, seq: r.seq }).catch(() => api.read(r.model.id, r.seq).catch(() => {}));
  }

  #atBottom() {
    const t = this.dom.timeline;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 48;
  }

  scrollToBottom() {
    const t = this.dom.timeline;
    t.scrollTop = t.scrollHeight;
    this.dom.jump.hidden = true;
  }

  #autosize() {
    const t = this.dom.text;
    t.style.height = 'auto';
    t.style.height = `${Math.min(t.scrollHeight + 2, 160)}px`;
  }

  // Search.

  async search(q, here) {
    const d = this.dom;
    d.results.hidden = false;
    replace(d.resultList, h('li', { class: 'hint', text: 'Searching…' }));
    try {
      const res = await api.search(q, here && this.model ? this.model.id : 0);
      const list = res.messages ?? [];
      this.ctx.profiles?.update(list);
      if (!list.length) { replace(d.resultList, h('li', { class: 'hint', text: `Nothing found for “${q}”.` })); return; }
      const terms = searchTerms(q);
      replace(d.resultList, list.map((m) => {
        const room = this.ctx.rooms.get(m.room);
        const where = room ? room.displayName : `room ${m.room}`;
        // The same rendering as the timeline, with the matched words marked.
        // (A button holds phrasing content only: the blocks go next to it.)
        const { rest, files } = this.#body(m.text);
        const open = (e) => { if (!e.target.closest('a, button')) this.ctx.openMessage(m.room, m.seq); };
        return h('li', { class: 'search-hit', onclick: open },
          h('button', { type: 'button', class: 'search-open', onclick: () => this.ctx.openMessage(m.room, m.seq) },
            h('span', { class: 'search-meta', text: `${this.ctx.profiles?.displayName(m.user) ?? m.user} in ${where} · ${formatTime(m.created_at)}` })),
          h('div', { class: 'msg-body' }, formatBlocks(rest, { me: this.ctx.me, terms }), files.length ? ' 📎' : null));
      }));
      announce(`${list.length} result${list.length === 1 ? '' : 's'}`);
    } catch (err) {
      replace(d.resultList, h('li', { class: 'error', text: err.message }));
    }
  }
}
