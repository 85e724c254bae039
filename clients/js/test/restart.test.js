import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SoriClient } from '../src/index.js';
import { WebSocket, nextEvent, startServer, waitFor } from './harness.js';

for (const transport of ['websocket', 'sse', 'longpoll']) {
  test(`${transport}: after a server restart the client reconnects by itself and reports the new epoch`, async (t) => {
    let server = await startServer();
    t.after(() => server.stop());
    const channel = 'room:restart';
    const client = new SoriClient({
      url: server.url,
      // The restarted server keeps its data dir, so its token secret: the
      // token stays valid; getToken is called only when one is needed.
      getToken: () => server.token('ivan'),
      WebSocket,
      transports: [transport],
      reconnect: { minDelay: 50, maxDelay: 300 },
    });
    t.after(() => client.disconnect());
    const states = [];
    client.on('state', (s) => states.push(s));
    const received = [];
    const sub = client.subscribe(channel, { onPublication: (p) => received.push(p) });
    await client.connect();
    await sub.ready();
    for (let i = 1; i <= 3; i++) await server.api('/api/publish', { channel, data: { i } });
    await waitFor(() => received.length === 3, 'three publications before the restart');
    const before = sub.position;
    assert.equal(before?.offset, 3);

    const unrecovered = nextEvent(sub, 'unrecovered');
    await server.kill();
    await waitFor(() => client.state === 'reconnecting', 'the client noticing the dead server');
    // Same port and data dir: what a process supervisor does.
    server = await startServer({ port: server.port, dataDir: server.dataDir });

    const [event] = await unrecovered;
    assert.deepEqual(event.previous, before);
    assert.notEqual(event.current.epoch, before?.epoch, 'an in-memory channel gets a new epoch');
    assert.equal(client.state, 'connected');
    assert.equal(states.at(-1), 'connected');
    assert.ok(states.includes('reconnecting'));

    // Publications continue in the new epoch, and the app can reload
    // through history.
    await server.api('/api/publish', { channel, data: { i: 'after' } });
    await waitFor(() => received.length === 4, 'a publication after the restart');
    assert.deepEqual([received[3].offset, received[3].data.i], [1, 'after']);
    assert.deepEqual(sub.position, { epoch: event.current.epoch, offset: 1 });
    const history = await sub.history({ limit: 10 });
    assert.deepEqual(
      history.publications.map((p) => p.data.i),
      ['after'],
    );
  });
}
