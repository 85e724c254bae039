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

export const PAGE = 50;
const LOG_LIMIT = 2000;

export class RoomModel extends EventTarget {
  constructor(info, me) {
    super();
    this.me = me;
    this.info = { ...info };
    this.id = info.id;
    this.messages = new Map(); // seq -> message
    this.oldest = 0; // smallest seq loaded through REST (0 = nothing yet)
    this.hasOlder = true;
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
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  get unread() { return this.info.unread ?? 0; }
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
  }

  /** Updates the room's summary from a REST listing. */
  updateInfo(info) {
    const keepCounts = (info.last_seq ?? 0) < this.lastSeq; // we are ahead of that listing
    const { unread, last_seq: lastSeq, last_read_seq: lastRead } = this.info;
    this.info = { ...this.info, ...info };
    if (keepCounts) Object.assign(this.info, { unread, last_seq: lastSeq, last_read_seq: Math.max(lastRead ?? 0, info.last_read_seq ?? 0) });
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
      changed = this.#put({ seq, user: ev.user ?? pub.user ?? '', text: ev.text ?? '', reply_to: ev.reply_to ?? 0,
        created_at: pub.time ? new Date(pub.time).toISOString() : new Date().toISOString(), reactions: [] }, !isNew);
      this.typing.delete(changed.user);
    } else {
      this.log.push({ seq, ev });
      if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
      changed = this.#applyEvent(ev);
    }
    if (seq > this.lastSeq) {
      if (ev.type === 'message' && ev.user !== this.me && seq > this.lastRead) this.info.unread = this.unread + 1;
      this.info.last_seq = seq;
      this.emit('info');
    }
    if (changed) this.emit(isNew ? 'message' : 'change', { message: changed, live: true });
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
    };
    if (existed) {
      // A live "message" event for a message a snapshot already gave us:
      // the snapshot is at least as new, keep it.
      return this.messages.get(m.seq);
    }
    this.messages.set(m.seq, m);
    return m;
  }

  /** Merges a page of messages from REST (their current state) and replays recent events over it. */
  applySnapshot(list, { older = false } = {}) {
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
      case 'member_joined': case 'member_left': case 'member_kicked': case 'role_changed':
        this.emit('members-changed', data);
        break;
      default:
    }
  }

  setMembers(list) {
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
