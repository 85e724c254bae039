// A call in a room between two headless Chromium pages with fake camera and
// microphone: both join through the app's call panel, negotiate over Sori's
// signaling (perfect negotiation), and each receives the other's video:
// getStats shows inbound video with framesDecoded > 0 (the app writes it
// on the tile), with its resolution and bitrate; the fake microphone's
// beeps mark the other's tile speaking (audio level from getStats). Mute, camera and screen-share state reach the other side,
// a shared screen (Chromium's fake display capture) arrives as a large tile
// of its own that decodes frames and goes when the share stops, a mesh tile
// has no quality menu, leaving ends the other's tile, and a member kicked
// from the room is taken out of its call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, screenshot, waitFor } from './helpers.js';
import { signUp, createRoom, joinPublicRoom } from './driver.js';
import { launchCallBrowser, newCallPage, decodingTile, decodingScreen } from './calls-lib.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('two pages join a call and decode each other\'s video', async () => {
  server = await startServer();
  browser = await launchCallBrowser();
  const alice = await newCallPage(browser, server.url);
  const bob = await newCallPage(browser, server.url);
  const a = alice.page;
  const b = bob.page;
  await signUp(a, 'alice');
  await signUp(b, 'bob');
  await createRoom(a, 'standup');
  await joinPublicRoom(b, 'standup');

  await a.getByRole('button', { name: 'Join call' }).click();
  await a.locator('#call-panel .tile.local').waitFor();
  await b.getByRole('button', { name: 'Join call' }).click();

  for (const [p, other] of [[a, 'bob'], [b, 'alice']]) {
    const tile = p.locator(`#call-panel .tile[data-user="${other}"]`);
    await tile.waitFor();
    await decodingTile(p, other).waitFor();
    await tile.locator('.tile-quality', { hasText: /good|fair|poor/ }).waitFor();
    // The quality line names the received resolution and bitrate.
    await waitFor(async () => /^\d+x\d+$/.test(await tile.getAttribute('data-resolution') ?? '') && Number(await tile.getAttribute('data-kbps')) > 0,
      { timeout: 60000, interval: 250, message: `${other}'s resolution and bitrate on the tile` });
    await tile.locator('.tile-quality', { hasText: /\d+×\d+ · \d+ kbit\/s/ }).waitFor();
    // The fake microphone beeps: its audio level marks the tile speaking (mesh: from getStats).
    await p.locator(`#call-panel .tile.speaking[data-user="${other}"]`).waitFor();
  }
  await screenshot(a, 'call-alice');

  // Mute and camera state are shown to the other participant.
  await a.getByRole('button', { name: 'Mute' }).click();
  await b.locator('#call-panel .tile[data-user="alice"] .tile-name', { hasText: 'muted' }).waitFor();
  await a.getByRole('button', { name: 'Camera off' }).click();
  await b.locator('#call-panel .tile[data-user="alice"] .tile-name', { hasText: 'camera off' }).waitFor();
  await a.getByRole('button', { name: 'Unmute' }).click();
  await b.locator('#call-panel .tile[data-user="alice"] .tile-name', { hasText: /^alice · camera off$/ }).waitFor();

  // A mesh sends one stream per camera: no quality menu on the tiles.
  assert.equal(await b.locator('#call-panel .tile[data-user="alice"] .tile-layer').isHidden(), true);

  // Screen sharing: bob gets alice's screen as a large tile of its own,
  // which decodes frames, and her camera tile keeps its one video.
  const aliceTile = b.locator('#call-panel .tile[data-user="alice"]');
  await a.getByRole('button', { name: 'Share screen' }).click();
  await aliceTile.locator('.tile-name', { hasText: 'sharing' }).waitFor();
  const screenTile = b.locator('#call-panel .tile.screen-tile[data-screen-of="alice"]');
  await screenTile.locator('video[aria-label="alice\'s screen"]').waitFor();
  await decodingScreen(b, 'alice').waitFor();
  assert.equal(await aliceTile.locator('video').count(), 1);
  await screenshot(b, 'call-bob-screen-share');
  await a.getByRole('button', { name: 'Stop sharing' }).click();
  await waitFor(async () => !(await aliceTile.locator('.tile-name').textContent()).includes('sharing'), { message: 'sharing to stop' });
  await screenTile.waitFor({ state: 'detached' });

  // Leaving removes the tile on the other side.
  await a.getByRole('button', { name: 'Leave call' }).first().click();
  await waitFor(async () => (await b.locator('#call-panel .tile[data-user="alice"]').count()) === 0, { message: 'alice\'s tile to go' });
  assert.equal(await a.locator('#call-panel').isHidden(), true);
  await screenshot(b, 'call-bob-after-leave');

  // Kicked from the room, bob is taken out of its call: his page ends it.
  assert.equal(await b.locator('#call-panel').isHidden(), false);
  const status = await a.evaluate(async (user) => {
    const csrf = document.cookie.match(/(?:^|;\s*)sori_csrf=([^;]+)/)?.[1] ?? '';
    const rooms = await (await fetch('/api/v1/rooms', { credentials: 'same-origin' })).json();
    const room = (rooms.rooms ?? rooms).find((r) => r.name === 'standup');
    const res = await fetch(`/api/v1/rooms/${room.id}/members/${user}`,
      { method: 'DELETE', credentials: 'same-origin', headers: { 'X-CSRF-Token': decodeURIComponent(csrf) } });
    return res.status;
  }, 'bob');
  assert.equal(status, 200);
  await waitFor(async () => b.locator('#call-panel').isHidden(), { message: 'bob\'s call to end after the kick' });
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});
