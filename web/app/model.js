// RoomModel holds what the app knows about one room: its messages (by
// sequence number), members and their read receipts, who is online and who
// is typing. It has no DOM; views listen to its events.
//
// Two sources feed it: REST snapshots (messages in their current state, for
// the first screen and for scroll-back) and the room's live channel
// (chat:<id>), whose publications are the room's events in order: message,
// edit, delete, reaction_add, reaction_remove. Applying an event is
// idempotent (a reaction is a set of users), so a snapshot followed by a
// replay of the events seen meanwhile yields the current state whatever the
// order in which the two arrived.

import { parse } from './markdown.js';

export const PAGE = 50;
const LOG_LIMIT = 2000;

export class RoomModel extends EventTarget {
  /**
   * @param {any} info the room as GET /api/v1/rooms lists it
   * @param {string} me my username
   * @param {{update: (list: any[], opts?: {complete?: boolean}) => void}} [profiles] given the authors of
   *   REST messages and the members (display names, avatars: profile.js)
   */
  constructor(info, me, profiles = null) {
    super();
    this.me = me;
    this.profiles = profiles;
    this.info = { ...info };
    this.id = info.id;
    this.messages = new Map(); // seq -> message
    this.oldest = 0; // smallest seq loaded through REST (0 = nothing yet)
    this.hasOlder = true;
    // Messages a permalink far back jumped to (?around=) are held apart from
    // the recent ones: {after, before} says that seqs between the two (both
    // excluded) may be missing. One gap at most: a second jump forgets the
    // first window. null: everything from oldest on is loaded.
    this.gap = null;
    this.loaded = false;
    this.log = []; // recent edit/delete/reaction events, replayed over snapshots
    this.members = new Map(); // username -> {role, last_read_seq}
    this.online = new Map(); // username -> Set of client ids
    this.typing = new Map(); // username -> expiry (ms)
    this.files = new Map(); // file id -> metadata
    this.filesWanted = new Set(); // ids to look up in the next listing
    this.filesGone = new Set(); // ids a listing that began after they were wanted did not have
    this.filesListing = null; // the running listing (a promise), or null
    this.maxFileSize = 0; // the server's upload limit in bytes, once known
    this.peer = ''; // the other user of a direct room
    this.pending = []; // this room's outbox items (SDK Outbox), oldest first
    this.acked = new Map(); // client id -> {item, seq}: acknowledged, not yet in messages
    this.pins = new Map(); // seq -> {pinned_by, pinned_at}
    this.threadSeen = new Map(); // root seq -> the last reply seq seen in its thread
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  get unread() { return this.info.unread ?? 0; }
  /** Unread messages that mention me (every unread message of a direct room counts). */
  get mentions() { return this.info.mentions ?? 0; }
  /** The notification level: 'all', 'mentions' or 'none' (the server's, else all for direct rooms, mentions otherwise). */
  get notify() { return this.info.notify ?? (this.info.kind === 'direct' ? 'all' : 'mentions'); }

  /**
   * Whether a message event mentions me: the server's "mentions" list and
   * "mention_room" flag when it sent them, else @names found in the text
   * (only a direct room's peer, or room admins, can @room: the server decides;
   * without its word a text @room counts).
   */
  mentionsMe(ev) {
    if (Array.isArray(ev.mentions)) return ev.mentions.some((u) => String(u).toLowerCase() === this.me.toLowerCase()) || Boolean(ev.mention_room);
    const names = [];
    const walk = (list) => {
      for (const x of list ?? []) {
        if (x.t === 'mention') names.push(x.v.toLowerCase());
        if (x.c) walk(x.c);
        if (x.items) x.items.forEach(walk);
      }
    };
    walk(parse(ev.text ?? ''));
    return names.includes(this.me.toLowerCase()) || names.includes('room');
  }

  /**
   * Whether a live message from someone else deserves a notification at
   * this room's level: every message for 'all', mentions (and every direct
   * message) for 'mentions', nothing for 'none'.
   */
  wantsNotification(ev) {
    if (ev?.type !== 'message' || ev.user === this.me) return false;
    const level = this.notify;
    if (level === 'none') return false;
    return level === 'all' || this.info.kind === 'direct' || this.mentionsMe(ev);
  }
  get lastSeq() { return this.info.last_seq ?? 0; }
  get lastRead() { return this.info.last_read_seq ?? 0; }

  /** The name to show: #name or title for groups, the peer for direct rooms. */
  get displayName() {
    if (this.info.kind === 'direct') return this.peer ? `@${this.peer}` : 'Direct message';
    return this.info.title || `#${this.info.name}`;
  }

  /** Highest message seq known (loaded or received live). */
  get newestSeq() {
    let max = 0;
    for (const seq of this.messages.keys()) if (seq > max) max = seq;
    return max;
  }

  /** Forgets the messages (their history is no longer continuous); the next show reloads them. */
  reset() {
    this.messages.clear();
    this.log = [];
    this.oldest = 0;
    this.hasOlder = true;
    this.loaded = false;
    this.gap = null;
  }

  /**
   * Updates the room's summary from a REST listing. The read position never
   * moves back: a listing can be older than what this page knows, in two
   * ways. Its last_seq can be behind messages that arrived live (keep our
   * counts), or its last_read_seq behind what was read here, because the
   * read receipt (chat.read, sent 300 ms after reading) had not reached the
   * server when the listing was taken. Taking that lower receipt put the
   * "New messages" line above messages already read, and it stayed there:
   * the room's "read" signal, which would have corrected it, is not heard
   * once the page has switched to another room. Then the listing's counts
   * include the messages read meanwhile; those held here are taken off.
   */
  updateInfo(info) {
    const behind = (info.last_seq ?? 0) < this.lastSeq; // we are ahead of that listing
    const { unread, mentions, last_seq: lastSeq, last_read_seq: lastRead = 0 } = this.info;
    this.info = { ...this.info, ...info };
    if (behind) {
      Object.assign(this.info, { unread, mentions, last_seq: lastSeq, last_read_seq: Math.max(lastRead, info.last_read_seq ?? 0) });
    } else if ('last_read_seq' in info && (info.last_read_seq ?? 0) < lastRead) {
      let read = 0;
      let readMentions = 0;
      for (const m of this.messages.values()) {
        if (m.seq <= info.last_read_seq || m.seq > lastRead || m.user === this.me || m.deleted) continue;
        read++;
        if (this.info.kind === 'direct' || this.mentionsMe(m)) readMentions++;
      }
      Object.assign(this.info, {
        last_read_seq: lastRead,
        unread: Math.max(0, (info.unread ?? 0) - read),
        mentions: Math.max(0, (info.mentions ?? 0) - readMentions),
      });
    }
    this.emit('info');
  }

  /** Applies a publication of the room channel. Returns the message it created or changed. */
  applyPublication(pub) {
    const ev = pub.data ?? {};
    const seq = Number(pub.offset);
    let changed = null;
    let isNew = false;
    if (ev.type === 'message') {
      isNew = !this.messages.has(seq);
      changed = this.#put({ seq, user: ev.user ?? pub.user ?? '', text: ev.text ?? '', reply_to: ev.reply_to ?? 0, client_id: ev.client_id,
        thread: ev.thread ?? 0, mentions: ev.mentions, mention_room: ev.mention_room,
        created_at: pub.time ? new Date(pub.time).toISOString() : new Date().toISOString(), reactions: [] }, !isNew);
      this.typing.delete(changed.user);
      if (isNew && changed.thread) this.#countReply(changed);
    } else {
      if (ev.type === 'pin') this.pins.set(Number(ev.target), { pinned_by: ev.user ?? '', pinned_at: pub.time ? new Date(pub.time).toISOString() : '' });
      if (ev.type === 'unpin' || ev.type === 'delete') this.pins.delete(Number(ev.target));
      if (ev.type === 'pin' || ev.type === 'unpin' || ev.type === 'delete') this.emit('pins');
      this.log.push({ seq, ev });
      if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
      changed = this.#applyEvent(ev);
    }
    if (seq > this.lastSeq) {
      if (ev.type === 'message' && ev.user !== this.me && seq > this.lastRead) {
        this.info.unread = this.unread + 1;
        if (this.info.kind === 'direct' || this.mentionsMe(ev)) this.info.mentions = this.mentions + 1;
      }
      this.info.last_seq = seq;
      this.emit('info');
    }
    if (changed) this.emit(isNew ? 'message' : 'change', { message: changed, live: true });
    if (isNew && (this.acked.size || this.pending.length)) this.emit('pending');
    return changed;
  }

  #applyEvent(ev) {
    const m = this.messages.get(Number(ev.target));
    if (!m) return null;
    switch (ev.type) {
      case 'edit': m.text = ev.text ?? ''; m.edited = true; break;
      case 'delete': m.deleted = true; m.text = ''; m.reactions = new Map(); break;
      case 'reaction_add': {
        const users = m.reactions.get(ev.emoji) ?? new Set();
        users.add(ev.user);
        m.reactions.set(ev.emoji, users);
        break;
      }
      case 'reaction_remove': {
        const users = m.reactions.get(ev.emoji);
        users?.delete(ev.user);
        if (users && users.size === 0) m.reactions.delete(ev.emoji);
        break;
      }
      default: return null;
    }
    return m;
  }

  /** Stores a message in the REST shape; when merge, keeps nothing of the old one. */
  #put(raw, existed) {
    const m = {
      seq: Number(raw.seq), user: raw.user ?? '', text: raw.text ?? '', reply_to: Number(raw.reply_to ?? 0),
      created_at: raw.created_at, edited: Boolean(raw.edited_at) || Boolean(raw.edited), deleted: Boolean(raw.deleted),
      reactions: new Map((raw.reactions ?? []).map((r) => [r.emoji, new Set(r.users)])),
      client_id: typeof raw.client_id === 'string' ? raw.client_id : '',
      thread: Number(raw.thread ?? 0), thread_replies: Number(raw.thread_replies ?? 0), thread_last_seq: Number(raw.thread_last_seq ?? 0),
      mentions: Array.isArray(raw.mentions) ? raw.mentions : undefined, mention_room: Boolean(raw.mention_room),
    };
    if (existed) {
      // A live "message" event for a message a snapshot already gave us:
      // the snapshot is at least as new, keep it.
      return this.messages.get(m.seq);
    }
    this.messages.set(m.seq, m);
    return m;
  }

  /** A new live reply: its root counts it (once: only a reply newer than the root's last one counts). */
  #countReply(reply) {
    const root = this.messages.get(reply.thread);
    if (!root || reply.seq <= root.thread_last_seq) return;
    root.thread_replies++;
    root.thread_last_seq = reply.seq;
    this.emit('change', { message: root, live: true });
  }

  /** The main timeline's messages (thread replies live in their thread), oldest first. */
  timeline() {
    return [...this.messages.values()].filter((m) => !m.thread).sort((a, b) => a.seq - b.seq);
  }

  /** The loaded replies of root's thread, oldest first. */
  threadReplies(root) {
    return [...this.messages.values()].filter((m) => m.thread === root).sort((a, b) => a.seq - b.seq);
  }

  /** Whether root's thread has replies from others newer than what was seen of it here. */
  threadUnread(root) {
    const m = this.messages.get(root);
    if (!m?.thread_last_seq) return false;
    const seen = this.threadSeen.get(root) ?? 0;
    if (m.thread_last_seq <= seen) return false;
    const last = this.messages.get(m.thread_last_seq);
    return !(last && last.user === this.me) && m.thread_last_seq > this.lastRead;
  }

  /** Records that root's thread was seen up to its last reply. */
  threadRead(root) {
    const m = this.messages.get(root);
    this.threadSeen.set(root, Math.max(this.threadSeen.get(root) ?? 0, m?.thread_last_seq ?? 0));
    if (m) this.emit('change', { message: m, live: false });
  }

  /** Merges a thread from REST (its root and replies) without touching the timeline's paging. */
  applyThread(root, replies) {
    this.profiles?.update([root, ...replies].filter(Boolean));
    const added = [];
    for (const raw of [root, ...replies]) {
      if (!raw) continue;
      const seq = Number(raw.seq);
      if (!this.messages.has(seq)) added.push(seq);
      this.messages.delete(seq);
      this.#put(raw, false);
    }
    const seqs = new Set([root, ...replies].filter(Boolean).map((r) => Number(r.seq)));
    for (const { ev } of this.log) if (seqs.has(Number(ev.target))) this.#applyEvent(ev);
    this.emit('thread', { root: Number(root?.seq) });
  }

  /** Replaces the pins from a REST listing. @param {{seq: number, pinned_by: string, pinned_at: string}[]} list */
  setPins(list) {
    this.pins = new Map(list.map((p) => [Number(p.seq), { pinned_by: p.pinned_by ?? '', pinned_at: p.pinned_at ?? '' }]));
    this.emit('pins');
  }

  /** Merges a page of messages from REST (their current state) and replays recent events over it. */
  applySnapshot(list, { older = false } = {}) {
    this.profiles?.update(list);
    const added = [];
    for (const raw of list) {
      const seq = Number(raw.seq);
      const isNew = !this.messages.has(seq);
      this.messages.delete(seq);
      const m = this.#put(raw, false);
      if (isNew) added.push(m);
      if (!this.oldest || seq < this.oldest) this.oldest = seq;
    }
    const seqs = new Set(list.map((r) => Number(r.seq)));
    for (const { ev } of this.log) if (seqs.has(Number(ev.target))) this.#applyEvent(ev);
    if (older || !this.loaded) this.hasOlder = list.length >= PAGE;
    this.loaded = true;
    this.emit('snapshot', { added, seqs });
    if (added.length && (this.acked.size || this.pending.length)) this.emit('pending');
  }

  /**
   * Merges the page of messages around a permalink's seq (?around=). When
   * it ends before the oldest message held, the two are not known to meet:
   * a gap stays between them until fillGap closes it. A window of an
   * earlier jump is forgotten first. Emits 'reloaded' (the view renders the
   * whole timeline again) instead of 'snapshot'.
   * @param {any[]} list the messages, oldest first
   */
  applyAround(list) {
    if (!list.length) return;
    this.profiles?.update(list);
    const seqs = list.map((r) => Number(r.seq));
    const lo = Math.min(...seqs);
    const hi = Math.max(...seqs);
    if (this.gap) {
      for (const seq of [...this.messages.keys()]) if (seq < this.gap.before) this.messages.delete(seq);
      this.oldest = this.gap.before;
      this.gap = null;
    }
    const wasOldest = this.oldest;
    if (this.loaded && wasOldest && hi < wasOldest) this.gap = { after: hi, before: wasOldest };
    this.#merge(list);
    if (!wasOldest || lo < wasOldest) this.hasOlder = true; // the next page back says whether there is more
    this.loaded = true;
    this.emit('reloaded');
  }

  /**
   * Merges the page after the gap's start (GET ?after=gap.after): the gap
   * closes when the page reaches the messages after it or is not full.
   * @param {any[]} list
   */
  fillGap(list) {
    if (!this.gap) return;
    this.profiles?.update(list);
    const { before } = this.gap;
    const seqs = list.map((r) => Number(r.seq));
    if (list.length < PAGE || seqs.some((s) => s >= before)) this.gap = null;
    else this.gap = { after: Math.max(...seqs), before };
    this.#merge(list);
    this.emit('reloaded');
  }

  /** Whether seq falls where messages may be missing (older than held, or in the gap). */
  missing(seq) {
    if (this.messages.has(seq)) return false;
    return !this.oldest || seq < this.oldest || Boolean(this.gap && seq > this.gap.after && seq < this.gap.before);
  }

  #merge(list) {
    for (const raw of list) {
      const seq = Number(raw.seq);
      this.messages.delete(seq);
      this.#put(raw, false);
      if (!this.oldest || seq < this.oldest) this.oldest = seq;
    }
    const seqs = new Set(list.map((r) => Number(r.seq)));
    for (const { ev } of this.log) if (seqs.has(Number(ev.target))) this.#applyEvent(ev);
  }

  /**
   * Takes the outbox's items (all rooms'); keeps this room's. Emits 'pending'.
   * @param {{id: string, channel: string}[]} items
   */
  setPending(items) {
    this.pending = items.filter((it) => it.channel === `chat:${this.id}`);
    this.emit('pending');
  }

  /** An outbox item the server acknowledged at seq: shown as pending until the message itself is here. */
  acknowledged(item, seq) {
    if (item.channel !== `chat:${this.id}`) return;
    this.acked.set(item.id, { item: { ...item, state: 'sent' }, seq: Number(seq) || 0 });
    this.emit('pending');
  }

  /**
   * The messages to show as pending at the end of the timeline: queued,
   * being sent, refused, or acknowledged but not yet received, minus those
   * the timeline has (same client id or, for acknowledged ones, same seq).
   * A message therefore shows once, pending or delivered, never both.
   */
  pendingVisible() {
    const have = new Set();
    for (const m of this.messages.values()) if (m.client_id) have.add(m.client_id);
    for (const [id, a] of this.acked) if (have.has(id) || (a.seq && this.messages.has(a.seq))) this.acked.delete(id);
    const queued = this.pending.filter((it) => !have.has(it.id) && !this.acked.has(it.id));
    return [...queued, ...[...this.acked.values()].map((a) => a.item)].sort((x, y) => (x.createdAt ?? 0) - (y.createdAt ?? 0));
  }

  /** A live signal from chat:<id>#live. */
  applySignal(data) {
    switch (data?.type) {
      case 'typing':
        if (data.user && data.user !== this.me) {
          this.typing.set(data.user, Date.now() + 6000);
          this.emit('typing');
        }
        break;
      case 'read': {
        const m = this.members.get(data.user) ?? { role: 'member', last_read_seq: 0 };
        m.last_read_seq = Math.max(m.last_read_seq ?? 0, Number(data.seq) || 0);
        this.members.set(data.user, m);
        if (data.user === this.me) {
          this.info.last_read_seq = Math.max(this.lastRead, m.last_read_seq);
        }
        this.emit('receipts');
        break;
      }
      case 'call': // a call's state, for call.js (docs/calls.md)
        this.emit('call', data);
        break;
      case 'topic_changed':
        this.info.topic = data.topic ?? '';
        this.emit('info');
        break;
      case 'profile': // a member's display name or avatar changed: every view of them updates
        if (typeof data.user === 'string') {
          this.profiles?.update([{ username: data.user, display_name: String(data.display_name ?? ''), avatar_url: String(data.avatar_url ?? '') }], { complete: true });
        }
        break;
      case 'member_joined': case 'member_left': case 'member_kicked': case 'role_changed':
        this.emit('members-changed', data);
        break;
      default:
    }
  }

  setMembers(list) {
    this.profiles?.update(list, { complete: true });
    this.members = new Map(list.map((m) => [m.username, { role: m.role, last_read_seq: Number(m.last_read_seq) || 0 }]));
    if (this.info.kind === 'direct') this.peer = list.find((m) => m.username !== this.me)?.username ?? this.peer;
    this.emit('receipts');
    this.emit('info');
  }

  setOnline(clients) {
    this.online = new Map();
    for (const c of clients) this.#join(c);
    this.emit('online');
  }

  #join(c) {
    const user = c.user ?? c.username ?? '';
    if (!user) return;
    const set = this.online.get(user) ?? new Set();
    set.add(c.client ?? user);
    this.online.set(user, set);
  }

  join(info) { this.#join(info); this.emit('online'); }

  leave(info) {
    const set = this.online.get(info.user);
    if (!set) return;
    set.delete(info.client ?? info.user);
    if (set.size === 0) this.online.delete(info.user);
    this.emit('online');
  }

  /** Users typing now, without the expired ones. */
  typingUsers() {
    const now = Date.now();
    for (const [u, t] of this.typing) if (t < now) this.typing.delete(u);
    return [...this.typing.keys()].sort();
  }

  /**
   * Asks for the metadata (name, type, size) of a file a message refers to.
   * listFiles() fetches the room's file list; one listing runs at a time, and
   * ids first wanted while one runs get another listing right after it, so a
   * file sent while the previous one was being looked up still gets its name.
   * (A fixed 3-s throttle used to drop those: the second of two files sent
   * within 3 s stayed a nameless "attachment" until a reload.) An id that a
   * listing begun after it was wanted does not have is not asked again.
   * Emits 'files' after each listing.
   * @param {string} id
   * @param {() => Promise<{files?: any[]}>} listFiles
   * @returns {Promise<void>} settles when no listing is running
   */
  wantFile(id, listFiles) {
    if (!this.files.has(id) && !this.filesGone.has(id)) {
      this.filesWanted.add(id);
      this.filesListing ??= this.#listFiles(listFiles).finally(() => { this.filesListing = null; });
    }
    return this.filesListing ?? Promise.resolve();
  }

  async #listFiles(listFiles) {
    while (this.filesWanted.size) {
      const asked = [...this.filesWanted];
      this.filesWanted.clear();
      let res;
      try {
        res = await listFiles();
      } catch {
        return; // shown as plain links; the next render asks again
      }
      for (const f of res?.files ?? []) this.files.set(f.id, f);
      if (res?.max_size) this.maxFileSize = res.max_size;
      for (const id of asked) if (!this.files.has(id)) this.filesGone.add(id);
      this.emit('files');
    }
  }

  /** Records the metadata of a file this client uploaded. */
  addFile(meta) {
    this.files.set(meta.id, meta);
    this.filesGone.delete(meta.id);
  }

  /** Marks everything up to seq as read locally. */
  markedRead(seq) {
    if (seq > this.lastRead) this.info.last_read_seq = seq;
    this.info.unread = 0;
    this.info.mentions = 0;
    const me = this.members.get(this.me);
    if (me) me.last_read_seq = Math.max(me.last_read_seq, seq);
    this.emit('info');
  }

  /** For each message seq, the other members whose receipt points at it (the newest loaded message ≤ their receipt). */
  receiptsBySeq() {
    const seqs = [...this.messages.keys()].sort((a, b) => a - b);
    const out = new Map();
    for (const [user, m] of this.members) {
      if (user === this.me || !m.last_read_seq) continue;
      let at = 0;
      for (const s of seqs) { if (s <= m.last_read_seq) at = s; else break; }
      if (!at) continue;
      if (!out.has(at)) out.set(at, []);
      out.get(at).push(user);
    }
    return out;
  }
}
