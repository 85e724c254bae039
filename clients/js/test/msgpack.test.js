import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { SoriClient } from '../src/index.js';
import { decodeMsgpack, encodeMsgpack } from '../src/msgpack.js';
import { WebSocket, startServer, waitFor } from './harness.js';

test('msgpack: values round-trip, data travels as JSON text in a bin', () => {
  const msgs = [
    { id: 1, op: 'publish', channel: 'room:x', data: { text: 'hé', n: [1, -2, 2.5, 300, 70000, -40000], ok: true, none: null } },
    { id: 2, op: 'ping', long: 'x'.repeat(300), many: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) },
  ];
  const frame = encodeMsgpack(msgs);
  assert.ok(frame instanceof Uint8Array);
  // The first map's data value is a bin (0xc4) holding JSON text.
  const at = Buffer.from(frame).indexOf(Buffer.from('data'));
  assert.equal(frame[at + 4], 0xc4);
  assert.equal(Buffer.from(frame.subarray(at + 6, at + 6 + frame[at + 5])).toString(), JSON.stringify(msgs[0].data));
  assert.deepEqual(decodeMsgpack(frame), msgs);
  const cut = decodeMsgpack(frame.subarray(0, frame.length - 3));
  assert.deepEqual(cut[0], msgs[0]);
  assert.ok(cut[1] instanceof Error);
});

/** @type {import('./harness.js').TestServer} */
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

test('codec binary: connect, subscribe, publish, history over sori.v1.msgpack', async (t) => {
  /** @type {string[]} */
  const protocols = [];
  class Recording extends WebSocket {
    /** @param {string} url @param {string | string[]} p */
    constructor(url, p) {
      super(url, p);
      this.on('open', () => protocols.push(this.protocol));
    }
  }
  const client = new SoriClient({ url: server.url, token: await server.token('alice'), WebSocket: Recording, codec: 'binary' });
  t.after(() => client.disconnect());
  const info = await client.connect();
  assert.equal(info.user, 'alice');
  assert.deepEqual(protocols, ['sori.v1.msgpack']);

  const json = new SoriClient({ url: server.url, token: await server.token('bob'), WebSocket });
  t.after(() => json.disconnect());
  await json.connect();

  const received = [];
  const jsonReceived = [];
  const sub = client.subscribe('room:binary', { onPublication: (p) => received.push(p) });
  const jsonSub = json.subscribe('room:binary', { onPublication: (p) => jsonReceived.push(p) });
  await Promise.all([sub.ready(), jsonSub.ready()]);
  const data = { text: 'hé "quoted"', n: [1, -2, 2.5], nested: { ok: true, none: null } };
  const pos = await sub.publish(data);
  assert.equal(pos.offset, 1);
  await jsonSub.publish({ text: 'from json' });
  await waitFor(() => received.length === 2 && jsonReceived.length === 2, 'both publications on both codecs');
  assert.deepEqual(received.map((p) => p.data), [data, { text: 'from json' }]);
  assert.deepEqual(jsonReceived.map((p) => p.data), received.map((p) => p.data));
  assert.deepEqual(received.map((p) => [p.offset, p.user]), [[1, 'alice'], [2, 'bob']]);

  const history = await sub.history({ limit: 10 });
  assert.deepEqual(history.publications.map((p) => p.data), [data, { text: 'from json' }]);
  await assert.rejects(client.publish('bad channel!', { x: 1 }), (err) => err.code === 111);
});

test('codec: an unknown codec is refused at construction', () => {
  assert.throws(() => new SoriClient({ url: 'http://localhost:1', codec: /** @type {any} */ ('xml') }), /unknown codec/);
});
