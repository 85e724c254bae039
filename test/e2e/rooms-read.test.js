// The "New messages" line and the unread badge when a room listing is taken
// before the read receipt reached the server (issue 14's known bug): bob's
// WebSocket goes through the test, which holds his chat.read calls while he
// switches rooms (the switch reloads the room list), then lets them through.
// Before the fix the listing's older receipt replaced what bob had read: the
// badge counted the messages he had seen again and, back in the room, the
// line sat above them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, signUp, createRoom, joinPublicRoom, openRoom, send, messageLocator } from './driver.js';

let server;
let browser;
let alice;
let bob;
let holdReads = false;
const held = []; // [{send, cmd}] of bob's chat.read calls held back

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await newPage(browser, server.url);
  bob = await newPage(browser, server.url);
  await maybeRouteSDK(alice.context);
  await maybeRouteSDK(bob.context);
  await bob.context.routeWebSocket(/\/ws$/, (ws) => {
    const srv = ws.connectToServer();
    ws.onMessage((frame) => {
      const lines = String(frame).split('\n').filter(Boolean);
      const pass = [];
      for (const line of lines) {
        const cmd = JSON.parse(line);
        if (holdReads && cmd.op === 'rpc' && cmd.method === 'chat.read') held.push({ send: () => srv.send(line), cmd });
        else pass.push(line);
      }
      if (pass.length) srv.send(pass.join('\n'));
    });
    srv.onMessage((frame) => ws.send(frame));
  });
  await signUp(alice.page, 'alice');
  await signUp(bob.page, 'bob');
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('a room list taken before the read receipt arrived moves neither the "New messages" line nor the badge', async () => {
  const a = alice.page;
  const b = bob.page;
  await createRoom(a, 'lagging');
  await joinPublicRoom(b, 'lagging');
  await send(a, 'seen 1');
  await messageLocator(b, 'seen 1').waitFor();
  // The receipt for "seen 1" reaches the server; those for what follows are held.
  await waitFor(async () => (await bobRooms()).find((r) => r.name === 'lagging')?.unread === 0, { message: "bob's first receipt on the server" });
  holdReads = true;
  await send(a, 'seen 2');
  await send(a, 'seen 3 @bob');
  await messageLocator(b, 'seen 3 @bob').waitFor();
  const last = Number(await messageLocator(b, 'seen 3 @bob').getAttribute('data-seq'));
  await waitFor(() => held.some((x) => x.cmd.data?.seq === last), { message: 'bob reads "seen 3" (held)' });
  // Bob switches rooms: the app reloads the room list while the server still has his older receipt.
  await createRoom(b, 'other');
  const lagging = (await bobRooms()).find((r) => r.name === 'lagging');
  assert.ok(lagging.last_read_seq < last && lagging.unread === 2 && lagging.mentions === 1,
    `the server does not have the receipt yet: ${JSON.stringify(lagging)}`);
  holdReads = false;
  for (const x of held.splice(0)) x.send();
  await send(a, 'while bob was away');
  await send(a, 'and more');
  const entry = b.locator('#room-list a', { hasText: 'lagging' });
  await entry.locator('.badge:not(.mention-badge)', { hasText: /^2$/ }).waitFor();
  assert.equal(await entry.locator('.mention-badge').count(), 0, 'the mention was read');
  await openRoom(b, 'lagging');
  const line = b.locator('#messages .msg', { has: b.locator('.new-line') });
  await line.waitFor();
  assert.equal(await b.locator('#messages .new-line').count(), 1);
  assert.equal(await line.locator('.msg-body').textContent(), 'while bob was away');
  await screenshot(b, 'read-line-after-lagging-list');
});

/** Bob's room list as the server has it (his session cookie). */
async function bobRooms() {
  const res = await bob.context.request.get('/api/v1/rooms');
  assert.equal(res.status(), 200);
  return (await res.json()).rooms;
}
