// Client logic against a scripted transport: the cases a well-behaved server
// never produces (duplicates, overlapping recovery) and the close-code policy.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CloseCode, SoriClient, Transport, backoffDelay, shouldReconnect } from '../src/index.js';
import { splitMessages } from '../src/codec.js';
import { nextEvent, waitFor } from './harness.js';

/** Every ScriptedTransport, newest last. @type {ScriptedTransport[]} */
const created = [];

/**
 * A transport played by the test: `serve` receives every command the
 * client sends and answers through the transport's helpers.
 */
class ScriptedTransport extends Transport {
  /** @param {(command: any, transport: ScriptedTransport) => void} serve */
  constructor(serve) {
    super();
    this.serve = serve;
    this.closed = false;
    created.push(this);
  }
  get name() {
    return 'scripted';
  }
  async open() {}
  /** @param {string} frame */
  send(frame) {
    for (const line of frame.split('\n')) this.serve(JSON.parse(line), this);
  }
  close() {
    this.closed = true;
  }
  /** Server → client, as one frame of JSON lines. @param {...any} messages */
  push(...messages) {
    queueMicrotask(() => this.emit('message', messages.map((m) => JSON.stringify(m)).join('\n')));
  }
  /** @param {number} code */
  drop(code) {
    queueMicrotask(() => this.emit('close', { code, reason: `test close ${code}` }));
  }
}

/** Answers connect and ping; other commands go to `more`. */
function basicServer(more = (/** @type {any} */ _c, /** @type {ScriptedTransport} */ _t) => {}, connectResult = {}) {
  return (/** @type {any} */ c, /** @type {ScriptedTransport} */ t) => {
    if (c.op === 'connect') t.push({ id: c.id, result: { client: 'c1', user: 'u', ...connectResult } });
    else if (c.op === 'ping') t.push({ id: c.id, result: {} });
    else more(c, t);
  };
}

const pub = (/** @type {number} */ offset) => ({ push: 'pub', channel: 'room:a', offset, data: { offset } });

test('publications already delivered are dropped by offset', async (t) => {
  const client = new SoriClient({
    url: 'http://sori.invalid',
    transports: [() => new ScriptedTransport(basicServer((c, tr) => {
      if (c.op === 'subscribe') {
        tr.push({ id: c.id, result: { epoch: 'e1', offset: 0, recoverable: true } }, pub(1), pub(2), pub(2), pub(1), pub(3));
      }
    }))],
  });
  t.after(() => client.disconnect());
  const offsets = [];
  const sub = client.subscribe('room:a', { onPublication: (p) => offsets.push(p.offset) });
  await client.connect();
  await waitFor(() => offsets.length >= 3, 'three publications');
  await client.ping();
  assert.deepEqual(offsets, [1, 2, 3]);
  assert.equal(sub.duplicatesDropped, 2);
});

test('a resume sends the last offset, and overlapping recovered publications are dropped', async (t) => {
  const subscribes = [];
  let connection = 0;
  const client = new SoriClient({
    url: 'http://sori.invalid',
    reconnect: { minDelay: 1, maxDelay: 1 },
    transports: [() => {
      const n = ++connection;
      return new ScriptedTransport(basicServer((c, tr) => {
        if (c.op !== 'subscribe') return;
        subscribes.push(c);
        if (n === 1) {
          tr.push({ id: c.id, result: { epoch: 'e1', offset: 0, recoverable: true } }, pub(1), pub(2), pub(3));
        } else {
          const recovered = [2, 3, 4].map((o) => ({ offset: o, data: { offset: o } }));
          tr.push({ id: c.id, result: { epoch: 'e1', offset: 4, recoverable: true, recovered: true, publications: recovered } }, pub(4), pub(5));
        }
      }));
    }],
  });
  t.after(() => client.disconnect());
  const offsets = [];
  const sub = client.subscribe('room:a', { onPublication: (p) => offsets.push(p.offset) });
  await client.connect();
  await waitFor(() => offsets.length === 3, 'the first connection');
  const resumed = nextEvent(sub, 'subscribed', (e) => e.resumed);
  // The server goes away with a code that asks for a reconnect.
  const states = [];
  client.on('state', (s, info) => states.push([s, info.code]));
  /** @type {ScriptedTransport} */ (created.at(-1)).drop(CloseCode.SLOW_CONSUMER);
  const [event] = await resumed;
  await waitFor(() => offsets.length >= 5, 'the second connection');
  await client.ping();

  assert.deepEqual(subscribes[1], { id: subscribes[1].id, op: 'subscribe', channel: 'room:a', recover: true, epoch: 'e1', offset: 3 });
  assert.deepEqual(offsets, [1, 2, 3, 4, 5]);
  assert.equal(sub.duplicatesDropped, 3);
  assert.deepEqual({ recovered: event.recovered, recoveredCount: event.recoveredCount }, { recovered: true, recoveredCount: 3 });
  assert.deepEqual(states.slice(0, 2), [['reconnecting', 4001], ['connected', undefined]]);
});

