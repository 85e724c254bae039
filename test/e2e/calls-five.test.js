// Five people in one call (issue 13): with the default --mesh-limit 4 and the
// SFU on, five headless Chromium pages with fake devices join one room's
// call. The fifth join moves the call to the SFU, and every page decodes the
// other four's video (getStats framesDecoded > 0 for every remote tile, as
// the app writes it on the tile). Then two leave: with three left (at most
// mesh-limit − 1) the call returns to mesh after --mesh-return (1 s here
// instead of the default 30 s), and the three remaining pages decode each
// other again over their new peer-to-peer connections.
//
// Kept light for a loaded 2-core machine: each fake camera sends 320×180 at
// 10 fps (one stream, no simulcast; 160×90 at 5 fps decoded nothing, see
// below), the pages are small, and every wait is
// on a condition in the page (a locator), not a poll over the DevTools
// protocol. Before that (320×180 at 15 fps, 50 ms polls) it never finished
// on the shared development VM.
//
// Status: runs by default (SORI_TEST_FIVE=0 skips it). History: 0 of 4 runs passed on
// the shared development VM at a load average of 35–65, two of them with
// `go test -race ./internal/server` beside (which itself hit its 10-minute
// timeout there). What the runs showed, and what changed:
// - The app's client drops a connection whose ping gets no reply within
//   10 s and rejoins the call; at that load replies took that long, every
//   rejoin renegotiated every connection of the call, and the extra work
//   made more replies late: the test never got past the four-page mesh.
//   Hence --ping-interval 10m below (after it, the run reached the SFU).
// - Pushes that came before a call.join's reply were dropped, so a page
//   could miss a participant; the app now applies them after the reply.
// - Mesh signals still queued when the call moved to the SFU threw on the
//   closed connections; they are skipped now.
// - On the SFU, pages went ICE "disconnected" (nothing received for a few
//   seconds while the machine was saturated) and the app waited for
//   "failed" (30 s); it restarts ICE after 4 s now (calls-ice.test.js). In
//   the last run a page restarted five times and sat with its offer
//   unanswered ("have-local-offer"): a restart now rolls an unanswered
//   offer back first, so that the new offer can go out.
// - What is left: at that load each page took 100 s from "mode sfu" to its
//   first ICE check against the SFU, and 15–30 s per signaling round trip
//   (rpc replies over 10 s); the five pages' decoders, encoders and audio
//   do not fit in what 2 shared cores give them. Run it on a quieter
//   machine (or with fewer sessions beside) before making it part of CI.
// - At 11:50, at a load average of 5–10: with 160×90 5 fps cameras every
//   page was connected to the SFU within seconds and decoded no video frame
//   for two minutes. Not seen again: in a run at a load average of 28–40
//   (stop 20) all five 160×90 cameras reached the SFU within 17 s of the
//   move (VP8, one stream without rid) and every page decoded the others.
//   With 320×180 10 fps cameras (as below) all five decoded the other four
//   15 s after the move; then one of the three mesh pairs stayed at ICE
//   "new". Cause found and fixed (stop 20): both pages of each rebuilt pair
//   offered at once, the polite one rolled its offer back and answered, and
//   Chromium then gathers no ICE candidate for that answer about 1 time in
//   8. The app's polite side now waits for the other's first offer
//   (docs/calls.md, "Who offers"); calls-rejoin.test.js, which had the same
//   failure, passed 8 of 8 after it and runs by default again.
// - Still opt-in: at a load average of 45–67 (stop 20, 14:13) five pages
//   took 128 s to sign up and open the room, the four-page mesh had round
//   trips of 11 s, and the run never reached the SFU. It needs a machine
//   where five Chromium pages get their share before it can be in CI.
// - In CI (stop 20, 14:57–15:01): with the machine free of the other
//   sessions it passed 5 of 5 in 33–65 s, the last two with `go test -race
//   ./internal/rtc/... ./internal/session/...` running beside it (load
//   average 15–17). It runs by default from then on.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, screenshot } from './helpers.js';
import { signUp, createRoom, joinPublicRoom } from './driver.js';
import { launchCallBrowser, newCallPage, decodingTile, waitOrDump, dumpPages, dumpServer } from './calls-lib.js';

