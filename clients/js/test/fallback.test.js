import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ServerErrorCode, SoriClient, SoriError } from '../src/index.js';
import { nextEvent, startServer, waitFor } from './harness.js';

/** @type {import('./harness.js').TestServer} */
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/** A WebSocket that a proxy or firewall blocks: the handshake never succeeds. */
class BlockedWebSocket {
  constructor() {
    throw new Error('WebSocket blocked');
  }
}

test('WebSocket blocked: the client falls back to SSE + POST', async (t) => {
  const client = new SoriClient({ url: server.url, token: await server.token('mia'), WebSocket: /** @type {any} */ (BlockedWebSocket) });
  t.after(() => client.disconnect());
  const info = await client.connect();
  assert.equal(info.transport, 'sse');
  assert.equal(client.transport, 'sse');

  const received = [];
  const sub = client.subscribe('room:fallback', { onPublication: (p) => received.push(p.data) });
  await sub.ready();
  await sub.publish('from the client');
  await server.api('/api/publish', { channel: 'room:fallback', data: 'from the backend' });
  await waitFor(() => received.length === 2, 'two publications over SSE');
  assert.deepEqual(received, ['from the client', 'from the backend']);
});

test('WebSocket and SSE unavailable: long polling carries the same protocol', async (t) => {
  const client = new SoriClient({
    url: server.url,
    token: await server.token('noah'),
    WebSocket: /** @type {any} */ (BlockedWebSocket),
    // A fetch that fails event streams, as a buffering proxy effectively does.
    fetch: (input, init) => (String(input).includes('/sse?') ? Promise.reject(new TypeError('stream blocked')) : fetch(input, init)),
  });
  t.after(() => client.disconnect());
  const info = await client.connect();
  assert.equal(info.transport, 'longpoll');

  const sub = client.subscribe('room:poll');
  await sub.ready();
  const got = nextEvent(sub, 'publication');
  await server.api('/api/publish', { channel: 'room:poll', data: { n: 1 } });
  const [p] = await got;
  assert.deepEqual([p.offset, p.data], [1, { n: 1 }]);
  // Typed errors arrive the same way.
  await assert.rejects(client.publish('feed:x', 1), (e) => e instanceof SoriError && e.code === ServerErrorCode.PERMISSION_DENIED);
  // Many commands at once go out batched, in order.
  const positions = await Promise.all(Array.from({ length: 20 }, (_, i) => sub.publish(i)));
  assert.deepEqual(
    positions.map((pos) => pos.offset),
    Array.from({ length: 20 }, (_, i) => i + 2),
  );
});

test('the transports option restricts and orders the choice', async (t) => {
  const client = new SoriClient({ url: server.url, token: await server.token('olga'), transports: ['longpoll'] });
  t.after(() => client.disconnect());
  assert.equal((await client.connect()).transport, 'longpoll');
  assert.throws(() => new SoriClient({ url: server.url, transports: [/** @type {any} */ ('carrier-pigeon')] }), TypeError);
});