test('close codes: which reconnect and which end the client', async (t) => {
  const expectReconnect = [1001, 1006, 1011, 4000, 4001, 4002, 4004, 4499];
  const expectFinal = [1000, 1002, 1003, 1007, 1008, 1009, 4500, 4501, 4502, 4503, 4504, 4505, 4999];
  for (const code of expectReconnect) assert.equal(shouldReconnect(code), true, `code ${code}`);
  for (const code of expectFinal) assert.equal(shouldReconnect(code), false, `code ${code}`);

  // The same policy, seen through the client's states.
  for (const code of [...expectReconnect, ...expectFinal]) {
    /** @type {ScriptedTransport|null} */
    let transport = null;
    const client = new SoriClient({
      url: 'http://sori.invalid',
      reconnect: { minDelay: 60_000, maxDelay: 60_000 },
      transports: [() => (transport = new ScriptedTransport(basicServer()))],
    });
    await client.connect();
    const next = nextEvent(client, 'state');
    /** @type {ScriptedTransport} */ (/** @type {unknown} */ (transport)).drop(code);
    const [state, info] = await next;
    assert.equal(state, expectFinal.includes(code) ? 'disconnected' : 'reconnecting', `code ${code}`);
    assert.equal(info.code, code);
    client.disconnect();
  }
  t.diagnostic('policy checked for ' + (expectReconnect.length + expectFinal.length) + ' codes');
});

test('a disconnect push decides by its reconnect flag', async () => {
  for (const reconnect of [true, false]) {
    /** @type {ScriptedTransport|null} */
    let transport = null;
    const client = new SoriClient({
      url: 'http://sori.invalid',
      reconnect: { minDelay: 60_000, maxDelay: 60_000 },
      transports: [() => (transport = new ScriptedTransport(basicServer()))],
    });
    await client.connect();
    const next = nextEvent(client, 'state');
    /** @type {ScriptedTransport} */ (/** @type {unknown} */ (transport)).push({ push: 'disconnect', code: 4004, reason: 'x', reconnect });
    const [state] = await next;
    assert.equal(state, reconnect ? 'reconnecting' : 'disconnected');
    assert.equal(/** @type {ScriptedTransport} */ (/** @type {unknown} */ (transport)).closed, true);
    client.disconnect();
  }
});

test('a connection that stops answering pings is replaced', async (t) => {
  let connections = 0;
  const client = new SoriClient({
    url: 'http://sori.invalid',
    requestTimeout: 200,
    reconnect: { minDelay: 1, maxDelay: 1 },
    transports: [() => {
      connections++;
      // The first connection answers connect, then nothing: a dead link.
      const silent = connections === 1;
      return new ScriptedTransport((c, tr) => {
        if (c.op === 'connect') tr.push({ id: c.id, result: { client: `c${connections}`, ping: 1 } });
        else if (!silent && c.op === 'ping') tr.push({ id: c.id, result: {} });
      });
    }],
  });
  t.after(() => client.disconnect());
  await client.connect();
  const [, info] = await nextEvent(client, 'state', (s) => s === 'reconnecting');
  assert.equal(info.code, CloseCode.HEARTBEAT_TIMEOUT);
  const [second] = await nextEvent(client, 'connected');
  assert.equal(second.client, 'c2');
});

test('the server removing a subscription ends it', async (t) => {
  /** @type {ScriptedTransport|null} */
  let transport = null;
  const client = new SoriClient({
    url: 'http://sori.invalid',
    transports: [() => (transport = new ScriptedTransport(basicServer((c, tr) => {
      if (c.op === 'subscribe') tr.push({ id: c.id, result: { epoch: 'e', offset: 0 } });
    })))],
  });
  t.after(() => client.disconnect());
  const sub = client.subscribe('room:a');
  await client.connect();
  await sub.ready();
  const ended = nextEvent(sub, 'unsubscribed');
  /** @type {ScriptedTransport} */ (/** @type {unknown} */ (transport)).push({ push: 'unsub', channel: 'room:a', code: 2000, reason: 'unsubscribed by server' });
  const [event] = await ended;
  assert.deepEqual(event, { code: 2000, reason: 'unsubscribed by server' });
  assert.equal(client.getSubscription('room:a'), undefined);
});

test('a push that belongs to no channel is emitted as a client push event', async (t) => {
  /** @type {ScriptedTransport|null} */
  let transport = null;
  const client = new SoriClient({
    url: 'http://sori.invalid',
    transports: [() => (transport = new ScriptedTransport(basicServer()))],
  });
  t.after(() => client.disconnect());
  await client.connect();
  const got = nextEvent(client, 'push');
  const signal = { push: 'call', room: 'r1', event: 'signal', from: 'p2', description: { type: 'offer', sdp: 'v=0' } };
  /** @type {ScriptedTransport} */ (/** @type {unknown} */ (transport)).push(signal);
  const [msg] = await got;
  assert.deepEqual(msg, signal);
});

test('backoff grows by factor up to maxDelay; full jitter spans [0, ceiling]', () => {
  const options = { minDelay: 100, maxDelay: 1000, factor: 2, jitter: 1, enabled: true };
  const top = () => 0; // random() = 0 → the ceiling itself
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, options, top)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.ok(backoffDelay(3, options, () => 0.999999) < 1);
  assert.equal(backoffDelay(3, { ...options, jitter: 0 }, () => 0.5), 800);
  assert.equal(backoffDelay(3, { ...options, jitter: 0.5 }, () => 0.5), 600);
});

test('splitMessages cuts at object boundaries, not at newlines inside data', () => {
  assert.deepEqual(splitMessages('{"a":1}\n{"b":"}{\\"\\n"}\n{"c":{\n"d":[1,\n2]}}'), [
    '{"a":1}',
    '{"b":"}{\\"\\n"}',
    '{"c":{\n"d":[1,\n2]}}',
  ]);
  assert.deepEqual(splitMessages('{"a":1}{"b":2}'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(splitMessages('{"broken":'), ['{"broken":']);
});
