import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { SoriClient } from '../src/index.js';
import { WebSocket, nextEvent, startServer, waitFor } from './harness.js';

/** @type {import('./harness.js').TestServer} */
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

test('connect, subscribe, publish: the round trip over WebSocket', async (t) => {
  const client = new SoriClient({ url: server.url, token: await server.token('alice'), WebSocket });
  t.after(() => client.disconnect());
  const states = [];
  client.on('state', (s) => states.push(s));

  const info = await client.connect();
  assert.equal(info.user, 'alice');
  assert.equal(info.transport, 'websocket');
  assert.equal(client.state, 'connected');
  assert.deepEqual(states, ['connecting', 'connected']);

  const received = [];
  const sub = client.subscribe('room:lobby', { onPublication: (p) => received.push(p) });
  await sub.ready();
  assert.equal(sub.state, 'subscribed');
  assert.equal(sub.position?.offset, 0);

  const pos = await sub.publish({ text: 'hello' });
  assert.equal(pos.offset, 1);
  await server.api('/api/publish', { channel: 'room:lobby', data: { text: 'from the backend' } });
  await waitFor(() => received.length === 2, 'two publications');

  assert.deepEqual(
    received.map((p) => [p.channel, p.offset, p.data.text, p.user]),
    [
      ['room:lobby', 1, 'hello', 'alice'],
      ['room:lobby', 2, 'from the backend', ''],
    ],
  );
  assert.equal(typeof received[0].time, 'number');
  assert.deepEqual(sub.position, { epoch: pos.epoch, offset: 2 });
});

test('history, presence, join and leave, ping, unsubscribe', async (t) => {
  const alice = new SoriClient({ url: server.url, token: await server.token('alice'), WebSocket });
  const bob = new SoriClient({ url: server.url, token: await server.token('bob'), WebSocket });
  t.after(() => {
    alice.disconnect();
    bob.disconnect();
  });
  await Promise.all([alice.connect(), bob.connect()]);

  const joins = [];
  const leaves = [];
  const aliceSub = alice.subscribe('room:history', { onJoin: (i) => joins.push(i.user), onLeave: (i) => leaves.push(i.user) });
  await aliceSub.ready();
  for (let i = 1; i <= 5; i++) await alice.publish('room:history', { n: i });

  const bobSub = bob.subscribe('room:history');
  await bobSub.ready();
  await waitFor(() => joins.includes('bob'), 'bob joining');

  const last3 = await bobSub.history({ limit: 3 });
  assert.deepEqual(
    last3.publications.map((p) => p.data.n),
    [3, 4, 5],
  );
  assert.equal(last3.publications[0].channel, 'room:history');
  const since = await bob.history('room:history', { since: { epoch: last3.epoch, offset: 3 } });
  assert.deepEqual(
    since.publications.map((p) => p.offset),
    [4, 5],
  );

  const { clients } = await aliceSub.presence();
  assert.deepEqual(clients.map((c) => c.user).sort(), ['alice', 'bob']);

  await bob.ping();
  await bobSub.unsubscribe();
  assert.equal(bobSub.state, 'unsubscribed');
  assert.equal(bob.getSubscription('room:history'), undefined);
  await waitFor(() => leaves.includes('bob'), 'bob leaving');

  // After unsubscribing, the channel can be subscribed again from scratch.
  const again = bob.subscribe('room:history');
  await again.ready();
  assert.equal(again.position?.offset, 5);
});

test('subscriptions and requests made while connecting wait for the connection', async (t) => {
  const client = new SoriClient({ url: server.url, token: await server.token('carol'), WebSocket });
  t.after(() => client.disconnect());
  const connecting = client.connect();
  assert.equal(client.state, 'connecting');
  const sub = client.subscribe('room:early');
  const published = client.publish('room:early', { early: true });
  const got = nextEvent(sub, 'publication');
  const [pos] = await Promise.all([published, connecting]);
  assert.equal(pos.offset, 1);
  const [p] = await got;
  assert.deepEqual([p.offset, p.data], [1, { early: true }]);
});

test('a publication whose data spans several lines is one message', async (t) => {
  const client = new SoriClient({ url: server.url, token: await server.token('dave'), WebSocket });
  t.after(() => client.disconnect());
  await client.connect();
  const sub = client.subscribe('room:lines');
  await sub.ready();
  const got = nextEvent(sub, 'publication');
  // The server API keeps the publisher's JSON verbatim, newlines included.
  const res = await fetch(`${server.url}/api/publish`, {
    method: 'POST',
    headers: { Authorization: 'apikey test-api-key-0123456789' },
    body: '{"channel":"room:lines","data":{\n"a": 1,\n"b": "x\\ny"\n}}',
  });
  assert.equal(res.status, 200);
  const [p] = await got;
  assert.deepEqual(p.data, { a: 1, b: 'x\ny' });
});
