// Call state for members outside the call (docs/calls.md, "Call state
// outside the call"): two headless Chromium pages. When alice joins the call
// of a group room, bob (in the room, not in the call) sees "Call in progress:
// alice" in the room header, from the live channel; it goes when she
// leaves. A page that opens the room during a call sees it at once (from
// call.status). A call alice starts in her direct room with bob rings bob:
// a prompt he answers, which opens the room and joins him to the call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, signUp, createRoom, joinPublicRoom, openRoom } from './driver.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('members outside a call see it in the room header, and a DM call rings', async () => {
  server = await startServer();
  browser = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required']);
  const alice = await newPage(browser, server.url);
  const bob = await newPage(browser, server.url);
  await maybeRouteSDK(alice.context);
  await maybeRouteSDK(bob.context);
  const a = alice.page;
  const b = bob.page;
  await signUp(a, 'alice');
  await signUp(b, 'bob');
  await createRoom(a, 'lobby');
  await createRoom(b, 'elsewhere');
  await joinPublicRoom(b, 'lobby');

  const status = b.locator('#call-slot .call-status');
  assert.equal(await status.textContent(), '');
  await a.getByRole('button', { name: 'Join call' }).click();
  await a.locator('#call-panel .tile.local').waitFor();
  await status.filter({ hasText: 'Call in progress: alice' }).waitFor();
  await screenshot(b, 'call-state-in-progress');

  // Opening the room later shows the call too (call.status), and it goes
  // when alice leaves (the live channel).
  await openRoom(b, 'elsewhere');
  await waitFor(async () => (await status.textContent()) === '', { message: 'no call in the other room' });
  await openRoom(b, 'lobby');
  await status.filter({ hasText: 'Call in progress: alice' }).waitFor();
  await a.getByRole('button', { name: 'Leave call' }).first().click();
  await waitFor(async () => (await status.textContent()) === '', { message: 'the call in progress to end' });

  // A direct call rings bob; answering opens the room and joins the call.
  await a.locator('#dm-username').fill('bob');
  await a.locator('#dm-form').getByRole('button').click();
  await a.locator('#room-title', { hasText: 'bob' }).waitFor();
  await a.getByRole('button', { name: 'Join call' }).click();
  await a.locator('#call-panel .tile.local').waitFor();
  const ring = b.getByRole('alertdialog', { name: 'Incoming call' });
  await ring.getByText('alice is calling').waitFor();
  await screenshot(b, 'call-ring');
  await ring.getByRole('button', { name: 'Answer' }).click();
  await b.locator('#room-title', { hasText: 'alice' }).waitFor();
  await b.locator('#call-panel .tile[data-user="alice"]').waitFor();
  await a.locator('#call-panel .tile[data-user="bob"]').waitFor();
  assert.equal(await ring.count(), 0);
  for (const p of [a, b]) assert.deepEqual(p.errors, []);
});
