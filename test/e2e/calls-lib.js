// What the call tests share: a Chromium with fake camera, microphone and
// screen, and pages whose media is kept small. Every page of a call test
// encodes its camera and decodes everybody else's on a machine that also
// runs the Go tests, so the fake devices send few pixels at a low frame rate
// (a 640×360 camera at 30 fps per page is what made clicks time out at a
// load average of 50), and actions get a minute rather than 15 s.
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, newPage, artifacts } from './helpers.js';
import { maybeRouteSDK } from './driver.js';

/**
 * Headless Chromium with fake media devices; the fake display capture
 * answers getDisplayMedia without a picker. (The frame rate is set by
 * newCallPage's constraints: with the device's own option,
 * --use-fake-device-for-media-stream=fps=10, two pages' connections stayed
 * at ICE state "new" for a minute.)
 */
export function launchCallBrowser() {
  return launchBrowser(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required']);
}

/**
 * A page whose camera is asked for width×height at fps, whatever the app
 * asks for (the app's own constraints stay in place on a real device), and
 * whose shared screen is 320×180 at 5 fps. At 270 lines and up the app sends
 * its camera to the SFU as two simulcast layers (full and half), below that
 * as one stream.
 */
export async function newCallPage(browser, baseURL, { width = 320, height = 180, fps = 10, viewport = { width: 900, height: 700 } } = {}) {
  const { context, page } = await newPage(browser, baseURL, { viewport });
  await maybeRouteSDK(context);
  await context.addInitScript(([w, h, f]) => {
    const md = navigator.mediaDevices;
    const get = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => get(c?.video ? { ...c, video: { width: w, height: h, frameRate: f } } : c);
    const display = md.getDisplayMedia?.bind(md);
    if (display) md.getDisplayMedia = (c) => display({ ...c, video: { width: 320, height: 180, frameRate: 5 } });
  }, [width, height, fps]);
  context.setDefaultTimeout(60000);
  // The page's console with times, for a failing test's log (waitOrDump).
  page.log = [];
  const t0 = Date.now();
  page.on('console', (m) => page.log.push(`${((Date.now() - t0) / 1000).toFixed(1)} s ${m.type()}: ${m.text()}`));
  return { context, page };
}

/** The locator of page's tile of user once it has decoded a frame (the app writes getStats' framesDecoded on it). */
export function decodingTile(page, user) {
  return page.locator(`#call-panel .tile[data-user="${user}"][data-frames-decoded]:not([data-frames-decoded="0"])`);
}

/** The locator of page's large tile of user's shared screen once it has decoded a frame. */
export function decodingScreen(page, user) {
  return page.locator(`#call-panel .tile.screen-tile[data-screen-of="${user}"][data-frames-decoded]:not([data-frames-decoded="0"])`);
}

/** Every tile of page's call panel, with its data-* and what it shows: for a failing test's log. */
export async function tilesOf(page) {
  return page.evaluate(() => [...document.querySelectorAll('#call-panel .tile')]
    .map((t) => ({ ...t.dataset, videos: t.querySelectorAll('video').length, text: t.textContent })))
    .catch((err) => `(unreadable: ${err.message})`);
}

/**
 * Waits for locator; on failure logs what each page's tiles show (names
 * maps a label to its page) before rethrowing.
 */
export async function waitOrDump(locator, pages, opts) {
  try {
    await locator.waitFor(opts);
  } catch (err) {
    await dumpPages(pages);
    throw err;
  }
}

/** Logs what each page's call panel, tiles and console show (pages maps a label to its page). */
export async function dumpPages(pages) {
  for (const [name, p] of Object.entries(pages)) {
    const panel = await p.evaluate(() => ({ ...document.querySelector('#call-panel')?.dataset, conn: document.querySelector('#conn')?.dataset.state })).catch(() => ({}));
    console.log(`# ${name}'s panel ${JSON.stringify(panel)}, tiles: ${JSON.stringify(await tilesOf(p))}`);
    const pcs = await p.evaluate(() => (window.testPCs ?? []).map((pc) => ({ sig: pc.signalingState, ice: pc.iceConnectionState,
      gather: pc.iceGatheringState, local: pc.localDescription?.type, remote: pc.remoteDescription?.type,
      remoteCands: (pc.remoteDescription?.sdp.match(/a=candidate/g) ?? []).length }))).catch(() => []);
    if (pcs.length) console.log(`# ${name}'s peer connections ${JSON.stringify(pcs)}`);
    if (p.log?.length) console.log(`# ${name}'s console (last 30):\n${p.log.slice(-30).map((l) => `#   ${l}`).join('\n')}`);
  }
}

/**
 * After a failed call test: asks the server for a goroutine dump (SIGQUIT:
 * the Go runtime prints every goroutine's stack and exits), saves its whole
 * log as test-artifacts/<name>-server.log and prints the log's end. A
 * negotiation that never completes shows there as an SFU goroutine waiting.
 */
export async function dumpServer(server, name) {
  if (!server) return;
  try {
    await saveDump(server, name);
  } catch (err) {
    console.log(`# no server dump: ${err.message}`); // the test's own error is the one to report
  }
}

async function saveDump(server, name) {
  if (server.proc.exitCode === null && server.proc.signalCode === null) {
    // Its output is whole once the pipes close; a stuck process is killed after 20 s.
    const closed = new Promise((resolve) => server.proc.once('close', resolve));
    server.proc.kill('SIGQUIT');
    let timer;
    await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, 20000); })]);
    clearTimeout(timer);
  }
  await server.stop();
  const file = path.join(artifacts, `${name}-server.log`);
  fs.writeFileSync(file, server.log());
  console.log(`# server log with a goroutine dump: ${file}; its end before the dump:\n${server.log().split('SIGQUIT')[0].slice(-3000)}`);
}

