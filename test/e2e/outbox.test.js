// The outbox, end to end: messages typed while the server is down are kept
// (also across a reload of the page), shown as pending, and sent when the
// connection is back; an acknowledgement lost on the way (the test drops the
// publish reply and cuts the connection) makes the SDK send the message again
// with the same client id, and the server's deduplication shows it once —
// for the sender, for the other user, and in the stored history.
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

test('offline outbox with a server restart and a lost acknowledgement: each message appears exactly once', async () => {
  // Alice's WebSocket goes through the test: it can refuse connections
  // (hold), and drop the reply to one publish, then cut the connection
  // (a lost acknowledgement: the server committed, the page never heard).
  let hold = false;
  let loseAckOf = ''; // a message text: its publish's reply is dropped
  const lost = []; // client ids whose reply was dropped
  const publishes = []; // [client_id, text] of every publish alice sent
  const aliceSocket = (ws) => {
    if (hold) { ws.close({ code: 4000, reason: 'held offline by the test' }); return; }
    const srv = ws.connectToServer();
    const dropIds = new Set();
    ws.onMessage((frame) => {
      for (const line of String(frame).split('\n').filter(Boolean)) {
        const cmd = JSON.parse(line);
        if (cmd.op === 'publish' && cmd.data?.client_id) {
          publishes.push([cmd.data.client_id, cmd.data.text]);
          if (loseAckOf && cmd.data.text === loseAckOf) { dropIds.add(cmd.id); lost.push(cmd.data.client_id); loseAckOf = ''; }
        }
      }
      srv.send(frame);
    });
    srv.onMessage((frame) => {
      const lines = String(frame).split('\n').filter(Boolean);
      const dropped = lines.filter((l) => dropIds.has(JSON.parse(l).id));
      if (!dropped.length) { ws.send(frame); return; }
      const rest = lines.filter((l) => !dropIds.has(JSON.parse(l).id));
      if (rest.length) ws.send(rest.join('\n'));
      ws.close({ code: 4000, reason: 'acknowledgement lost by the test' });
      srv.close();
    });
  };

  let alice;
  let bob;
  ({ server, browser, pages: [alice, bob] } = await chatFixture({
    users: ['alice', 'bob'], room: 'outbox', beforeSignUp: ([al]) => al.context.routeWebSocket(/\/ws$/, aliceSocket),
  }));
  const { port, dataDir, turnPort } = server;
  const a = alice.page;
  const b = bob.page;
  await send(a, 'online 1');
  await messageLocator(b, 'online 1').waitFor();

  // The server crashes; alice writes while it is down.
  hold = true;
  await server.stop('SIGKILL');
  await a.locator('#conn[data-state="reconnecting"], #conn[data-state="disconnected"]').waitFor();
  const box = a.getByLabel('Message', { exact: true });
  for (const text of ['offline 1', 'offline **2**']) {
    await box.fill(text);
    await box.press('Enter');
  }
  const pending = a.locator('#pending .msg.pending');
  await waitFor(async () => (await pending.count()) === 2, { message: 'two pending messages' });
  await a.locator('#pending .msg-status', { hasText: 'Waiting for the connection' }).first().waitFor();
  await a.locator('#pending strong', { hasText: '2' }).waitFor(); // rendered like any message
  const stored = await a.evaluate(() => JSON.parse(localStorage.getItem('sori.outbox.alice') ?? '[]').map((it) => it.data.text));
  assert.deepEqual(stored, ['offline 1', 'offline **2**'], 'queued in localStorage');
  await screenshot(a, 'outbox-1-offline');

  // The server comes back; alice's page is still held offline and is
  // reloaded: the queue survives the reload.
  server = await startServer({ port, dataDir, turnPort });
  await waitOnline(b, 30000);
  await a.reload();
  await waitFor(async () => (await pending.count()) === 2, { message: 'the pending messages after a reload' });
  assert.equal(await messageLocator(b, 'offline 1').count(), 0, 'nothing was sent while held');

  // Back online: the first resend loses its acknowledgement.
  loseAckOf = 'offline 1';
  hold = false;
  await waitOnline(a, 60000);
  await waitFor(() => lost.length === 1, { message: 'an acknowledgement to be lost', timeout: 30000 });
  for (const p of [a, b]) {
    await messageLocator(p, 'offline 1').waitFor({ timeout: 30000 });
    await p.locator('#messages .msg-body', { hasText: 'offline 2' }).waitFor({ timeout: 30000 });
  }
  await waitFor(async () => (await pending.count()) === 0, { message: 'the outbox to empty' });
  // The message whose reply was lost went out twice, with one client id.
  assert.ok(publishes.filter(([id]) => id === lost[0]).length >= 2, `resent with the same id: ${JSON.stringify(publishes)}`);
  await send(a, 'online 2');

  const expected = ['online 1', 'offline 1', 'offline 2', 'online 2'];
  for (const p of [a, b]) {
    await messageLocator(p, 'online 2').waitFor();
    assert.deepEqual(await messageTexts(p), expected, 'each message once, in order');
  }
  // The stored history has each once too (a reload shows it from REST).
  await b.reload();
  await waitOnline(b);
  await messageLocator(b, 'online 2').waitFor();
  assert.deepEqual(await messageTexts(b), expected);
  assert.equal(await a.evaluate(() => localStorage.getItem('sori.outbox.alice')), null, 'the outbox is empty');
  await screenshot(a, 'outbox-2-delivered');
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});