let server;
let browser;
const byName = {}; // the pages by user name, for the log of a failure
let dumped = false; // waitOrDump logged them already

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

const enabled = process.env.SORI_TEST_FIVE !== '0';

/** Waits until every page in pages shows every other user's tile decoding video. */
async function allDecode(pages, names) {
  for (const [i, p] of pages.entries()) {
    for (const other of names.filter((n) => n !== names[i])) {
      dumped = true;
      await waitOrDump(decodingTile(p, other), byName, { timeout: 120000 });
      dumped = false;
    }
  }
}

const t0 = Date.now();
const mark = (what) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

test('five pages move to the SFU, decode each other, and return to mesh when two leave', { skip: !enabled && 'SORI_TEST_FIVE=0 (five browsers; see the note at the top)' }, async () => {
  try {
    await fivePages();
  } catch (err) {
    if (!dumped) await dumpPages(byName);
    await dumpServer(server, 'calls-five');
    throw err;
  }
});

async function fivePages() {
  // --ping-interval 10m: the app's client pings every interval and, when a
  // reply takes over 10 s, drops the connection and rejoins the call (the
  // server then tells everybody that it left and joined again, and every
  // connection to it is negotiated anew). At a load average of 40 with a Go
  // test beside, replies took that long, and each rejoin's renegotiations
  // slowed the others into more: the test never reached the SFU. That is
  // the app doing its job on a network that looks dead; this test is about
  // the SFU, so no heartbeat falls within it.
  server = await startServer({ args: ['--sfu-listen', '127.0.0.1:0', '--mesh-return', '1s', '--log-level', 'info', '--ping-interval', '10m'] });
  browser = await launchCallBrowser();
  const names = ['alice', 'bob', 'carol', 'dave', 'erin'];
  const pages = [];
  for (const name of names) {
    const { page } = await newCallPage(browser, server.url, { width: 320, height: 180, fps: 10, viewport: { width: 640, height: 480 } });
    await signUp(page, name);
    pages.push(page);
    byName[name] = page;
  }
  await createRoom(pages[0], 'allhands');
  for (const p of pages.slice(1)) await joinPublicRoom(p, 'allhands');
  mark('five pages in the room');

  // Four join: a mesh (the default limit is 4).
  for (const p of pages.slice(0, 4)) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel[data-mode="mesh"] .tile.local').waitFor();
  }
  // The fifth moves everybody to the SFU.
  await pages[4].getByRole('button', { name: 'Join call' }).click();
  for (const p of pages) await p.locator('#call-panel[data-mode="sfu"] .tile.local').waitFor();
  mark('on the SFU');
  await allDecode(pages, names);
  mark('all five decode four');
  await screenshot(pages[0], 'call-five-sfu-alice');

  // Two leave; the three others go back to mesh and decode each other there.
  for (const p of pages.slice(3)) {
    await p.getByRole('button', { name: 'Leave call' }).first().click();
    await p.locator('#call-panel').waitFor({ state: 'hidden' });
  }
  const rest = pages.slice(0, 3);
  for (const p of rest) {
    await p.locator('#call-panel[data-mode="mesh"]').waitFor();
    for (const gone of names.slice(3)) await p.locator(`#call-panel .tile[data-user="${gone}"]`).waitFor({ state: 'detached' });
  }
  mark('back to mesh');
  await allDecode(rest, names.slice(0, 3));
  mark('the three decode each other in the mesh');
  await screenshot(pages[0], 'call-five-mesh-again-alice');
  for (const p of pages) assert.deepEqual(p.errors, []);
}
