// Test harness: builds the sori binary, runs `sori serve` as a child process
// on a free loopback port with a temporary data dir, and launches Debian's
// chromium through playwright-core. Everything started here is stopped by
// the returned handles; the tests register those in t.after.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { maybeRouteSDK, signUp, logIn, createRoom, joinPublicRoom } from './driver.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const artifacts = path.join(repoRoot, 'test-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'sori-e2e-'));
let binary = '';

/** Builds ./cmd/sori once per test process (or uses $SORI_BIN). */
export function buildSori() {
  if (binary) return binary;
  if (process.env.SORI_BIN) return (binary = path.resolve(process.env.SORI_BIN)); // a prebuilt binary
  binary = path.join(tmpRoot, 'sori');
  execFileSync('go', ['build', '-o', binary, './cmd/sori'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  return binary;
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(tmpRoot, prefix));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until fn() returns a truthy value (or resolves to one), polling until the deadline. */
export async function waitFor(fn, { timeout = 15000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { lastErr = err; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}${lastErr ? `: ${lastErr.message}` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Starts `sori serve` on 127.0.0.1:port with dataDir and waits for /readyz.
 * Returns {url, port, turnPort, dataDir, proc, stop(signal), log()}.
 */
export async function startServer({ port, dataDir, turnPort, args = [] } = {}) {
  const bin = buildSori();
  port ??= await freePort();
  dataDir ??= tempDir('data-');
  const logs = [];
  // The embedded TURN server gets its own port too, so that tests (and
  // other servers on this machine) do not fight over 3478.
  turnPort ??= await freePort();
  const proc = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--log-level', 'warn', ...args], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SORI_TURN_LISTEN: `127.0.0.1:${turnPort}` },
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve({ code, sig })));
  proc.stdout.on('data', (b) => logs.push(String(b)));
  proc.stderr.on('data', (b) => logs.push(String(b)));
  const url = `http://127.0.0.1:${port}`;
  let dead = false;
  exited.then(() => { dead = true; });
  await waitFor(async () => {
    if (dead) throw new Error(`sori exited early:\n${logs.join('')}`);
    const res = await fetch(`${url}/readyz`).catch(() => null);
    return res?.ok;
  }, { timeout: 30000, message: `sori on ${url}` });
  return {
    url, port, turnPort, dataDir, proc,
    log: () => logs.join(''),
    /** Stops the server (SIGKILL by default: a crash) and waits for the process to end. */
    async stop(signal = 'SIGKILL') {
      if (!dead) proc.kill(signal);
      await exited;
    },
  };
}

export function apiKey(dataDir) {
  return JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')).api_key;
}

/** Launches headless chromium with a fresh profile (playwright's own temporary user data dir). */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/** A page that records dialogs, page errors and CSP violations, for the assertions of the tests. */
export async function newPage(browser, baseURL, { viewport = { width: 1200, height: 800 } } = {}) {
  const context = await browser.newContext({ baseURL, viewport });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = []; // uncaught exceptions
  page.consoleErrors = []; // includes expected ones, such as the 401 of /api/v1/me before logging in
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push(m.text()); });
  return { context, page };
}

/**
 * Saves a screenshot for people to look at. It proves nothing, so it never
 * fails a test: on a loaded machine a video page's screenshot can take longer
 * than any timeout (it once failed a call test after 15 s).
 */
export async function screenshot(page, name) {
  try {
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: false, timeout: 30000 });
  } catch (err) {
    console.log(`# screenshot ${name} skipped: ${err.message.split('\n')[0]}`);
  }
}

/**
 * The chat suites' common set-up: a server (started unless one is given), a
 * browser, and one page per user (the SDK routed when SORI_SDK_DIR is set).
 * Each user signs up (a name) or logs in ({ name, logIn: true }, an account
 * made beforehand); with `room`, the first user creates that public room and
 * the others join it. `beforeSignUp(pages)` runs once the pages exist and
 * before anyone signs up (to route a page's WebSocket through the test).
 * Returns { server, browser, pages: [{ context, page }, …], roomId }. If the
 * set-up fails, what it started is stopped before the error is thrown.
 */
export async function chatFixture({ server, users = ['alice', 'bob'], room, beforeSignUp } = {}) {
  const started = !server;
  let browser;
  try {
    server ??= await startServer();
    browser = await launchBrowser();
    const pages = [];
    for (const _ of users) {
      const p = await newPage(browser, server.url);
      await maybeRouteSDK(p.context);
      pages.push(p);
    }
    await beforeSignUp?.(pages);
    for (const [i, u] of users.entries()) {
      if (typeof u === 'string') await signUp(pages[i].page, u);
      else if (u.logIn) await logIn(pages[i].page, u.name);
      else await signUp(pages[i].page, u.name);
    }
    let roomId;
    if (room) {
      await createRoom(pages[0].page, room);
      roomId = Number((await pages[0].page.evaluate(() => location.hash)).match(/\d+/)[0]);
      for (const p of pages.slice(1)) await joinPublicRoom(p.page, room);
    }
    return { server, browser, pages, roomId };
  } catch (err) {
    await browser?.close().catch(() => {});
    if (started) await server?.stop('SIGTERM').catch(() => {});
    throw err;
  }
}
