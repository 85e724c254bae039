// ICE restart on a connection that stays "disconnected" (issue 13,
// docs/calls.md "ICE restart"). Browsers report "failed" only after about
// 30 s without an answer to their consent checks; under loss, a changed
// network or a stalled peer they sit at "disconnected". The web app's
// watchIce fires when "disconnected" lasts ICE_DISCONNECTED_MS (4 s), and
// again, backing off, while it stays down. In a mesh the app then restarts
// ICE itself; on the SFU the server makes the restart offer, and the app
// asks for one (a bare restart signal) once per outage, and not at all when
// the SFU restarted first: two restarts under way replace each other.
//
// The rule is checked on the app's own watchIce with a scripted connection
// state and the timers in the test's hand. Then on a real SFU call: with
// --mesh-limit 2 three pages are on the SFU and decode each other. alice's
// WebSocket goes through the test, which rewrites the candidates in her
// signals with "sfu" so that her media runs through a UDP relay of the
// test's (the SFU's candidates name the relay, hers a socket that drops
// everything), and sees every signal. The test cuts the relay, and holds
// her signaling too, both ways (slow signaling): her connection to the SFU
// goes "disconnected"; after 4 s of it her app asks for a restart, and the
// SFU, after 5 s of it on its own side, sends a restart offer; the test
// lets both go once both wait. The SFU drops her request, which reaches it
// after its own restart, the relay is healed as the SFU's offer passes, and
// she is connected again on the same peer connection (the test keeps every
// RTCPeerConnection a page makes) with new ICE credentials, decodes new
// frames of bob's and carol's, and bob decodes hers: one request, one
// restart offer, no offer of hers. Her TURN credentials (a 1-minute TTL
// here) were near their expiry, so before answering she fetched fresh ones
// from /rtc/ice-servers and her connection took them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from './helpers.js';
import { signUp, createRoom, joinPublicRoom } from './driver.js';
import { launchCallBrowser, newCallPage, decodingTile, waitOrDump, dumpPages, dumpServer, udpRelay, routeSFU } from './calls-lib.js';

let server;
let browser;
let relay;

after(async () => {
  await browser?.close();
  await relay?.close();
  await server?.stop('SIGTERM');
});

test('the app finds a connection down after "disconnected" lasts a few seconds, and only then', async () => {
  // --ping-interval 30m: the app's client pings the server every interval
  // and reconnects (and so rejoins the call on a new peer connection) when a
  // ping goes unanswered for 10 s; no ping may fall while the test holds
  // alice's signaling, or the rejoin, not the ICE restart, would recover.
  // --log-level info: the SFU logs each restart and each dropped request.
  // --turn-credential-ttl 1m: TURN credentials are always within the app's
  // margin of their expiry, so every restart it answers fetches fresh ones.
  server = await startServer({ args: ['--mesh-limit', '2', '--sfu-listen', '127.0.0.1:0', '--ping-interval', '30m', '--log-level', 'info',
    '--turn-credential-ttl', '1m'] });
  browser = await launchCallBrowser();
  await rule();
});

test('on the SFU the app asks for one restart per outage, answers the SFU\'s, and media flows again', async () => {
  try {
    await sfuOutages();
  } catch (err) {
    await dumpServer(server, 'calls-ice');
    throw err;
  }
});