/**
 * A UDP relay for one page's connection to the SFU, on loopback, with a
 * switch that cuts it: every packet is dropped, both ways, while cut is
 * true (a network that went away). The page is told the SFU is at
 * relay.port (routeSFU rewrites the SFU's candidates); each address the
 * page sends from gets a socket of its own towards the SFU, which sees
 * those as the page (peer-reflexive candidates: the page's own candidates
 * are rewritten to relay.sink, a socket that drops everything, so that the
 * SFU cannot reach the page past the relay). The SFU's address is learnt
 * from its candidates (relay.sfu). relay.packets counts what passed.
 */
export async function udpRelay() {
  const bound = async () => {
    const s = dgram.createSocket('udp4');
    await new Promise((resolve, reject) => { s.once('error', reject); s.bind(0, '127.0.0.1', resolve); });
    return s;
  };
  const front = await bound(); // the page's "SFU"
  const sink = await bound(); // the page's rewritten candidates: nothing gets through
  sink.on('message', () => {});
  const relay = { port: front.address().port, sink: sink.address().port, sfu: null, cut: false, packets: 0, sockets: new Map() };
  front.on('message', async (msg, from) => {
    if (relay.cut || !relay.sfu) return;
    const key = `${from.address}:${from.port}`;
    let back = relay.sockets.get(key);
    if (!back) {
      back = bound();
      relay.sockets.set(key, back);
      (await back).on('message', (m) => {
        if (relay.cut) return;
        relay.packets += 1;
        front.send(m, from.port, from.address);
      });
    }
    relay.packets += 1;
    (await back).send(msg, relay.sfu.port, relay.sfu.address);
  });
  relay.close = async () => {
    for (const s of [front, sink, ...await Promise.all(relay.sockets.values())]) s.close();
  };
  return relay;
}

/** candidate (an a=candidate value, "candidate:…") with its address and port replaced. */
function moveCandidate(candidate, port, seen) {
  const f = candidate.split(' ');
  if (f.length < 8) return candidate;
  seen?.(f[4], Number(f[5]), f[2].toLowerCase());
  f[4] = '127.0.0.1';
  f[5] = String(port);
  return f.join(' ');
}

function moveSDP(sdp, port, seen) {
  return sdp.replace(/^a=(candidate:.*?)\r?$/gm, (line, c) => `a=${moveCandidate(c, port, seen)}`);
}

/**
 * Routes context's WebSocket through the test: the signals between the page
 * and "sfu" get their candidates rewritten so that the page's connection to
 * the SFU runs through relay (udpRelay), and on.signal(event) sees each of
 * them: {dir: 'out', data} for the page's call.signal data to "sfu", {dir:
 * 'in', push} for a signal push from "sfu". While hold() returns true,
 * frames wait, both ways, in arrival order; release() sends them on.
 * Anything else passes as it is.
 */
export async function routeSFU(context, relay, on) {
  const held = [];
  const rewrite = (frame, out) => String(frame).split('\n').map((line) => {
    let msg;
    try { msg = JSON.parse(line); } catch { return line; }
    if (out && msg.op === 'rpc' && msg.method === 'call.signal' && msg.data?.to === 'sfu') {
      const d = msg.data;
      if (d.candidate?.candidate) d.candidate.candidate = moveCandidate(d.candidate.candidate, relay.sink);
      if (d.description?.sdp) d.description.sdp = moveSDP(d.description.sdp, relay.sink);
      on.signal?.({ dir: 'out', data: d });
      return JSON.stringify(msg);
    }
    if (!out && msg.push === 'call' && msg.event === 'signal' && msg.from === 'sfu') {
      const seen = (address, port, proto) => { if (proto === 'udp' && !relay.sfu) relay.sfu = { address, port }; };
      if (msg.candidate?.candidate) msg.candidate.candidate = moveCandidate(msg.candidate.candidate, relay.port, seen);
      if (msg.description?.sdp) msg.description.sdp = moveSDP(msg.description.sdp, relay.port, seen);
      on.signal?.({ dir: 'in', push: msg });
      return JSON.stringify(msg);
    }
    return line;
  }).join('\n');
  let pass = null;
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const srv = ws.connectToServer();
    pass = (to, frame) => (to === 'server' ? srv.send(frame) : ws.send(frame));
    ws.onMessage((frame) => {
      const f = rewrite(frame, true);
      if (on.hold?.()) held.push(['server', f]); else srv.send(f);
    });
    srv.onMessage((frame) => {
      const f = rewrite(frame, false);
      if (on.hold?.()) held.push(['page', f]); else { on.beforePage?.(f); ws.send(f); }
    });
  });
  return {
    held,
    release() {
      for (const [to, f] of held.splice(0)) {
        if (to === 'page') on.beforePage?.(f);
        pass(to, f);
      }
    },
  };
}
