// A call that outgrows the mesh: with --mesh-limit 2 and the SFU on, three
// headless Chromium pages with fake devices join one room's call; the third
// join moves the call to the SFU (docs/calls.md, "Mesh limit and the SFU"),
// every page connects to "sfu" and decodes the other two's video (getStats
// framesDecoded > 0, written on each tile by the app).
//
// On the SFU each remote tile has a quality menu (call.quality): bob first
// receives alice's camera on its top simulcast layer (480×270; the app sends
// 240×135 and 480×270 from her 270-line camera; the others send 320×180,
// one layer), chooses "low" on her tile and
// then receives 240×135. Then alice shares her screen (a track in a stream
// named "screen-…", which the SFU serves first): bob and carol each get it
// as a large tile of its own that decodes frames, and it goes when she stops.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, screenshot } from './helpers.js';
import { signUp, createRoom, joinPublicRoom } from './driver.js';
import { launchCallBrowser, newCallPage, decodingTile, decodingScreen, waitOrDump, dumpServer } from './calls-lib.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('three pages move from mesh to the SFU, decode each other, choose a quality and share a screen', async () => {
  try {
    await threePages();
  } catch (err) {
    await dumpServer(server, 'calls-sfu');
    throw err;
  }
});

async function threePages() {
  server = await startServer({ args: ['--mesh-limit', '2', '--sfu-listen', '127.0.0.1:0'] });
  browser = await launchCallBrowser();
  const names = ['alice', 'bob', 'carol'];
  const pages = [];
  for (const name of names) {
    // alice's camera is the one whose layers are chosen: 270 lines, two layers.
    const size = name === 'alice' ? { width: 480, height: 270 } : {};
    const { page } = await newCallPage(browser, server.url, { ...size, viewport: { width: 800, height: 600 } });
    await signUp(page, name);
    pages.push(page);
  }
  const [a, b, c] = pages;
  await createRoom(a, 'allhands');
  await joinPublicRoom(b, 'allhands');
  await joinPublicRoom(c, 'allhands');

  for (const p of pages) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel .tile.local').waitFor();
  }
  for (const p of pages) await p.locator('#call-panel[data-mode="sfu"]').waitFor();
  for (const [i, p] of pages.entries()) {
    for (const other of names.filter((n) => n !== names[i])) await waitOrDump(decodingTile(p, other), { alice: a, bob: b, carol: c });
  }
  await screenshot(a, 'call-sfu-alice');

  // The quality menu: "low" on alice's tile brings bob her low layer.
  const aliceOnBob = b.locator('#call-panel .tile[data-user="alice"]');
  await waitOrDump(b.locator('#call-panel .tile[data-user="alice"][data-resolution="480x270"]'), { bob: b }, { timeout: 120000 });
  const menu = aliceOnBob.getByRole('combobox', { name: 'Video quality of alice' });
  assert.equal(await menu.isVisible(), true);
  await menu.selectOption('low');
  await waitOrDump(b.locator('#call-panel .tile[data-user="alice"][data-layer="low"][data-resolution="240x135"]'), { bob: b });
  await screenshot(b, 'call-sfu-bob-alice-low');

  // alice shares her screen: a large tile on both other pages.
  await a.getByRole('button', { name: 'Share screen' }).click();
  for (const p of [b, c]) await waitOrDump(decodingScreen(p, 'alice'), { bob: b, carol: c });
  assert.equal(await aliceOnBob.locator('video').count(), 1);
  await screenshot(b, 'call-sfu-bob-screen');
  await a.getByRole('button', { name: 'Stop sharing' }).click();
  for (const p of [b, c]) await p.locator('#call-panel .tile.screen-tile').waitFor({ state: 'detached' });
  for (const p of pages) assert.deepEqual(p.errors, []);
}
