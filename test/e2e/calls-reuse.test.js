// The SFU reuses its freed m-lines (issue 13, docs/calls.md "m-lines are
// reused"): when a forwarded track ends, its m-line at each subscriber turns
// recvonly, and the next forwarded track of the same kind takes it again.
// Chromium then fires `track` on the same transceiver with the same
// MediaStreamTrack (same id) for the new publisher; the web app must show it
// on the new participant's tile and take it, with its getStats figures, from
// whoever showed it before.
//
// With --mesh-limit 2 (and --mesh-return long, so that the call stays on the
// SFU with two participants) alice, bob and carol are on the SFU. Then, five
// times: carol leaves; alice shares her screen, which comes to bob on the
// m-line carol's camera had, and stops; carol joins again as a new
// participant, whose camera comes to bob on that same m-line, the screen's
// track object before. Every time bob and alice decode the new carol, and
// she decodes both; bob's description to the SFU keeps the m-line count it
// had after the first join (without reuse it grows by two per cycle).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.js';
import { signUp, createRoom, joinPublicRoom } from './driver.js';
import { launchCallBrowser, newCallPage, decodingTile, decodingScreen, waitOrDump, dumpServer } from './calls-lib.js';

const CYCLES = 5;

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('new participants come on the SFU\'s reused m-lines, and every page shows and decodes them', async () => {
  try {
    await reuse();
  } catch (err) {
    await dumpServer(server, 'calls-reuse');
    throw err;
  }
});

async function reuse() {
  server = await startServer({ args: ['--mesh-limit', '2', '--sfu-listen', '127.0.0.1:0', '--mesh-return', '10m'] });
  browser = await launchCallBrowser();
  const names = ['alice', 'bob', 'carol'];
  const pages = [];
  for (const name of names) {
    const { context, page } = await newCallPage(browser, server.url, { width: 160, height: 90, fps: 5, viewport: { width: 640, height: 480 } });
    await context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.testPCs = [];
      window.RTCPeerConnection = class extends Native { constructor(...args) { super(...args); window.testPCs.push(this); } };
    });
    pages.push(page);
  }
  const t0 = Date.now();
  const phase = (what) => console.log(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await Promise.all(pages.map((p, i) => signUp(p, names[i])));
  const [a, b, c] = pages;
  const all = { alice: a, bob: b, carol: c };
  await createRoom(a, 'allhands');
  await Promise.all([b, c].map((p) => joinPublicRoom(p, 'allhands')));
  const join = async (p) => {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel .tile.local').waitFor();
  };
  for (const p of pages) await join(p);
  for (const p of pages) await p.locator('#call-panel[data-mode="sfu"]').waitFor();
  const decodeAll = async () => {
    for (const [i, p] of pages.entries()) {
      for (const other of names.filter((n) => n !== names[i])) await waitOrDump(decodingTile(p, other), all);
    }
  };
  await decodeAll();
  phase('on the SFU, decoding');

  // Bob's connection to the SFU: its m-lines, and the mid carrying a track.
  const mlines = () => b.evaluate(() => (window.testPCs.at(-1).currentRemoteDescription?.sdp.match(/^m=/gm) ?? []).length);
  const midOf = (trackId) => b.evaluate((id) => window.testPCs.at(-1).getTransceivers().find((t) => t.receiver.track.id === id)?.mid ?? '', trackId);
  const cameraMid = (participant) => b.evaluate((id) => {
    const sdp = window.testPCs.at(-1).currentRemoteDescription?.sdp ?? '';
    const section = sdp.split(/\r\n(?=m=)/).find((m) => m.startsWith('m=video') && m.includes(`a=msid:${id} `));
    return /a=mid:(\S+)/.exec(section ?? '')?.[1] ?? '';
  }, participant);
  const peak = await mlines();
  const carolOnBob = b.locator('#call-panel .tile[data-user="carol"]');
  const seen = [];
  for (let i = 1; i <= CYCLES; i++) {
    const carolWas = await carolOnBob.getAttribute('data-participant');
    await c.locator('#call-panel').getByRole('button', { name: 'Leave call' }).click();
    for (const p of [a, b]) await p.locator('#call-panel .tile[data-user="carol"]').waitFor({ state: 'detached' });

    // alice's screen takes the video m-line carol's camera left.
    await a.getByRole('button', { name: 'Share screen' }).click();
    await waitOrDump(decodingScreen(b, 'alice'), all);
    const screenTrack = await b.locator('#call-panel .tile.screen-tile[data-screen-of="alice"]').getAttribute('data-track');
    const screenMid = await midOf(screenTrack);
    await a.getByRole('button', { name: 'Stop sharing' }).click();
    await b.locator('#call-panel .tile.screen-tile').waitFor({ state: 'detached' });

    // carol again, a new participant: her camera takes the m-line back, the
    // screen's track object before.
    await join(c);
    await c.locator('#call-panel[data-mode="sfu"]').waitFor();
    await b.locator(`#call-panel .tile[data-user="carol"]:not([data-participant="${carolWas}"])`).waitFor();
    await decodeAll();
    const carolNow = await carolOnBob.getAttribute('data-participant');
    const carolMid = await cameraMid(carolNow);
    const count = await mlines();
    seen.push({ cycle: i, screenMid, carolMid, mlines: count });
    phase(`cycle ${i}: alice's screen on bob's m-line ${screenMid}, then carol's camera on ${carolMid}; ${count} m-lines`);
    assert.ok(count <= peak, `cycle ${i}: bob's m-lines stay at most ${peak}: ${count}`);
    assert.equal(carolMid, screenMid, `cycle ${i}: carol's camera reuses the m-line of alice's screen`);
    assert.equal(await midOf(screenTrack), carolMid, `cycle ${i}: the same track object, now carol's camera`);
    assert.equal(await carolOnBob.count(), 1, `cycle ${i}: one tile of carol`);
  }
  console.log(`# ${JSON.stringify(seen)}`);
  for (const p of pages) assert.deepEqual(p.errors, []);
}
