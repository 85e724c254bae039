// Unit tests of RoomModel (web/app/model.js): the promise in its header that
// applying an event is idempotent, so a REST snapshot and a replay of the
// live events seen meanwhile give the current state in either order; unread
// counting; and the file lookups behind attachment names.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RoomModel } from '../../web/app/model.js';

const room = { id: 7, kind: 'group', name: 'general', last_seq: 0, last_read_seq: 0, unread: 0 };
const t0 = Date.UTC(2026, 0, 2, 3, 4, 5);

/** A publication of chat:<id> as the SDK delivers it. */
function pub(offset, data, user = data.user) {
  return { channel: 'chat:7', offset, data, user, time: t0 + offset };
}
const message = (seq, user, text) => pub(seq, { type: 'message', user, text });
const edit = (seq, target, text) => pub(seq, { type: 'edit', target, text, user: 'bob' });
const react = (seq, target, emoji, user, type = 'reaction_add') => pub(seq, { type, target, emoji, user });

/** The state a view renders, in plain values. */
function state(m) {
  return [...m.messages.values()]
    .sort((a, b) => a.seq - b.seq)
    .map((x) => ({
      seq: x.seq, user: x.user, text: x.text, edited: x.edited, deleted: x.deleted,
      reactions: Object.fromEntries([...x.reactions].map(([e, users]) => [e, [...users].sort()])),
    }));
}

const live = [
  message(1, 'bob', 'hello'),
  message(2, 'carol', 'hi bob'),
  react(3, 1, '👍', 'carol'),
  react(4, 1, '👍', 'alice'),
  edit(5, 2, 'hi bob!'),
  react(6, 1, '👍', 'alice', 'reaction_remove'),
  pub(7, { type: 'delete', target: 2, user: 'carol' }),
];
/** What REST answers for messages 1–2 after events up to seq 4 were applied on the server. */
const snapshotAt4 = [
  { seq: 1, user: 'bob', text: 'hello', created_at: new Date(t0 + 1).toISOString(), reactions: [{ emoji: '👍', users: ['carol', 'alice'] }] },
  { seq: 2, user: 'carol', text: 'hi bob', created_at: new Date(t0 + 2).toISOString(), reactions: [] },
];
const expected = [
  { seq: 1, user: 'bob', text: 'hello', edited: false, deleted: false, reactions: { '👍': ['carol'] } },
  { seq: 2, user: 'carol', text: '', edited: true, deleted: true, reactions: {} },
];

test('live events alone give the current state', () => {
  const m = new RoomModel(room, 'alice');
  for (const p of live) m.applyPublication(p);
  assert.deepEqual(state(m), expected);
});

test('every event applied twice changes nothing (idempotence)', () => {
  const m = new RoomModel(room, 'alice');
  for (const p of live) {
    m.applyPublication(p);
    m.applyPublication(p);
  }
  assert.deepEqual(state(m), expected);
  assert.equal(m.unread, 2, 'a replayed message is not unread twice');
});

test('a snapshot and the live events give the same state in either order', () => {
  // Events first (the live channel was faster than REST), then the snapshot.
  const a = new RoomModel(room, 'alice');
  for (const p of live) a.applyPublication(p);
  a.applySnapshot(snapshotAt4);
  assert.deepEqual(state(a), expected);

  // Snapshot first, then every event (some of which it already contains).
  const b = new RoomModel(room, 'alice');
  b.applySnapshot(snapshotAt4);
  for (const p of live) b.applyPublication(p);
  assert.deepEqual(state(b), expected);

  // Snapshot in the middle of the events.
  const c = new RoomModel(room, 'alice');
  for (const p of live.slice(0, 5)) c.applyPublication(p);
  c.applySnapshot(snapshotAt4);
  for (const p of live.slice(3)) c.applyPublication(p);
  assert.deepEqual(state(c), expected);
});

test('unread counts others\' new messages only, and markedRead clears it', () => {
  const m = new RoomModel(room, 'alice');
  const events = [];
  m.addEventListener('message', (e) => events.push(e.detail.message.seq));
  m.applyPublication(message(1, 'bob', 'one'));
  m.applyPublication(message(2, 'alice', 'mine'));
  m.applyPublication(message(3, 'carol', 'three'));
  assert.equal(m.unread, 2);
  assert.equal(m.lastSeq, 3);
  assert.deepEqual(events, [1, 2, 3]);
  m.markedRead(3);
  assert.equal(m.unread, 0);
  assert.equal(m.lastRead, 3);
  m.applyPublication(message(3, 'carol', 'three')); // a replay after a resume
  assert.equal(m.unread, 0);
});

