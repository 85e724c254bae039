// The Outbox against a real server's chat: a message sent again with the same
// client id — what the outbox does after a lost acknowledgement, or a new page
// after a crash mid-send — is answered with the first one's offset and
// duplicate: true, and the room holds it once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Outbox, SoriClient } from '../src/index.js';
import { WebSocket, startServer } from './harness.js';

/** @type {import('./harness.js').TestServer} */
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.get(k) ?? null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

test('a repeated client id is stored once: the second send gets the first offset, duplicate: true', async (t) => {
  const token = await server.token('olive');
  const rest = async (method, p, body) => {
    const res = await fetch(server.url + p, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
    assert.ok(res.ok, `${method} ${p}: ${res.status} ${await res.clone().text()}`);
    return res.json();
  };
  const room = await rest('POST', '/api/v1/rooms', { name: 'outbox-sdk' });
  const client = new SoriClient({ url: server.url, token, WebSocket });
  t.after(() => client.disconnect());
  await client.connect();

  const storage = new MemoryStorage();
  const first = new Outbox(client, { key: 'olive', storage });
  const a = first.publish(`chat:${room.id}`, { type: 'message', text: 'exactly once' });
  const reply1 = await a.sent;
  assert.equal(reply1.duplicate, undefined);
  // The same item again, as a page that died before the acknowledgement would send it.
  first.close();
  const second = new Outbox(client, { key: 'olive', storage });
  const b = second.publish(`chat:${room.id}`, { type: 'message', text: 'exactly once', client_id: a.id });
  const reply2 = await b.sent;
  assert.deepEqual([reply2.offset, reply2.duplicate], [reply1.offset, true]);
  const c = second.publish(`chat:${room.id}`, { type: 'message', text: 'another one' });
  assert.ok((await c.sent).offset > reply1.offset);

  const { messages } = await rest('GET', `/api/v1/rooms/${room.id}/messages?limit=50`);
  assert.deepEqual(messages.map((m) => [m.text, m.client_id]), [['exactly once', a.id], ['another one', c.id]]);
  assert.deepEqual(second.items, []);
});