async function rule() {

  // The rule, on the app's module: a scripted connection, the test's timers.
  const { page: probe } = await newCallPage(browser, server.url);
  await probe.goto('/');
  const steps = await probe.evaluate(async () => {
    const { watchIce, ICE_DISCONNECTED_MS } = await import('/call.js');
    const pc = new EventTarget();
    pc.iceConnectionState = 'new';
    const timers = new Map();
    let n = 0;
    const restarts = [];
    watchIce(pc, (st) => restarts.push(st), {
      setTimer: (fn, ms) => { timers.set(++n, { fn, ms }); return n; },
      clearTimer: (id) => { timers.delete(id); },
    });
    const set = (st) => { pc.iceConnectionState = st; pc.dispatchEvent(new Event('iceconnectionstatechange')); };
    const fire = () => { const [[id, t]] = timers; timers.delete(id); t.fn(); };
    const now = () => ({ restarts: [...restarts], timers: [...timers.values()].map((t) => t.ms) });
    const out = { grace: ICE_DISCONNECTED_MS };
    set('checking'); set('connected'); out.up = now();
    set('disconnected'); out.down = now();
    set('connected'); out.blip = now(); // back before the grace: nothing
    set('disconnected'); fire(); out.restarted = now();
    fire(); out.again = now(); // still down: again, after twice as long
    set('connected'); out.back = now();
    set('failed'); out.failed = now(); // failed: at once
    set('closed'); out.closed = now();
    // restartIce on a real connection whose offer went unanswered: rolled
    // back, and the next offer has new ICE credentials.
    const { restartIce } = await import('/call.js');
    const real = new RTCPeerConnection();
    real.addTransceiver('audio');
    await real.setLocalDescription();
    const ufrag = (sdp) => /a=ice-ufrag:(\S+)/.exec(sdp)?.[1];
    const was = ufrag(real.localDescription.sdp);
    await restartIce(real);
    out.rolledBack = real.signalingState;
    out.newUfrag = ufrag((await real.createOffer()).sdp) !== was;
    real.close();
    return out;
  });
  const g = steps.grace;
  assert.ok(g >= 2000 && g <= 10000, `a few seconds: ${g}`);
  assert.deepEqual(steps.up, { restarts: [], timers: [] });
  assert.deepEqual(steps.down, { restarts: [], timers: [g] }, 'disconnected: wait');
  assert.deepEqual(steps.blip, { restarts: [], timers: [] }, 'a blip restarts nothing');
  assert.deepEqual(steps.restarted, { restarts: ['disconnected'], timers: [2 * g] }, 'disconnected too long: restart');
  assert.deepEqual(steps.again, { restarts: ['disconnected', 'disconnected'], timers: [4 * g] }, 'still down: again, backing off');
  assert.deepEqual(steps.back, { restarts: ['disconnected', 'disconnected'], timers: [] });
  assert.deepEqual(steps.failed, { restarts: ['disconnected', 'disconnected', 'failed'], timers: [2 * g] }, 'failed: at once');
  assert.deepEqual(steps.closed.timers, [], 'closed: no more');
  assert.equal(steps.rolledBack, 'stable', 'an unanswered offer is rolled back');
  assert.ok(steps.newUfrag, 'the next offer restarts ICE');
  await probe.context().close();

}