test('a room listing older than what arrived live does not roll the counts back', () => {
  const m = new RoomModel(room, 'alice');
  m.applyPublication(message(1, 'bob', 'one'));
  m.applyPublication(message(2, 'bob', 'two'));
  m.updateInfo({ ...room, title: 'General', last_seq: 1, unread: 1 });
  assert.equal(m.info.title, 'General');
  assert.equal(m.lastSeq, 2);
  assert.equal(m.unread, 2);
});

test('a room listing taken before my read receipt reached the server does not move the read position back', () => {
  // Bob reads up to 4 (two of them mention him, one is his own); the
  // listing was taken while the debounced chat.read was still on its way,
  // with the server's receipt at 1: it must neither move the "New
  // messages" line up to 1 nor count 2–4 as unread again.
  const m = new RoomModel(room, 'bob');
  m.applyPublication(message(1, 'alice', 'one'));
  m.applyPublication(message(2, 'alice', 'two @bob'));
  m.applyPublication(pub(3, { type: 'message', user: 'alice', text: 'three', mentions: ['bob'] }));
  m.applyPublication(message(4, 'bob', 'mine'));
  m.markedRead(4);
  m.updateInfo({ ...room, last_seq: 4, last_read_seq: 1, unread: 2, mentions: 2 });
  assert.equal(m.lastRead, 4);
  assert.equal(m.unread, 0);
  assert.equal(m.mentions, 0);
  // The same listing, with a message that came after the read: only it counts.
  m.updateInfo({ ...room, last_seq: 5, last_read_seq: 1, unread: 3, mentions: 2 });
  assert.equal(m.lastRead, 4);
  assert.equal(m.unread, 1);
  assert.equal(m.mentions, 0);
  // A listing ahead of what I read is taken as it is.
  m.updateInfo({ ...room, last_seq: 6, last_read_seq: 5, unread: 1, mentions: 1 });
  assert.equal(m.lastRead, 5);
  assert.equal(m.unread, 1);
  assert.equal(m.mentions, 1);
});

test('receipts point at the newest loaded message at or below each reader\'s position', () => {
  const m = new RoomModel(room, 'alice');
  for (const p of live.slice(0, 2)) m.applyPublication(p);
  m.setMembers([
    { username: 'alice', role: 'owner', last_read_seq: 2 },
    { username: 'bob', role: 'member', last_read_seq: 1 },
    { username: 'carol', role: 'member', last_read_seq: 5 },
    { username: 'dave', role: 'member', last_read_seq: 0 },
  ]);
  assert.deepEqual(Object.fromEntries(m.receiptsBySeq()), { 1: ['bob'], 2: ['carol'] });
});

test('a file sent while the previous one is being looked up still gets its name', async () => {
  const m = new RoomModel(room, 'bob');
  const server = [{ id: 'file-one-1', name: 'one.txt', size: 3 }];
  /** @type {Array<() => void>} */
  const calls = [];
  let snapshot = null;
  // The listing's answer is fixed when it starts (as the server's would be).
  const list = () => {
    snapshot = [...server];
    const answer = { files: snapshot };
    return new Promise((resolve) => calls.push(() => resolve(answer)));
  };

  const done = m.wantFile('file-one-1', list);
  server.push({ id: 'file-two-2', name: 'two.txt', size: 4 }); // uploaded after the listing began
  void m.wantFile('file-two-2', list);
  calls[0]();
  // The first answer lacks file-two-2; a second listing follows by itself.
  await new Promise((r) => setImmediate(r));
  assert.equal(calls.length, 2, 'a second listing for the id that came during the first');
  assert.equal(m.files.get('file-two-2'), undefined);
  calls[1]();
  await done;
  assert.equal(m.files.get('file-two-2')?.name, 'two.txt');
  assert.equal(m.filesListing, null);

  // An id that a listing begun after it was wanted does not have is gone: not asked again.
  void m.wantFile('file-deleted', list);
  assert.equal(calls.length, 3);
  calls[2]();
  await m.filesListing;
  assert.ok(m.filesGone.has('file-deleted'));
  await m.wantFile('file-deleted', list);
  assert.equal(calls.length, 3, 'no listing for a file known to be gone');
  // A file this client uploads is known at once.
  m.addFile({ id: 'file-deleted', name: 'back.txt', size: 1 });
  assert.equal(m.files.get('file-deleted')?.name, 'back.txt');
});

