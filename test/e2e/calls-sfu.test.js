// A call that outgrows the mesh: with --mesh-limit 2 and the SFU on, three
// headless Chromium pages with fake devices join one room's call; the third
// join moves the call to the SFU (docs/calls.md, "Mesh limit and the SFU"),
// every page connects to "sfu" and decodes the other two's video (getStats
// framesDecoded > 0, written on each tile by the app).
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

test('three pages move from mesh to the SFU and decode each other', async () => {
  server = await startServer({ args: ['--mesh-limit', '2', '--sfu-listen', '127.0.0.1:0'] });
  browser = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required']);
  const names = ['alice', 'bob', 'carol'];
  const pages = [];
  for (const name of names) {
    const { context, page } = await newPage(browser, server.url, { viewport: { width: 800, height: 600 } });
    await maybeRouteSDK(context);
    await signUp(page, name);
    pages.push(page);
  }
  await createRoom(pages[0], 'allhands');
  await joinPublicRoom(pages[1], 'allhands');
  await joinPublicRoom(pages[2], 'allhands');

  for (const p of pages) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel .tile.local').waitFor({ timeout: 60000 });
  }
  for (const p of pages) {
    await waitFor(async () => (await p.locator('#call-panel').getAttribute('data-mode')) === 'sfu',
      { timeout: 30000, message: 'the call to move to the SFU' });
  }
  for (const [i, p] of pages.entries()) {
    for (const other of names.filter((n) => n !== names[i])) {
      const tile = p.locator(`#call-panel .tile[data-user="${other}"]`);
      await tile.waitFor();
      await waitFor(async () => Number(await tile.getAttribute('data-frames-decoded')) > 0,
        { timeout: 60000, message: `${names[i]} decoding ${other}'s video through the SFU` });
    }
  }
  await screenshot(pages[0], 'call-sfu-alice');
  for (const p of pages) assert.deepEqual(p.errors, []);
});
