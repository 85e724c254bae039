// The outbox's mechanism against a client played by the test: order, client
// ids, persistence across "page loads" (a new Outbox on the same storage),
// resending after a lost acknowledgement, permanent refusals, bounds.
// chat-outbox tests in test/e2e run it against a real server that deduplicates.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Emitter, Outbox, SoriError } from '../src/index.js';

/** A client whose connection state and publish replies the test decides. */
class FakeClient extends Emitter {
  constructor() {
    super();
    this.state = 'disconnected';
    this.sent = []; // [channel, data]
    this.reply = () => ({ epoch: 'e', offset: this.sent.length });
  }
  setState(s) { this.state = s; this.emit('state', s, {}); }
  async publish(channel, data) {
    this.sent.push([channel, structuredClone(data)]);
    return this.reply(channel, data);
  }
}

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function settle(outbox) {
  for (let i = 0; i < 20; i++) await tick();
  return outbox.items;
}

test('queued while offline, persisted, sent in order on connect with stable client ids', async () => {
  const client = new FakeClient();
  const storage = new MemoryStorage();
  const outbox = new Outbox(client, { key: 'alice', storage });
  const a = outbox.publish('chat:1', { type: 'message', text: 'one' });
  const b = outbox.publish('chat:1', { type: 'message', text: 'two', client_id: 'mine-2' });
  assert.match(a.id, /^[0-9a-f]{32}$/);
  assert.equal(b.id, 'mine-2');
  assert.notEqual(a.id, outbox.publish('chat:1', { text: 'three' }).id, 'fresh ids differ');
  await settle(outbox);
  assert.equal(client.sent.length, 0, 'nothing is sent while disconnected');
  const saved = JSON.parse(storage.getItem('sori.outbox.alice'));
  assert.deepEqual(saved.map((it) => [it.data.text, it.state]), [['one', 'pending'], ['two', 'pending'], ['three', 'pending']]);

  client.setState('connected');
  assert.deepEqual(await a.sent, { epoch: 'e', offset: 1 });
  await settle(outbox);
  assert.deepEqual(client.sent.map(([, d]) => [d.text, d.client_id]), [['one', a.id], ['two', 'mine-2'], ['three', saved[2].id]]);
  assert.deepEqual(outbox.items, []);
  assert.equal(storage.getItem('sori.outbox.alice'), null, 'an empty outbox leaves nothing behind');
});

test('a new page (a new Outbox on the same storage) sends what the last one left, with the same ids', async () => {
  const storage = new MemoryStorage();
  const first = new Outbox(new FakeClient(), { key: 'bob', storage });
  const { id } = first.publish('chat:2', { type: 'message', text: 'left behind' });
  first.close();
  const client = new FakeClient();
  client.state = 'connected';
  const second = new Outbox(client, { key: 'bob', storage });
  assert.deepEqual(second.items.map((it) => [it.id, it.state]), [[id, 'pending']]);
  await settle(second);
  assert.deepEqual(client.sent, [['chat:2', { type: 'message', text: 'left behind', client_id: id }]]);
  // Another key is another outbox.
  assert.deepEqual(new Outbox(client, { key: 'carol', storage }).items, []);
});

test('a lost acknowledgement: the item is sent again with the same client id, after the reconnect', async () => {
  const client = new FakeClient();
  client.state = 'connected';
  let lose = true;
  client.reply = () => {
    if (lose) {
      lose = false;
      client.state = 'reconnecting';
      throw new SoriError('disconnected', 'connection lost before the reply');
    }
    return { epoch: 'e', offset: 7, duplicate: true };
  };
  const outbox = new Outbox(client, { storage: null });
  const sentEvents = [];
  outbox.on('sent', (item, result) => sentEvents.push([item.id, result]));
  const { id, sent } = outbox.publish('chat:1', { type: 'message', text: 'once' });
  outbox.publish('chat:1', { type: 'message', text: 'after' });
  await settle(outbox);
  assert.equal(client.sent.length, 1, 'the next item waits: order is kept');
  assert.deepEqual(outbox.items.map((it) => [it.data.text, it.state, it.attempts]), [['once', 'pending', 1], ['after', 'pending', 0]]);
  client.setState('connected');
  assert.deepEqual(await sent, { epoch: 'e', offset: 7, duplicate: true });
  await settle(outbox);
  assert.deepEqual(client.sent.map(([, d]) => d.client_id).slice(0, 2), [id, id], 'the repeat carries the same client id');
  assert.equal(client.sent[2][1].text, 'after');
  assert.deepEqual(sentEvents.map(([i]) => i)[0], id);
});

