// What the call tests share: a Chromium with fake camera, microphone and
// screen, and pages whose media is kept small. Every page of a call test
// encodes its camera and decodes everybody else's on a machine that also
// runs the Go tests, so the fake devices send few pixels at a low frame rate
// (a 640×360 camera at 30 fps per page is what made clicks time out at a
// load average of 50), and actions get a minute rather than 15 s.
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
