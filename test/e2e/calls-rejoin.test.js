// A call whose node died (issue 13, docs/calls.md "Calls in a cluster"): in
// a cluster the node that runs a room's call may die; the participants on
// other nodes then get a `left` push about themselves with reason
// "node gone", and a new call.join starts the call on a live node. The web
// app rejoins by itself after a short backoff, so the user sees a short
// interruption instead of a dead call.
//
// The rule (which reasons rejoin, how often, after how long) is checked on
// the app's own module in a page. Then the whole path on one real server:
// alice's WebSocket goes through the test, which hands her page the push a
// surviving node would send ("node gone" about her own participant) while
// the single node keeps the call. Her app drops the call, shows that it is
// rejoining, joins again with `replaces` (so the server swaps her old
// participant for the new one, as after a reconnect), and both pages decode
// each other's video again over new connections. The two-node version of
// this needs PostgreSQL and NATS beside two servers; the server side of
// "node gone" is tested in internal/server/cluster_calls_test.go.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.js';
import { signUp, createRoom, joinPublicRoom } from './driver.js';
import { launchCallBrowser, newCallPage, decodingTile, waitOrDump, dumpServer } from './calls-lib.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

async function start() {
  server ??= await startServer();
  browser ??= await launchCallBrowser();
}

test('the app\'s rule: rejoin only after "node gone", a few times, with backoff', async () => {
  await start();
  const { page: probe } = await newCallPage(browser, server.url);
  await probe.goto('/');
  const rule = await probe.evaluate(async () => {
    const { rejoinDelay, REJOIN_DELAYS_MS } = await import('/call.js');
    const reasons = ['node gone', 'kicked', 'left room', 'replaced', 'left', 'disconnected', undefined];
    return {
      delays: REJOIN_DELAYS_MS,
      low: [0, 1, 2, 3].map((i) => rejoinDelay('node gone', i, () => 0)),
      high: [0, 1, 2, 3].map((i) => rejoinDelay('node gone', i, () => 1)),
      first: Object.fromEntries(reasons.map((r) => [String(r), rejoinDelay(r, 0)])),
    };
  });
  assert.equal(rule.delays.length, 3, 'a few tries');
  assert.deepEqual(rule.low, [...rule.delays.map((d) => d * 0.75), null], 'jitter down to 75%, then give up');
  assert.deepEqual(rule.high, [...rule.delays.map((d) => d * 1.25), null], 'jitter up to 125%, then give up');
  assert.ok(rule.first['node gone'] >= 750 && rule.first['node gone'] <= 1250, `first try after about a second: ${rule.first['node gone']}`);
  for (const r of ['kicked', 'left room', 'replaced', 'left', 'disconnected', 'undefined']) assert.equal(rule.first[r], null, `no rejoin after "${r}"`);
  await probe.context().close();
});

// This test was opt-in while it passed 6 of 10 runs under load: in each
// failure the two pages' mesh connection never left ICE state "new", the
// answering page's connection at iceGatheringState "gathering" with no local
// candidate. Both pages offered at once; the polite one rolled its offer
// back and answered, and Chromium gathers no candidate for such an answer
// now and then (8 of 60 in-page tries). The app's polite side now waits for
// the other's first offer, which the test checks below; it then passed 8 of
// 8 runs at a load average of 22–38, five of them with `go test -race` of a
// package looping beside.
test('a page told "node gone" rejoins the call and decodes again; a kick ends it', async () => {
  try {
    await start();
    await rejoin();
  } catch (err) {
    await dumpServer(server, 'calls-rejoin');
    throw err;
  }
});

