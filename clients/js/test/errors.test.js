import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ClientErrorCode, CloseCode, ServerErrorCode, SoriClient, SoriError } from '../src/index.js';
import { WebSocket, nextEvent, startServer } from './harness.js';

/** @type {import('./harness.js').TestServer} */
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/**
 * Asserts that promise rejects with a SoriError of the given code.
 * @param {Promise<unknown>} promise
 * @param {number|string} code
 */
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof SoriError, `expected a SoriError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** @param {import('node:test').TestContext} t */
async function connected(t, user = 'erin', options = {}) {
  const client = new SoriClient({ url: server.url, token: await server.token(user), WebSocket, ...options });
  t.after(() => client.disconnect());
  await client.connect();
  return client;
}

test('the server refusing a command rejects with its numbered code', async (t) => {
  const client = await connected(t);

  // Only the server publishes in feed:.
  await rejectsWith(client.publish('feed:ticks', 1), ServerErrorCode.PERMISSION_DENIED);
  // Not a valid channel name; not a configured namespace.
  await rejectsWith(client.publish('room:bad name!', 1), ServerErrorCode.INVALID_CHANNEL);
  await rejectsWith(client.history('nowhere:x', { limit: 1 }), ServerErrorCode.INVALID_CHANNEL);
  // plain: keeps no history.
  await rejectsWith(client.history('plain:x', { limit: 1 }), ServerErrorCode.UNAVAILABLE);
  await rejectsWith(client.rpc('no.such.method', {}), ServerErrorCode.UNKNOWN_METHOD);

  const err = await client.publish('feed:ticks', 1).catch((e) => e);
  assert.equal(err.fromServer, true);
  assert.equal(err.name, 'SoriError');
  assert.ok(err.message.length > 0);
  // The connection survives refused commands.
  await client.ping();
});

test('a refused subscribe ends the subscription with the server code', async (t) => {
  const client = await connected(t);

  const denied = client.subscribe('priv:secret'); // the token grants no priv: channel
  const errorEvent = nextEvent(denied, 'error');
  await rejectsWith(denied.ready(), ServerErrorCode.PERMISSION_DENIED);
  const [err] = await errorEvent;
  assert.equal(err.code, ServerErrorCode.PERMISSION_DENIED);
  assert.equal(denied.state, 'unsubscribed');
  assert.equal(client.getSubscription('priv:secret'), undefined);

  await rejectsWith(client.subscribe('nowhere:x').ready(), ServerErrorCode.INVALID_CHANNEL);

  // A token that grants the channel may subscribe.
  const granted = new SoriClient({
    url: server.url,
    token: await server.token('erin', { channels: ['priv:*'] }),
    WebSocket,
  });
  t.after(() => granted.disconnect());
  await granted.connect();
  await granted.subscribe('priv:secret').ready();

  assert.throws(() => granted.subscribe('priv:secret'), (e) => e instanceof SoriError && e.code === ServerErrorCode.ALREADY_SUBSCRIBED);
});

test('a request without a reply within requestTimeout rejects with code timeout', async (t) => {
  const client = await connected(t, 'frank', { requestTimeout: 500 });
  // A stopped server process cannot answer; the kernel still accepts the bytes.
  await server.pause();
  try {
    await rejectsWith(client.ping(), ClientErrorCode.TIMEOUT);
  } finally {
    server.resume();
  }
  await client.ping(); // the late reply to the first ping is ignored, this one counts
});

test('requests pending at disconnect() are rejected, not left hanging', async (t) => {
  const client = await connected(t, 'gina', { requestTimeout: 60_000 });
  await server.pause();
  try {
    const pending = client.publish('room:x', 1);
    const disconnected = nextEvent(client, 'disconnected');
    client.disconnect();
    await rejectsWith(pending, ClientErrorCode.DISCONNECTED);
    const [event] = await disconnected;
    assert.equal(event.code, CloseCode.NORMAL);
    assert.equal(client.state, 'disconnected');
  } finally {
    server.resume();
  }
  await rejectsWith(client.ping(), ClientErrorCode.DISCONNECTED);
});

test('a bad token is final: disconnected with 4501, connect() rejects with 113', async (t) => {
  const client = new SoriClient({ url: server.url, token: 'not-a-jwt', WebSocket, reconnect: { minDelay: 1, maxDelay: 1 } });
  t.after(() => client.disconnect());
  const states = [];
  client.on('state', (s) => states.push(s));
  const disconnected = nextEvent(client, 'disconnected');
  await rejectsWith(client.connect(), ServerErrorCode.INVALID_TOKEN);
  const [event] = await disconnected;
  assert.equal(event.code, CloseCode.UNAUTHORIZED);
  assert.deepEqual(states, ['connecting', 'disconnected']);
});

test('anonymous connections need the server to allow them', async (t) => {
  const client = new SoriClient({ url: server.url, WebSocket });
  t.after(() => client.disconnect());
  await assert.rejects(client.connect(), SoriError);
  assert.equal(client.state, 'disconnected');

  const open = await startServer({ env: { SORI_ALLOW_ANONYMOUS: 'true' } });
  t.after(() => open.stop());
  const anonymous = new SoriClient({ url: open.url, WebSocket });
  t.after(() => anonymous.disconnect());
  const info = await anonymous.connect();
  assert.equal(info.user, '');
  await anonymous.subscribe('feed:ticks').ready();
});

test('requests before connect() reject at once', async () => {
  const client = new SoriClient({ url: server.url, WebSocket });
  await rejectsWith(client.ping(), ClientErrorCode.DISCONNECTED);
});
