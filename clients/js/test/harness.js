// Test harness: runs a real `sori serve` on a free loopback port with a
// temporary data dir, and offers the server API to the tests.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (clients/js/test → ../../..). */
export const repoRoot = path.resolve(here, '../../..');
/** Where test/build-server.js puts the binary for one `npm test` run. */
export const cachedBinary = path.resolve(here, '../node_modules/.cache/sori-test/sori');

/**
 * Builds the server from the checkout into cachedBinary.
 * @returns {string} the binary's path
 */
export function buildServer() {
  mkdirSync(path.dirname(cachedBinary), { recursive: true });
  execFileSync('go', ['build', '-o', cachedBinary, './cmd/sori'], { cwd: repoRoot, stdio: 'inherit' });
  return cachedBinary;
}

/**
 * The binary to test against: $SORI_BIN, or the one built for this run
 * (built now when a single test file runs on its own).
 * @returns {string}
 */
export function serverBinary() {
  if (process.env.SORI_BIN) return process.env.SORI_BIN;
  return existsSync(cachedBinary) ? cachedBinary : buildServer();
}

/** WebSocket for Node 20, which has no stable global one. */
export const WebSocket = globalThis.WebSocket ?? (await import('ws')).default;

export const API_KEY = 'test-api-key-0123456789';

/**
 * Namespaces of the test server: the defaults the server needs plus the
 * tests' own, so no test depends on what the defaults happen to be.
 *  room:  history 1000 (the resume tests publish hundreds), presence, join/leave
 *  feed:  only the server publishes
 *  priv:  the token must grant the channel
 *  plain: no history
 */
const namespaces = [
  { name: '', history_size: 0 },
  { name: 'chat', history_size: 200, history_ttl: '24h', presence: true, join_leave: true, subscribe: 'token' },
  { name: 'feed', history_size: 16, history_ttl: '1h', publish: 'server', anonymous: true, conflate: true },
  { name: 'user', history_size: 100, history_ttl: '24h', publish: 'server', subscribe: 'user' },
  { name: 'room', history_size: 1000, history_ttl: '1h', presence: true, join_leave: true },
  { name: 'priv', history_size: 10, history_ttl: '1h', subscribe: 'token' },
  { name: 'plain', history_size: 0 },
];

/** @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A running server.
 * @typedef {object} TestServer
 * @property {string} url base URL, http://127.0.0.1:PORT
 * @property {number} port
 * @property {string} dataDir
 * @property {import('node:child_process').ChildProcess} child
 * @property {(path: string, body: any) => Promise<any>} api POST to the server API
 * @property {(user: string, options?: {ttl?: string, channels?: string[], publish?: string[]}) => Promise<string>} token
 * @property {() => Promise<void>} pause SIGSTOP, resolved once every thread is stopped (Linux /proc)
 * @property {() => void} resume SIGCONT
 * @property {() => Promise<void>} kill SIGKILL and wait for the exit (the data dir stays)
 * @property {() => Promise<void>} stop kill, then remove the data dir
 */

/**
 * Starts `sori serve`. Settings go through SORI_* variables, which
 * `sori serve --help` documents next to each flag.
 * @param {{port?: number, dataDir?: string, env?: Record<string, string>}} [options]
 * @returns {Promise<TestServer>}
 */
export async function startServer(options = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'sori-js-test-'));
  const configFile = path.join(dataDir, 'test-config.json');
  writeFileSync(configFile, JSON.stringify({ namespaces }));
  const child = spawn(serverBinary(), ['serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dataDir,
      SORI_LISTEN: `127.0.0.1:${options.port ?? 0}`,
      SORI_DATA: dataDir,
      SORI_CONFIG: configFile,
      SORI_API_KEYS: API_KEY,
      SORI_TURN: 'false', // calls are not under test here; parallel servers would clash on port 3478
      ...options.env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  exited.then(() => running.delete(child));

  const port = await new Promise((resolve, reject) => {
    let log = '';
    const deadline = setTimeout(() => fail(new Error(`sori did not start within 20 s:\n${log}`)), 20_000);
    const fail = (/** @type {Error} */ err) => {
      clearTimeout(deadline);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /msg="sori listening" addr=127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(deadline);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`sori exited with ${code}:\n${log}`)));
  });

  const url = `http://127.0.0.1:${port}`;
  const api = async (/** @type {string} */ p, /** @type {any} */ body) => {
    const res = await fetch(url + p, {
      method: 'POST',
      headers: { Authorization: `apikey ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${p}: HTTP ${res.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    port,
    dataDir,
    child,
    api,
    token: async (user, opts = {}) => (await api('/api/token', { user, ...opts })).token,
    pause: async () => {
      child.kill('SIGSTOP');
      // kill() only queues the signal: until every thread is stopped the
      // server may still answer.
      await waitFor(() => allThreadsStopped(/** @type {number} */ (child.pid)), 'the server process to stop');
    },
    resume: () => {
      child.kill('SIGCONT');
    },
    kill,
    stop: async () => {
      child.kill('SIGCONT');
      await kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Reports whether every thread of a process is in state T (stopped).
 * @param {number} pid
 */
function allThreadsStopped(pid) {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The state follows the parenthesized command name.
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  });
}

/**
 * Resolves once check() returns a truthy value (polled every few ms);
 * rejects after the deadline. A guard against hangs, not a timing assertion.
 * @template T
 * @param {() => T} check
 * @param {string} what
 * @param {number} [deadline=15000]
 * @returns {Promise<T>}
 */
export function waitFor(check, what, deadline = 15_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      let value;
      try {
        value = check();
      } catch (err) {
        reject(err);
        return;
      }
      if (value) resolve(value);
      else if (Date.now() - started > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/**
 * Resolves with the arguments of the next `event` from an Emitter for which
 * filter returns true; rejects after the deadline.
 * @param {{on: (e: any, f: (...a: any[]) => void) => () => void}} emitter
 * @param {string} event
 * @param {(...args: any[]) => boolean} [filter]
 * @param {number} [deadline=15000]
 * @returns {Promise<any[]>}
 */
export function nextEvent(emitter, event, filter = () => true, deadline = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for event ${event}`));
    }, deadline);
    const off = emitter.on(event, (...args) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}