test('a timeout is retried after retryDelay; a rate limit too', async () => {
  const client = new FakeClient();
  client.state = 'connected';
  const errors = [new SoriError('timeout', 'no reply'), new SoriError(109, 'slow down')];
  client.reply = () => { if (errors.length) throw errors.shift(); return { offset: 1 }; };
  const outbox = new Outbox(client, { storage: null, retryDelay: 1 });
  const { sent } = outbox.publish('chat:1', { text: 'x' });
  assert.deepEqual(await sent, { offset: 1 });
  assert.equal(client.sent.length, 3);
  assert.equal(new Set(client.sent.map(([, d]) => d.client_id)).size, 1);
});

test('a permanent refusal marks the item failed, the rest goes on; retry and discard', async () => {
  const client = new FakeClient();
  client.state = 'connected';
  client.reply = (ch, d) => { if (d.text === 'bad') throw new SoriError(104, 'not a member'); return { offset: 2 }; };
  const outbox = new Outbox(client, { storage: null });
  const failed = [];
  outbox.on('failed', (item, err) => failed.push([item.data.text, err.code]));
  const bad = outbox.publish('chat:9', { text: 'bad' });
  const good = outbox.publish('chat:1', { text: 'good' });
  await assert.rejects(bad.sent, (e) => e.code === 104);
  await good.sent;
  assert.deepEqual(failed, [['bad', 104]]);
  assert.deepEqual(outbox.items.map((it) => [it.data.text, it.state, it.error?.code]), [['bad', 'failed', 104]]);
  outbox.retry(bad.id);
  await settle(outbox);
  assert.equal(outbox.items[0].state, 'failed');
  assert.equal(outbox.discard(bad.id), true);
  assert.deepEqual(outbox.items, []);
});

test('bounded: publish beyond maxItems is refused', async () => {
  const outbox = new Outbox(new FakeClient(), { storage: null, maxItems: 2 });
  outbox.publish('c:1', { a: 1 });
  outbox.publish('c:1', { a: 2 });
  await assert.rejects(outbox.publish('c:1', { a: 3 }).sent, (e) => e.code === 'outbox_full');
  assert.equal(outbox.items.length, 2);
});

test('a corrupt or hostile storage entry is ignored', () => {
  const storage = new MemoryStorage();
  storage.setItem('sori.outbox.x', '{not json');
  assert.deepEqual(new Outbox(new FakeClient(), { key: 'x', storage }).items, []);
  storage.setItem('sori.outbox.y', JSON.stringify([{ id: 'bad id!', channel: 'c', data: {} }, { id: 'ok', channel: 'c', data: { text: 't' }, state: 'sending' }]));
  assert.deepEqual(new Outbox(new FakeClient(), { key: 'y', storage }).items.map((it) => [it.id, it.state, it.data.client_id]), [['ok', 'pending', 'ok']]);
});

test('an item queued just as the previous acknowledgement resolves is still sent', async () => {
  const client = new FakeClient();
  client.state = 'connected';
  const outbox = new Outbox(client, { storage: null });
  await outbox.publish('chat:1', { text: 'first' }).sent;
  // Queued in the continuation of the first acknowledgement, while the pump winds down.
  const { sent } = outbox.publish('chat:1', { text: 'second' });
  assert.deepEqual(await sent, { epoch: 'e', offset: 2 });
});
