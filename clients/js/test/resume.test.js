import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { CloseCode, LongPollTransport, SSETransport, SoriClient, WebSocketTransport } from '../src/index.js';
import { WebSocket, nextEvent, startServer, waitFor } from './harness.js';

/** @type {import('./harness.js').TestServer} */
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

const transports = {
  websocket: WebSocketTransport,
  sse: SSETransport,
  longpoll: LongPollTransport,
};

/**
 * A transport whose open() waits while the gate is shut: the test decides
 * when a reconnect may happen, so it knows which publications were made
 * while the client was away (without depending on timing).
 * @param {new (context: any) => import('../src/index.js').Transport} Base
 */
function gated(Base) {
  const gate = {
    /** @type {Promise<void>} */
    opened: Promise.resolve(),
    release: () => {},
    shut() {
      this.opened = new Promise((resolve) => {
        this.release = resolve;
      });
    },
  };
  const factory = (/** @type {any} */ context) => {
    const transport = new Base(context);
    const open = transport.open.bind(transport);
    transport.open = async () => {
      await gate.opened;
      return open();
    };
    return transport;
  };
  return { gate, factory };
}

for (const [name, Base] of Object.entries(transports)) {
  test(`${name}: forced reconnects while a backend publishes lose and duplicate nothing`, async (t) => {
    const N = 300;
    const rounds = 4;
    const channel = `room:resume-${name}`;
    const { gate, factory } = gated(Base);
    const client = new SoriClient({
      url: server.url,
      token: await server.token(`resumer-${name}`),
      WebSocket,
      transports: [factory],
      reconnect: { minDelay: 1, maxDelay: 20 },
    });
    t.after(() => client.disconnect());
    const reconnects = [];
    client.on('state', (state, info) => {
      if (state === 'reconnecting') reconnects.push(info.code);
    });

    const offsets = [];
    const subscribedEvents = [];
    const sub = client.subscribe(channel, { onPublication: (p) => offsets.push(p.offset) });
    sub.on('subscribed', (e) => subscribedEvents.push(e));
    let unrecovered = 0;
    sub.on('unrecovered', () => unrecovered++);
    await client.connect();
    assert.equal(client.transport, name);
    await sub.ready();

    // The backend publishes N messages, one after the other, through the
    // server API: it never waits for the client.
    let published = 0;
    const publisher = (async () => {
      for (let i = 1; i <= N; i++) {
        await server.api('/api/publish', { channel, data: { i } });
        published = i;
      }
    })();

    for (let round = 1; round <= rounds; round++) {
      await waitFor(() => offsets.length >= (round * N) / (rounds + 1), `round ${round} deliveries`);
      gate.shut();
      const kicked = await server.api('/api/disconnect', { user: `resumer-${name}`, reconnect: true });
      assert.equal(kicked.disconnected, 1);
      const away = published;
      // Publications made while the client cannot reconnect must come back
      // through recovery.
      await waitFor(() => published >= Math.min(N, away + 10), `publications during round ${round}`);
      gate.release();
      await nextEvent(sub, 'subscribed');
    }
    await publisher;
    await waitFor(() => offsets.length >= N, `all ${N} publications`);
    await client.ping(); // anything late (a duplicate) arrives before this reply

    assert.deepEqual(
      offsets,
      Array.from({ length: N }, (_, i) => i + 1),
    );
    assert.equal(unrecovered, 0);
    assert.equal(reconnects.length, rounds);
    assert.ok(
      reconnects.every((code) => code === CloseCode.FORCE_RECONNECT),
      `close codes ${reconnects}`,
    );
    const resumes = subscribedEvents.filter((e) => e.resumed);
    assert.equal(resumes.length, rounds);
    assert.ok(
      resumes.every((e) => e.recovered && e.recoveredCount >= 1),
      JSON.stringify(resumes),
    );
  });
}