async function sfuOutages() {
  relay = await udpRelay();
  const names = ['alice', 'bob', 'carol'];
  const pages = [];
  const wire = []; // alice's signals with "sfu", in order: 'out …' hers, 'in …' the SFU's
  let holding = false;
  let route;
  for (const name of names) {
    const { context, page } = await newCallPage(browser, server.url, { width: 160, height: 90, fps: 5, viewport: { width: 640, height: 480 } });
    // Keep every peer connection the page makes, to read its ICE credentials.
    await context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.testPCs = [];
      window.RTCPeerConnection = class extends Native {
        constructor(...args) { super(...args); window.testPCs.push(this); }
      };
    });
    if (name === 'alice') {
      route = await routeSFU(context, relay, {
        hold: () => holding,
        signal: ({ dir, data, push }) => {
          const d = dir === 'out' ? data : push;
          const kind = d.description ? `${d.description.type}${d.restart ? ' restart' : ''}` : d.candidate ? 'candidate' : 'restart request';
          if (kind !== 'candidate') wire.push(`${dir} ${kind}`);
        },
        // The network comes back as the SFU's restart offer reaches her:
        // every check on the new credentials gets through.
        beforePage: (frame) => { if (relay.cut && /"from":"sfu"/.test(frame) && /"restart":true/.test(frame)) relay.cut = false; },
      });
    }
    pages.push(page);
  }
  const t0 = Date.now();
  const phase = (what) => console.log(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await Promise.all(pages.map((p, i) => signUp(p, names[i])));
  const [alice, bob] = pages;
  const byName = Object.fromEntries(names.map((n, i) => [n, pages[i]]));
  await createRoom(alice, 'allhands');
  await Promise.all(pages.slice(1).map((p) => joinPublicRoom(p, 'allhands')));
  phase('signed up, in the room');
  for (const p of pages) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel .tile.local').waitFor();
  }
  const up = '#call-panel[data-mode="sfu"][data-sfu-ice="connected"], #call-panel[data-mode="sfu"][data-sfu-ice="completed"]';
  for (const p of pages) await waitOrDump(p.locator(up), byName);
  for (const [i, p] of pages.entries()) {
    for (const other of names.filter((n) => n !== names[i])) await waitOrDump(decodingTile(p, other), byName);
  }
  phase('on the SFU, decoding');
  // Her connection to the SFU: its last peer connection, and the port of
  // the SFU's address that its selected candidate pair uses.
  const sfuPC = () => alice.evaluate(async () => {
    const pc = window.testPCs.at(-1);
    const stats = await pc.getStats();
    let port = 0;
    stats.forEach((s) => {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
      port = stats.get(stats.get(s.selectedCandidatePairId)?.remoteCandidateId)?.port ?? 0;
    });
    return { count: window.testPCs.length, ice: pc.iceConnectionState, port,
      ufrag: /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? '')?.[1] };
  });
  const first = await sfuPC();
  assert.equal(first.port, relay.port, 'alice reaches the SFU through the relay');
  assert.ok(relay.packets > 0);
  const counts = () => alice.locator('#call-panel').evaluate((el) => ({
    stalls: Number(el.dataset.sfuIceStalls ?? 0), asks: Number(el.dataset.sfuRestartAsks ?? 0), offers: Number(el.dataset.sfuRestartOffers ?? 0) }));
  const framesOf = (p) => p.locator('#call-panel .tile[data-user]').evaluateAll(
    (tiles) => Object.fromEntries(tiles.map((t) => [t.dataset.user, Number(t.dataset.framesDecoded ?? 0)])));
  // New frames decoded on page p of user's camera since was.
  const newFrames = (p, user, was) => p.waitForFunction(([u, n]) => Number(document.querySelector(`#call-panel .tile[data-user="${u}"]`)?.dataset.framesDecoded ?? 0) > n,
    [user, was], { polling: 500 });

  // The outage: the relay drops everything, and her signaling stalls too
  // (both ways: slow signaling) until her request and the SFU's own restart
  // offer (after 5 s of "disconnected" on its side) both wait in the test.
  // Her request then reaches an SFU that restarted already, and must not
  // start a second restart over the first.
  const before = await sfuPC();
  const turnUser = () => alice.evaluate(() => window.testPCs.at(-1).getConfiguration().iceServers.map((x) => x.username).filter(Boolean).join());
  const userBefore = await turnUser();
  let iceFetches = 0;
  alice.on('request', (r) => { if (new URL(r.url()).pathname === '/rtc/ice-servers') iceFetches += 1; });
  const aliceSaw = await framesOf(alice);
  const bobSaw = await framesOf(bob);
  const from = wire.length;
  relay.cut = true;
  try {
    await waitOrDump(alice.locator('#call-panel[data-sfu-ice="disconnected"], #call-panel[data-sfu-ice="failed"]'), byName);
    holding = true;
    const held = (to, re) => route.held.some(([t, f]) => t === to && re.every((r) => r.test(f)));
    await waitFor(() => held('page', [/"from":"sfu"/, /"restart":true/]) && held('server', [/"to":"sfu"/, /"restart":true/]),
      { timeout: 60000, interval: 100, message: "her request and the SFU's restart offer" });
    phase('her request and the SFU\'s restart offer held');
    holding = false;
    route.release(); // the relay is healed as the offer passes (beforePage)
    await waitOrDump(alice.locator(up), byName);
    phase('connected again');
    const after = await sfuPC();
    assert.equal(after.count, before.count, 'the same peer connection, no rejoin');
    assert.notEqual(after.ufrag, before.ufrag, 'new ICE credentials (a restart)');
    assert.equal(after.port, relay.port, 'still through the relay');
    // Her TURN credentials were stale: fresh ones before her answer.
    assert.ok(userBefore, 'TURN credentials from the join');
    assert.equal(iceFetches, 1, 'one fetch of /rtc/ice-servers');
    assert.notEqual(await turnUser(), userBefore, 'her connection has the fresh credentials');
    for (const other of ['bob', 'carol']) await newFrames(alice, other, aliceSaw[other]);
    await newFrames(bob, 'alice', bobSaw.alice);
    phase('new frames both ways');
  } catch (err) {
    await dumpPages(byName);
    console.log(`# alice's signals with the SFU: ${wire.join(', ')}`);
    throw err;
  } finally {
    holding = false;
    relay.cut = false;
  }
  const now = await counts();
  const seen = wire.slice(from).join(', ');
  assert.equal(now.asks, 1, `her app asked once, not knowing of the SFU's restart (${seen}; down ${now.stalls} times)`);
  assert.equal(now.offers, 1, `one restart offer reached her (${seen})`);
  // (Her request and the SFU's offer cross: either may reach the test first.)
  const signals = wire.slice(from);
  assert.deepEqual([...signals].sort(), ['in offer restart', 'out answer', 'out restart request'], 'her signals with the SFU in the outage');
  assert.equal(signals.at(-1), 'out answer', 'her answer last');
  assert.match(server.log(), /ICE restart request dropped/, 'the SFU restarted first and dropped her late request');
  for (const p of pages) assert.deepEqual(p.errors, []);
}
