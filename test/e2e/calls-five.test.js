// Five people in one call (issue 13): with the default --mesh-limit 4 and the
// SFU on, five headless Chromium pages with fake devices join one room's
// call. The fifth join moves the call to the SFU, and every page decodes the
// other four's video (getStats framesDecoded > 0 for every remote tile, as
// the app writes it on the tile). Then two leave: with three left (at most
// mesh-limit − 1) the call returns to mesh after --mesh-return (1 s here
// instead of the default 30 s), and the three remaining pages decode each
// other again over their new peer-to-peer connections.
//
// Status: opt-in with SORI_TEST_FIVE=1, not part of CI yet. On the shared
// 2-core development VM (load average 30–65 while it ran) it never finished:
// the five pages did reach the SFU and decode each other once (with the
// app's old three-layer simulcast), but other runs timed out in the renderer
// (clicks, the move to the SFU) after 4–6 minutes; one failure mode was a
// server crash in the WebSocket poller (EINTR), fixed since. Run it on a
// quiet machine before making it part of SORI_TEST_SLOW.
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

const enabled = process.env.SORI_TEST_FIVE === '1';

/** Waits until every page in pages shows every other user's tile decoding video. */
async function allDecode(pages, names, how) {
  for (const [i, p] of pages.entries()) {
    for (const other of names.filter((n) => n !== names[i])) {
      const tile = p.locator(`#call-panel .tile[data-user="${other}"]`);
      await tile.waitFor({ timeout: 30000 });
      try {
        await waitFor(async () => Number(await tile.getAttribute('data-frames-decoded')) > 0,
          { timeout: 90000, message: `${names[i]} decoding ${other}'s video ${how}` });
      } catch (err) {
        console.log(`# ${names[i]}'s tiles:`, JSON.stringify(await p.evaluate(() => [...document.querySelectorAll('#call-panel .tile')]
          .map((t) => ({ ...t.dataset, videos: t.querySelectorAll('video').length, text: t.textContent })))));
        throw err;
      }
    }
  }
}

/**
 * Five pages encode and decode video on one machine: the camera is asked
 * for 320×180 at 15 fps, whatever the app asks for, to keep the load down.
 */
async function smallCamera(context) {
  await context.addInitScript(() => {
    const md = navigator.mediaDevices;
    const get = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => get(c?.video ? { ...c, video: { width: 320, height: 180, frameRate: 15 } } : c);
  });
}

async function modeOf(p) {
  return p.locator('#call-panel').getAttribute('data-mode');
}

const t0 = Date.now();
const mark = (what) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

test('five pages move to the SFU, decode each other, and return to mesh when two leave', { skip: !enabled && 'set SORI_TEST_FIVE=1 (five browsers; see the note at the top)' }, async () => {
  try {
    await fivePages();
  } catch (err) {
    console.log(`# server log (end):\n${server?.log().slice(-4000)}`);
    throw err;
  }
});

async function fivePages() {
  server = await startServer({ args: ['--sfu-listen', '127.0.0.1:0', '--mesh-return', '1s'] });
  browser = await launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required']);
  const names = ['alice', 'bob', 'carol', 'dave', 'erin'];
  const pages = [];
  for (const name of names) {
    const { context, page } = await newPage(browser, server.url, { viewport: { width: 900, height: 700 } });
    await maybeRouteSDK(context);
    await smallCamera(context);
    context.setDefaultTimeout(60000); // five pages with video on a small machine answer slowly
    await signUp(page, name);
    pages.push(page);
  }
  await createRoom(pages[0], 'allhands');
  for (const p of pages.slice(1)) await joinPublicRoom(p, 'allhands');

  // Four join: a mesh (the default limit is 4).
  for (const p of pages.slice(0, 4)) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel .tile.local').waitFor({ timeout: 60000 });
    assert.equal(await modeOf(p), 'mesh');
  }
  // The fifth moves everybody to the SFU.
  await pages[4].getByRole('button', { name: 'Join call' }).click();
  await pages[4].locator('#call-panel .tile.local').waitFor({ timeout: 60000 });
  for (const p of pages) {
    await waitFor(async () => (await modeOf(p)) === 'sfu', { timeout: 30000, message: 'the call to move to the SFU' });
  }
  mark('on the SFU');
  await allDecode(pages, names, 'through the SFU');
  mark('all five decode four');
  await screenshot(pages[0], 'call-five-sfu-alice');

  // Two leave; the three others go back to mesh and decode each other there.
  for (const p of pages.slice(3)) {
    await p.getByRole('button', { name: 'Leave call' }).first().click();
    await waitFor(async () => p.locator('#call-panel').isHidden(), { message: 'the leaver\'s panel to close' });
  }
  const rest = pages.slice(0, 3);
  for (const p of rest) {
    await waitFor(async () => (await modeOf(p)) === 'mesh', { timeout: 30000, message: 'the call to return to mesh' });
    for (const gone of names.slice(3)) {
      await waitFor(async () => (await p.locator(`#call-panel .tile[data-user="${gone}"]`).count()) === 0,
        { message: `${gone}'s tile to go` });
    }
  }
  mark('back to mesh');
  await allDecode(rest, names.slice(0, 3), 'back in the mesh');
  mark('the three decode each other in the mesh');
  await screenshot(pages[0], 'call-five-mesh-again-alice');
  for (const p of pages) assert.deepEqual(p.errors, []);
}