test('outbox items show as pending until the timeline has them, never both', () => {
  const m = new RoomModel(room, 'alice');
  const item = (id, text, state = 'pending', createdAt = 1) => ({ id, channel: 'chat:7', data: { type: 'message', text, client_id: id }, state, createdAt });
  m.setPending([item('c1', 'one'), item('c2', 'two', 'sending', 2), { ...item('x', 'elsewhere'), channel: 'chat:8' }]);
  assert.deepEqual(m.pendingVisible().map((it) => it.id), ['c1', 'c2'], "only this room's items");
  // c1 arrives live with its client id (before its acknowledgement).
  m.applyPublication(pub(1, { type: 'message', user: 'alice', text: 'one', client_id: 'c1' }));
  assert.deepEqual(m.pendingVisible().map((it) => it.id), ['c2']);
  // c2 is acknowledged at seq 2 (the outbox drops it) before the publication arrives: still shown, as sent.
  m.acknowledged(item('c2', 'two', 'sending', 2), 2);
  m.setPending([]);
  assert.deepEqual(m.pendingVisible().map((it) => [it.id, it.state]), [['c2', 'sent']]);
  // A server without client ids in publications: the seq of the acknowledgement matches it.
  m.applyPublication(message(2, 'alice', 'two'));
  assert.deepEqual(m.pendingVisible(), []);
  assert.equal(m.acked.size, 0);
  // A REST snapshot carries client_id too.
  m.setPending([item('c3', 'three')]);
  m.applySnapshot([{ seq: 3, user: 'alice', text: 'three', client_id: 'c3', created_at: new Date(t0).toISOString() }]);
  assert.deepEqual(m.pendingVisible(), []);
});

test('mentions: counted while unread, by the server list or the text; notification levels', () => {
  const m = new RoomModel(room, 'alice');
  m.applyPublication(message(1, 'bob', 'no mention'));
  m.applyPublication(message(2, 'bob', 'hey @alice look'));
  m.applyPublication(message(3, 'bob', 'mail alice@example.com'));
  m.applyPublication(pub(4, { type: 'message', user: 'bob', text: '@alice in text only', mentions: [] }));
  m.applyPublication(pub(5, { type: 'message', user: 'bob', text: 'all of you', mentions: [], mention_room: true }));
  m.applyPublication(message(6, 'alice', 'me, @alice'));
  assert.equal(m.unread, 5);
  assert.equal(m.mentions, 2, 'the text @alice and the server\'s @room; the server\'s empty list wins over the text');
  m.markedRead(6);
  assert.equal(m.mentions, 0);
  assert.equal(m.notify, 'mentions', 'a group room defaults to mentions');
  assert.equal(m.wantsNotification({ type: 'message', user: 'bob', text: 'plain' }), false);
  assert.equal(m.wantsNotification({ type: 'message', user: 'bob', text: 'hi @Alice' }), true);
  assert.equal(m.wantsNotification({ type: 'message', user: 'alice', text: 'hi @alice' }), false, 'never my own');
  m.updateInfo({ ...room, notify: 'all' });
  assert.equal(m.wantsNotification({ type: 'message', user: 'bob', text: 'plain' }), true);
  m.updateInfo({ ...room, notify: 'none' });
  assert.equal(m.wantsNotification({ type: 'message', user: 'bob', text: 'hi @alice' }), false);
  const dm = new RoomModel({ ...room, kind: 'direct' }, 'alice');
  dm.applyPublication(message(1, 'bob', 'psst'));
  assert.equal(dm.mentions, 1, 'every unread direct message counts');
  assert.equal(dm.wantsNotification({ type: 'message', user: 'bob', text: 'psst' }), true);
});

test('threads: replies stay out of the timeline, roots count them once, unread until seen', () => {
  const m = new RoomModel({ ...room, last_read_seq: 0 }, 'alice');
  m.applySnapshot([{ seq: 1, user: 'alice', text: 'root', created_at: new Date(t0).toISOString(), thread_replies: 1, thread_last_seq: 2 },
    { seq: 2, user: 'bob', text: 'first reply', thread: 1, created_at: new Date(t0).toISOString() }]);
  assert.deepEqual(m.timeline().map((x) => x.seq), [1]);
  assert.deepEqual(m.threadReplies(1).map((x) => x.text), ['first reply']);
  // The live event of reply 2 (already in the snapshot) does not count twice; reply 3 counts.
  m.applyPublication(pub(2, { type: 'message', user: 'bob', text: 'first reply', thread: 1 }));
  m.applyPublication(pub(3, { type: 'message', user: 'bob', text: 'second reply', thread: 1 }));
  m.applyPublication(pub(3, { type: 'message', user: 'bob', text: 'second reply', thread: 1 }));
  const root = m.messages.get(1);
  assert.equal(root.thread_replies, 2);
  assert.equal(root.thread_last_seq, 3);
  assert.equal(m.threadUnread(1), true);
  m.threadRead(1);
  assert.equal(m.threadUnread(1), false);
  m.applyPublication(pub(4, { type: 'message', user: 'alice', text: 'my reply', thread: 1 }));
  assert.equal(m.threadUnread(1), false, 'my own reply is not news');
});