async function rejoin() {
  // The whole path: alice's WebSocket goes through the test, which notes her
  // call.join requests and replies, can hold her joins back (so that the
  // test sees the page while it rejoins, however slow the machine), and can
  // hand her page a push.
  const light = { width: 160, height: 90, fps: 5 }; // two small cameras: the test is about the rejoin, not the media
  const { context: actx, page: a } = await newCallPage(browser, server.url, light);
  const joins = []; // the data of each call.join alice sent
  const joined = []; // the participant id of each call.join reply she got
  const joinIds = new Set();
  const sent = []; // the type of each description alice signalled
  let toPage = null;
  let hold = false;
  let held = null; // [server socket, frame] of the last join held back
  let heldOne;
  const someHeld = new Promise((resolve) => { heldOne = resolve; });
  await actx.routeWebSocket(/\/ws$/, (ws) => {
    const srv = ws.connectToServer();
    toPage = (obj) => ws.send(JSON.stringify(obj));
    ws.onMessage((frame) => {
      let join = false;
      for (const line of String(frame).split('\n').filter(Boolean)) {
        let cmd;
        try { cmd = JSON.parse(line); } catch { continue; }
        if (cmd.op === 'rpc' && cmd.method === 'call.join') { joins.push(cmd.data); joinIds.add(cmd.id); join = true; }
        if (cmd.op === 'rpc' && cmd.method === 'call.signal' && cmd.data?.description) sent.push(cmd.data.description.type);
      }
      // Only the last held join goes on: an earlier one timed out in the
      // page, which has tried again.
      if (join && hold) { held = [srv, frame]; heldOne(); }
      else srv.send(frame);
    });
    srv.onMessage((frame) => {
      for (const line of String(frame).split('\n').filter(Boolean)) {
        let reply;
        try { reply = JSON.parse(line); } catch { continue; }
        if (joinIds.has(reply.id) && reply.result?.participant) joined.push(reply.result.participant);
      }
      ws.send(frame);
    });
  });
  const { page: b } = await newCallPage(browser, server.url, light);
  for (const ctx of [actx, b.context()]) {
    await ctx.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.testPCs = [];
      window.RTCPeerConnection = class extends Native { constructor(...args) { super(...args); window.testPCs.push(this); } };
    });
  }
  await signUp(a, 'alice');
  await signUp(b, 'bob');
  await createRoom(a, 'standup');
  await joinPublicRoom(b, 'standup');
  for (const p of [a, b]) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel[data-mode="mesh"] .tile.local').waitFor();
  }
  const pages = { alice: a, bob: b };
  await waitOrDump(decodingTile(a, 'bob'), pages);
  await waitOrDump(decodingTile(b, 'alice'), pages);
  assert.equal(joined.length, 1);
  // alice joined first, so she is polite towards bob: she answers his offer
  // and makes none of her own before it (both offering at once made
  // Chromium gather no ICE candidate for the polite side's answer now and
  // then: the flake this test had).
  assert.equal(sent[0], 'answer', `alice's first description: ${sent.join(', ')}`);
  const [first] = joined;
  const room = joins[0].room;
  const bobSawFirst = await b.locator('#call-panel .tile[data-user="alice"]').getAttribute('data-participant');
  assert.equal(bobSawFirst, first);

  // The node running the call "dies": alice's page gets what a surviving
  // node sends her.
  hold = true;
  toPage({ push: 'call', room: String(room), event: 'left', participant: { id: first, user: 'alice' }, reason: 'node gone' });
  await a.locator('#call-panel[data-rejoining]').waitFor();
  await a.locator('#call-panel .tile.local').waitFor(); // her camera stays on the panel meanwhile
  assert.equal(await a.locator('#call-panel .tile:not(.local)').count(), 0, 'the dead call\'s tiles go');
  await a.locator('#call-panel [role="alert"]', { hasText: 'Rejoining' }).waitFor();
  await a.getByRole('button', { name: 'Leave call' }).first().waitFor(); // she may still give up
  await someHeld; // her rejoin

  // She is back, as a new participant that replaced the old one.
  const beforeRejoin = sent.length;
  hold = false;
  held[0].send(held[1]);
  await a.locator('#call-panel:not([data-rejoining]) .tile.local').waitFor();
  assert.ok(joins.length >= 2, 'a rejoin');
  for (const j of joins.slice(1)) assert.equal(j.replaces, first, 'a rejoin replaces the old participant');
  assert.equal(joined.length, 2);
  assert.notEqual(joined[1], first);
  await waitOrDump(decodingTile(a, 'bob'), pages);
  assert.equal(sent[beforeRejoin], 'offer', `back as the newcomer, alice makes the first offer: ${sent.join(', ')}`);
  await b.locator(`#call-panel .tile[data-user="alice"][data-participant="${joined[1]}"]`).waitFor();
  await waitOrDump(decodingTile(b, 'alice'), pages);
  assert.equal(await b.locator('#call-panel .tile[data-user="alice"]').count(), 1, 'bob sees one alice');

  // A push that takes her out for another reason ends the call for good.
  toPage({ push: 'call', room: String(room), event: 'left', participant: { id: joined[1], user: 'alice' }, reason: 'kicked' });
  await a.locator('#call-panel').waitFor({ state: 'hidden' });
  await a.getByRole('button', { name: 'Join call' }).waitFor();
  assert.equal(await a.locator('#call-panel[data-rejoining]').count(), 0, 'no rejoin after a kick');
  for (const p of [a, b]) assert.deepEqual(p.errors, []);
}
