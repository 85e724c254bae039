// Watching a WHIP-fed stream in the web app (docs/calls.md, "WHIP and WHEP"):
// with the SFU on, alice's page publishes its fake camera over WHIP (the
// way OBS would: POST /rtc/whip/{room} with a connection token), and bob,
// a member of the room, presses "Watch stream": the app plays the room's
// WHEP stream and decodes it (getStats framesDecoded > 0). Before anything
// is published, the app says so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, signUp, createRoom, joinPublicRoom } from './driver.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

/** Publishes the page's fake camera and microphone to room over WHIP; returns the Location. */
function publishWHIP(page, room) {
  return page.evaluate(async (roomId) => {
    const csrf = decodeURIComponent(document.cookie.match(/(?:^|;\s*)sori_csrf=([^;]+)/)?.[1] ?? '');
    const tok = await (await fetch('/api/v1/auth/connect-token', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } })).json();
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    const pc = new RTCPeerConnection();
    for (const t of media.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [media] });
    await pc.setLocalDescription();
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
    });
    const res = await fetch(`/rtc/whip/${roomId}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${tok.token}` }, body: pc.localDescription.sdp,
    });
    if (res.status !== 201) throw new Error(`WHIP answered ${res.status}: ${await res.text()}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    window.whip = pc; // kept alive for the test
    return res.headers.get('Location');
  }, room);
}

test('a member watches a WHIP-fed stream of the room in the app', async () => {
  server = await startServer({ args: ['--sfu-listen', '127.0.0.1:0'] });
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
  await createRoom(a, 'studio');
  await joinPublicRoom(b, 'studio');
  const roomId = await a.evaluate(async () => {
    const rooms = await (await fetch('/api/v1/rooms', { credentials: 'same-origin' })).json();
    return (rooms.rooms ?? rooms).find((r) => r.name === 'studio').id;
  });

  // Nothing published yet: the viewer is told so.
  const panel = b.locator('.stream-panel');
  await b.locator('#call-slot').getByRole('button', { name: 'Watch stream' }).click();
  await panel.getByText('Nothing is streamed in this room now.').waitFor({ timeout: 30000 });
  await panel.getByRole('button', { name: 'Stop watching' }).click();
  assert.equal(await panel.count(), 0);

  const location = await publishWHIP(a, roomId);
  assert.match(location, new RegExp(`^/rtc/whip/${roomId}/`));
  // The publisher's tracks reach the SFU once its media flows: until then
  // WHEP answers 404, and the viewer tries again as a person would.
  await waitFor(async () => {
    if (await panel.count()) await panel.getByRole('button', { name: 'Stop watching' }).click();
    await b.locator('#call-slot').getByRole('button', { name: 'Watch stream' }).click();
    await waitFor(async () => (await panel.getAttribute('data-connection')) === 'connected' ||
      (await panel.getByText(/Cannot watch/).count()) > 0, { timeout: 30000, message: 'the WHEP answer' });
    return (await panel.getAttribute('data-connection')) === 'connected';
  }, { timeout: 60000, interval: 1000, message: 'the stream to play' });
  await waitFor(async () => Number(await panel.getAttribute('data-frames-decoded')) > 0,
    { timeout: 30000, message: 'bob decoding the stream' });
  await panel.getByText(/Live · \d+×\d+/).waitFor({ timeout: 15000 });
  await screenshot(b, 'stream-watch');
  await panel.getByRole('button', { name: 'Stop watching' }).click();
  assert.equal(await panel.count(), 0);
  for (const p of [a, b]) assert.deepEqual(p.errors, []);
});