test('pins: listing, live pin/unpin, a deleted message is unpinned', () => {
  const m = new RoomModel(room, 'alice');
  m.applyPublication(message(1, 'bob', 'keep this'));
  m.applyPublication(message(2, 'bob', 'and this'));
  m.setPins([{ seq: 1, pinned_by: 'bob', pinned_at: 'x' }]);
  m.applyPublication(pub(3, { type: 'pin', target: 2, user: 'alice' }));
  assert.deepEqual([...m.pins.keys()].sort(), [1, 2]);
  m.applyPublication(pub(4, { type: 'unpin', target: 1, user: 'alice' }));
  m.applyPublication(pub(5, { type: 'delete', target: 2, user: 'bob' }));
  assert.deepEqual([...m.pins.keys()], []);
});

test('a permalink far back: the page around it is held apart from the recent ones until the gap closes', async () => {
  const { PAGE } = await import('../../web/app/model.js');
  const msg = (seq) => ({ seq, user: 'bob', text: `m${seq}`, created_at: new Date(t0 + seq).toISOString() });
  const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => msg(lo + i));
  const m = new RoomModel(room, 'alice');
  const reloads = [];
  m.addEventListener('reloaded', () => reloads.push(m.timeline().length));
  m.applySnapshot(range(951, 1000)); // the recent page
  assert.equal(m.missing(120), true);
  assert.equal(m.missing(975), false);
  m.applyAround(range(95, 144)); // around 120
  assert.deepEqual(m.gap, { after: 144, before: 951 });
  assert.equal(m.oldest, 95);
  assert.equal(m.hasOlder, true);
  assert.equal(m.missing(120), false);
  assert.equal(m.missing(500), true, 'in the gap');
  assert.equal(m.missing(50), true, 'older than held');
  // Filling: a full page moves the gap's start; the page reaching 951 closes it.
  m.fillGap(range(145, 144 + PAGE));
  assert.deepEqual(m.gap, { after: 144 + PAGE, before: 951 });
  // A second jump, into the gap: the first window is forgotten.
  m.applyAround(range(476, 525));
  assert.deepEqual(m.gap, { after: 525, before: 951 });
  assert.equal(m.oldest, 476);
  assert.equal(m.messages.has(120), false);
  m.fillGap(range(526, 940)); // more than a page: reaches the recent ones
  m.fillGap(range(941, 960));
  assert.equal(m.gap, null);
  // A jump to a message already next to the held ones leaves no gap.
  m.applyAround(range(450, 499));
  assert.equal(m.gap, null);
  assert.equal(m.oldest, 450);
  assert.equal(reloads.length, 6);
  assert.deepEqual(m.timeline().map((x) => x.seq), [...range(450, 960), ...range(961, 1000)].map((x) => x.seq));
});

test('profiles: display names and avatars from members and messages; initials', async () => {
  const { Profiles, initials, hue } = await import('../../web/app/profile.js');
  assert.equal(initials('Alice Liddell'), 'AL');
  assert.equal(initials('bob'), 'BO');
  assert.equal(initials('carol.smith'), 'CS');
  assert.equal(initials('🎉 ünïcode'), 'ÜN');
  assert.equal(initials('  '), '?');
  assert.equal(hue('alice'), hue('alice'));
  const p = new Profiles();
  const changes = [];
  p.addEventListener('change', (e) => changes.push(e.detail));
  const m = new RoomModel(room, 'alice', p);
  m.setMembers([{ username: 'alice', role: 'owner', display_name: 'Alice L', avatar_url: '/api/v1/users/alice/avatar?v=2' },
    { username: 'bob', role: 'member' }]);
  assert.equal(p.displayName('alice'), 'Alice L');
  assert.equal(p.displayName('bob'), 'bob');
  assert.equal(p.avatarURL('alice'), '/api/v1/users/alice/avatar?v=2');
  // REST messages leave the fields out when unset: that keeps what is known; a value replaces it.
  m.applySnapshot([{ seq: 1, user: 'alice', text: 'hi' }, { seq: 2, user: 'bob', text: 'yo', display_name: 'Bobby' }]);
  assert.equal(p.displayName('alice'), 'Alice L');
  assert.equal(p.displayName('bob'), 'Bobby');
  // A member list is complete: a cleared name or avatar goes.
  m.setMembers([{ username: 'alice', role: 'owner', display_name: '', avatar_url: '' }, { username: 'bob', role: 'member', display_name: 'Bobby' }]);
  assert.equal(p.displayName('alice'), 'alice');
  assert.equal(p.avatarURL('alice'), '');
  assert.deepEqual(changes, [['alice', 'bob'], ['bob'], ['alice']]);
  // Only same-origin paths are used as avatar URLs.
  p.update([{ username: 'eve', avatar_url: 'https://evil.example/x.png' }]);
  assert.equal(p.avatarURL('eve'), '');
});
