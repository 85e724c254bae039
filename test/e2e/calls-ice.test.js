// ICE restart on a connection that stays "disconnected" (issue 13,
// docs/calls.md "ICE restart"). Browsers report "failed" only after about
// 30 s without an answer to their consent checks; under loss, a changed
// network or a stalled peer they sit at "disconnected". The web app restarts
// ICE when "disconnected" lasts ICE_DISCONNECTED_MS (4 s), in a mesh and on
// the SFU alike, and again, backing off, while it stays down.
//
// The rule is checked on the app's own watchIce with a scripted connection
// state and the timers in the test's hand. Then on a real SFU call: with
// --mesh-limit 2 three pages are on the SFU and decode each other; the test
// stops the server process (SIGSTOP: the SFU sends nothing and answers no
// consent check, and signaling waits in the socket). Every page's connection
// to the SFU goes "disconnected", and after 4 s each page restarts ICE: its
// peer connection (the same one: the test keeps every RTCPeerConnection a
// page makes) takes new ICE credentials (its a=ice-ufrag changes). The
// server resumes (SIGCONT), answers the restart offers, and every page is
// connected again on that same connection and decodes new frames.
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

test('the app restarts ICE after "disconnected" lasts a few seconds, and only then', async () => {
  try {
    await restarts();
  } catch (err) {
    if (server?.proc.exitCode === null) server.proc.kill('SIGCONT');
    await dumpServer(server, 'calls-ice');
    throw err;
  }
});

async function restarts() {
  // --ping-interval 30m: the app's client pings the server every interval
  // and reconnects (and so rejoins the call on a new peer connection) when a
  // ping goes unanswered for 10 s; no ping may fall while the test holds the
  // server stopped, or the rejoin, not the ICE restart, would recover.
  server = await startServer({ args: ['--mesh-limit', '2', '--sfu-listen', '127.0.0.1:0', '--ping-interval', '30m'] });
  browser = await launchCallBrowser();

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

  // A real call on the SFU.
  const names = ['alice', 'bob', 'carol'];
  const pages = [];
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
    await signUp(page, name);
    pages.push(page);
  }
  const byName = Object.fromEntries(names.map((n, i) => [n, pages[i]]));
  await createRoom(pages[0], 'allhands');
  for (const p of pages.slice(1)) await joinPublicRoom(p, 'allhands');
  for (const p of pages) {
    await p.getByRole('button', { name: 'Join call' }).click();
    await p.locator('#call-panel .tile.local').waitFor();
  }
  for (const p of pages) await p.locator('#call-panel[data-mode="sfu"][data-sfu-ice="connected"], #call-panel[data-mode="sfu"][data-sfu-ice="completed"]').waitFor();
  for (const [i, p] of pages.entries()) {
    for (const other of names.filter((n) => n !== names[i])) await waitOrDump(decodingTile(p, other), byName);
  }
  // The SFU connection: the page's last peer connection, connected.
  const sfuPC = (p) => p.evaluate(() => {
    const pc = window.testPCs.at(-1);
    return { count: window.testPCs.length, ice: pc.iceConnectionState, ufrag: /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? '')?.[1] };
  });
  const before = await Promise.all(pages.map(sfuPC));
  for (const b of before) assert.match(b.ice, /connected|completed/);
  const decoded = await Promise.all(pages.map((p) => p.locator(`#call-panel .tile[data-user]`).evaluateAll(
    (tiles) => Object.fromEntries(tiles.map((t) => [t.dataset.user, Number(t.dataset.framesDecoded ?? 0)])))));

  // The server stops: every page's SFU connection goes "disconnected"; each
  // restarts ICE on its own (the offer waits in the socket).
  server.proc.kill('SIGSTOP');
  try {
    for (const p of pages) await p.locator('#call-panel[data-sfu-ice="disconnected"], #call-panel[data-sfu-ice="failed"]').waitFor({ timeout: 120000 });
    for (const p of pages) await p.locator('#call-panel[data-sfu-ice-restarts]').waitFor({ timeout: 120000 });
  } finally {
    server.proc.kill('SIGCONT');
  }
  for (const [i, p] of pages.entries()) {
    await p.locator('#call-panel[data-sfu-ice="connected"], #call-panel[data-sfu-ice="completed"]').waitFor({ timeout: 120000 });
    const after = await sfuPC(p);
    assert.equal(after.count, before[i].count, `${names[i]}: the same peer connection, no rejoin`);
    assert.notEqual(after.ufrag, before[i].ufrag, `${names[i]}: new ICE credentials (a restart)`);
    for (const other of names.filter((n) => n !== names[i])) {
      // New frames after the restart (the app writes framesDecoded every second).
      await p.waitForFunction(([user, was]) => Number(document.querySelector(`#call-panel .tile[data-user="${user}"]`)?.dataset.framesDecoded ?? 0) > was,
        [other, decoded[i][other]], { timeout: 120000, polling: 500 });
    }
  }
  for (const p of pages) assert.deepEqual(p.errors, []);
}
