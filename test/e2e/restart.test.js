// A server restart mid-conversation: the process is killed (SIGKILL) and
// started again on the same port and data dir. Both pages must show the
// outage, come back online by themselves, and show every message sent
// meanwhile exactly once, in order. Alice's page is held offline a little
// longer than Bob's (its WebSocket attempts are refused by the test), so the
// messages Bob sends in between reach her only through the SDK's resume
// from her last offset, which the durable chat store keeps across restarts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatFixture, startServer, screenshot, waitFor } from './helpers.js';
import { send, messageLocator, messageTexts, waitOnline } from './driver.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('a server restart mid-conversation recovers with no lost message', async () => {
  // Alice's WebSocket goes through the test, which can refuse new
  // connections while holdAlice is set.
  let holdAlice = false;
  let aliceRefused = 0;
  const aliceSocket = (ws) => {
    if (holdAlice) {
      aliceRefused++;
      ws.close({ code: 4000, reason: 'held offline by the test' });
      return;
    }
    ws.connectToServer();
  };

  // Frames alice's page receives, to see how the missed messages came back.
  const aliceFrames = [];
  let alice;
  let bob;
  ({ server, browser, pages: [alice, bob] } = await chatFixture({
    users: ['alice', 'bob'], room: 'ops',
    beforeSignUp: async ([al]) => {
      await al.context.routeWebSocket(/\/ws$/, aliceSocket);
      al.page.on('websocket', (ws) => ws.on('framereceived', (f) => aliceFrames.push(String(f.payload))));
    },
  }));
  const { port, dataDir, turnPort } = server;
  const a = alice.page;
  const b = bob.page;
  await send(a, 'before 1 (alice)');
  await messageLocator(b, 'before 1 (alice)').waitFor();
  await send(b, 'before 2 (bob)');
  await messageLocator(a, 'before 2 (bob)').waitFor();

  // Crash the server.
  holdAlice = true;
  await server.stop('SIGKILL');
  for (const p of [a, b]) {
    await p.locator('#conn[data-state="reconnecting"], #conn[data-state="disconnected"]').waitFor();
  }
  await screenshot(b, 'restart-1-server-down');

  // Start it again on the same port and data dir.
  server = await startServer({ port, dataDir, turnPort });
  await waitOnline(b, 30000);
  assert.notEqual(await a.locator('#conn').getAttribute('data-state'), 'connected', 'alice is still held offline');

  // Bob talks while Alice is away.
  const missed = ['while away 1', 'while away 2 <b>not bold</b>', 'while away 3'];
  for (const text of missed) await send(b, text);
  await waitFor(() => aliceRefused > 0, { message: 'alice to try (and fail) to reconnect', timeout: 30000 });
  assert.equal(await messageLocator(a, 'while away 1').count(), 0, 'alice has not seen them yet');
  await screenshot(a, 'restart-2-alice-offline');

  // Alice comes back: the indicator recovers and the missed messages appear.
  holdAlice = false;
  await waitOnline(a, 60000);
  for (const text of missed) await messageLocator(a, text).waitFor();
  // They came with the resubscribe reply (recovered from the store), not as a reload.
  const recovered = aliceFrames.flatMap((f) => f.split('\n')).filter(Boolean).map((l) => JSON.parse(l))
    .find((m) => m.result?.recovered === true && m.result.publications?.length);
  assert.ok(recovered, 'a subscribe reply recovered the missed publications');
  assert.deepEqual(recovered.result.publications.map((p) => p.data.text), missed);
  await send(a, 'after (alice)');
  await messageLocator(b, 'after (alice)').waitFor();

  const expected = ['before 1 (alice)', 'before 2 (bob)', ...missed, 'after (alice)'];
  for (const p of [a, b]) {
    await waitFor(async () => (await messageTexts(p)).length >= expected.length, { message: 'all messages' });
    assert.deepEqual(await messageTexts(p), expected, 'every message once, in order');
  }
  // A reload shows the same conversation from the store.
  await a.reload();
  await waitOnline(a);
  await messageLocator(a, 'after (alice)').waitFor();
  assert.deepEqual(await messageTexts(a), expected);
  await screenshot(a, 'restart-3-recovered');
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});
