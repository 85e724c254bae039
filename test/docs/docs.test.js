// Executable documentation: the command and frame examples of README.md,
// docs/protocol.md and clients/js/README.md are read out of the Markdown and
// run, as written, against a real `sori serve` started the README's way, so
// a documented step that stops working fails CI.
//
// What "as written" allows, and nothing more:
//   - `go run ./cmd/sori ARGS` runs the prebuilt binary with ARGS (the same
//     program, without compiling it once per line);
//   - the server listens on a free port (SORI_LISTEN, the documented variable)
//     and 127.0.0.1:7700 in the examples is rewritten to it; its TURN server
//     is off (SORI_TURN=false), since other suites may hold port 3478;
//   - /path/to/sori is this checkout; placeholders ending in "…" in frames
//     stand for the value the previous steps produced (the token) or for any
//     value of the same type (ids, epochs, times);
//   - `make test` is not run: it is the command that runs this test.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sori-docs-'));
/** The directory the README's commands run in: `./sori-data` is created here. */
const work = path.join(tmp, 'work');
fs.mkdirSync(work);

let bin = process.env.SORI_BIN ?? '';
let port = 0;
/** @type {import('node:child_process').ChildProcess | undefined} */
let server;
let serverLog = '';

/**
 * The fenced code blocks of a Markdown file, indented ones (inside list
 * items) included.
 * @param {string} file path relative to the repository
 * @returns {{lang: string, text: string, line: number}[]}
 */
function codeBlocks(file) {
  const src = fs.readFileSync(path.join(repo, file), 'utf8');
  const out = [];
  const re = /^( *)```(\w*)\n([\s\S]*?)^\1```/gm;
  for (let m; (m = re.exec(src)); ) {
    const indent = m[1].length;
    const text = m[3]
      .split('\n')
      .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      .join('\n');
    out.push({ lang: m[2], text, line: src.slice(0, m.index).split('\n').length });
  }
  return out;
}

/**
 * The one block of a file whose text contains marker.
 * @param {string} file
 * @param {string} marker
 */
function block(file, marker) {
  const found = codeBlocks(file).filter((b) => b.text.includes(marker));
  assert.equal(found.length, 1, `${file}: expected one code block containing ${JSON.stringify(marker)}, found ${found.length}`);
  return found[0];
}

/** Rewrites the documented address to the test server's. */
function local(text) {
  return text.replaceAll('127.0.0.1:7700', `127.0.0.1:${port}`);
}

/**
 * Runs a documented shell block with bash, stopping at the first failing
 * command, and returns its stdout.
 * @param {string} script
 * @param {{cwd?: string, input?: string, env?: Record<string, string>}} [options]
 */
function sh(script, options = {}) {
  const prelude = [
    'set -euo pipefail',
    // `go run ./cmd/sori …` → the prebuilt binary; any other go command is not expected in these docs.
    'go() { if [ "${1-}" = run ] && [ "${2-}" = ./cmd/sori ]; then shift 2; "$SORI_BIN" "$@"; else echo "docs test: unexpected: go $*" >&2; return 127; fi; }',
    'trap \'echo "docs test: this documented command failed: $BASH_COMMAND" >&2\' ERR',
  ].join('\n');
  const run = spawnSync('bash', ['-c', `${prelude}\n${local(script)}`], {
    cwd: options.cwd ?? work,
    input: options.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, SORI_BIN: bin, ...npmQuiet, ...options.env },
    timeout: 240_000,
  });
  assert.equal(run.status, 0, `documented commands failed (exit ${run.status}):\n${script}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`);
  return run.stdout;
}

/** npm settings for the install examples: a local folder or tarball needs no registry. */
const npmQuiet = { npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port: p } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(p));
    });
  });
}

/** Resolves when the server answers /readyz, rejects when it exits first. */
async function ready() {
  for (;;) {
    if (server?.exitCode !== null) throw new Error(`sori serve exited (${server?.exitCode}):\n${serverLog}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  if (!bin) {
    bin = path.join(tmp, 'sori');
    execFileSync('go', ['build', '-o', bin, './cmd/sori'], { cwd: repo, stdio: 'inherit' });
  }
  // The README's first command starts the server; it is run as written,
  // in the background.
  const first = codeBlocks('README.md')[0].text.split('\n');
  assert.match(first[1], /^make test +#/, 'the README\'s second command is make test, which runs this test');
  const start = first[0];
  assert.match(start, /^go run \.\/cmd\/sori serve +#/, 'the README starts with `go run ./cmd/sori serve`');
  port = await freePort();
  server = spawn(bin, ['serve'], {
    cwd: work,
    env: { ...process.env, SORI_LISTEN: `127.0.0.1:${port}`, SORI_TURN: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (d) => (serverLog += d));
  server.stderr?.on('data', (d) => (serverLog += d));
  await ready();
});

after(() => {
  server?.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('README: first steps', () => {
  const b = block('README.md', 'go run ./cmd/sori user add');
  const out = sh(b.text, { input: 'docs-test-password-1\n' });
  assert.match(out, /created user admin/);
  assert.match(out, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/m, 'the token command prints a token');
  assert.match(out, /websocket/i, 'sori lab prints its table');
});

test('README: a backend publishes through the server API', () => {
  const out = sh(block('README.md', '/api/publish').text);
  const res = JSON.parse(out);
  assert.equal(typeof res.epoch, 'string');
  assert.ok(res.offset >= 1, out);
});

/**
 * The token the docs tell a reader to mint, from the sentence or block that
 * holds `go run ./cmd/sori token …`.
 * @param {string} file
 */
function documentedToken(file) {
  const src = fs.readFileSync(path.join(repo, file), 'utf8');
  const cmds = [
    ...[...src.matchAll(/`(go run \.\/cmd\/sori token [^`]*)`/g)].map((m) => m[1]), // in a sentence
    ...[...src.matchAll(/^(go run \.\/cmd\/sori token [^#\n]*?) *(#.*)?$/gm)].map((m) => m[1]), // in a block
  ];
  assert.ok(cmds.length >= 1, `${file} names a token command`);
  return { command: cmds[0], token: sh(cmds[0]).trim() };
}

/** Keys whose values differ from run to run: compared by type only. */
const varying = new Set(['client', 'version', 'expires_in', 'epoch', 'time', 'ping']);

/**
 * Reports how actual differs from the documented expected message, or ''.
 * @param {any} expected
 * @param {any} actual
 * @param {string} at
 * @returns {string}
 */
function difference(expected, actual, at = '') {
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return `${at || 'message'}: not an object`;
    const want = Object.keys(expected).sort().join(',');
    const got = Object.keys(actual).sort().join(',');
    if (want !== got) return `${at || 'message'}: keys ${got}, documented ${want}`;
    for (const k of Object.keys(expected)) {
      const p = at ? `${at}.${k}` : k;
      if (varying.has(k)) {
        if (typeof actual[k] !== typeof expected[k]) return `${p}: a ${typeof actual[k]}, documented a ${typeof expected[k]}`;
        continue;
      }
      const d = difference(expected[k], actual[k], p);
      if (d) return d;
    }
    return '';
  }
  if (typeof expected === 'string' && expected.includes('…')) return typeof actual === 'string' ? '' : `${at}: not a string`;
  try {
    assert.deepEqual(actual, expected);
    return '';
  } catch {
    return `${at}: ${JSON.stringify(actual)}, documented ${JSON.stringify(expected)}`;
  }
}

test('docs/protocol.md: "Try it" frames, sent and answered as shown', async () => {
  const { token } = documentedToken('docs/protocol.md');
  const b = block('docs/protocol.md', '> {"id":1,"op":"connect"');
  const src = fs.readFileSync(path.join(repo, 'docs/protocol.md'), 'utf8');
  const tool = /`websocat -H 'Sec-WebSocket-Protocol: (\S+)' (ws:\/\/\S+)`/.exec(src);
  assert.ok(tool, 'protocol.md names the WebSocket URL and subprotocol');
  const ws = new WebSocket(local(tool[2]), tool[1]);
  /** @type {any[]} */
  const received = [];
  /** @type {(() => void) | null} */
  let wake = null;
  ws.on('message', (data) => {
    for (const line of String(data).split('\n')) if (line) received.push(JSON.parse(line));
    wake?.();
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  try {
    // Steps: each sent frame and the messages documented after it.
    /** @type {{send: any, expect: any[]}[]} */
    const steps = [];
    for (const line of b.text.split('\n')) {
      if (line.startsWith('> ')) steps.push({ send: JSON.parse(line.slice(2)), expect: [] });
      else if (line.startsWith('< ')) steps.at(-1)?.expect.push(JSON.parse(line.slice(2)));
    }
    assert.ok(steps.length >= 3, 'the block sends frames');
    for (const step of steps) {
      const frame = { ...step.send };
      if (typeof frame.token === 'string' && frame.token.includes('…')) frame.token = token;
      ws.send(JSON.stringify(frame));
      // Messages of one step may come in any order (the doc says so for a
      // publication and the publish reply); each documented one must come.
      for (const want of step.expect) {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const i = received.findIndex((m) => difference(want, m) === '');
          if (i >= 0) {
            received.splice(i, 1);
            break;
          }
          if (Date.now() > deadline) {
            const why = received.map((m) => `${JSON.stringify(m)} (${difference(want, m)})`).join('\n  ');
            assert.fail(`after ${JSON.stringify(step.send)}, documented ${JSON.stringify(want)}; received:\n  ${why || '(nothing)'}`);
          }
          await new Promise((r) => {
            wake = () => r(undefined);
            setTimeout(r, 200);
          });
        }
      }
    }
  } finally {
    ws.close();
  }
});

/** A fresh directory for an npm project of the JS SDK's examples. */
function project(name) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  return dir;
}

test('clients/js README: install from the checkout, then the Node example receives a publication', async () => {
  const install = block('clients/js/README.md', 'npm install /path/to/sori/clients/js');
  const app = project('node-app');
  sh(install.text.replaceAll('/path/to/sori', repo), { cwd: app });
  const pkg = JSON.parse(fs.readFileSync(path.join(app, 'node_modules/@sori/client/package.json'), 'utf8'));
  assert.equal(pkg.name, '@sori/client');
  assert.equal(pkg.license, 'MIT');

  // The example imports ws, which the README tells Node 20 users to install;
  // this test's own copy stands in for `npm install ws`.
  fs.symlinkSync(path.join(here, 'node_modules/ws'), path.join(app, 'node_modules/ws'), 'dir');
  const example = block('clients/js/README.md', "import WebSocket from 'ws';");
  fs.writeFileSync(path.join(app, 'example.mjs'), local(example.text));
  const channel = /subscribe\('([^']+)'/.exec(example.text)?.[1];
  assert.ok(channel, 'the example subscribes to a channel');

  const { token } = documentedToken('README.md');
  const child = spawn(process.execPath, ['example.mjs'], { cwd: app, env: { ...process.env, SORI_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  try {
    const key = /"api_key": "([^"]+)"/.exec(fs.readFileSync(path.join(work, 'sori-data/secrets.json'), 'utf8'))?.[1];
    // The example prints nothing when it has subscribed: publish until a
    // publication reaches it (or it dies).
    const deadline = Date.now() + 60_000;
    while (!/^\d+ /m.test(out)) {
      assert.equal(child.exitCode, null, `the example exited (${child.exitCode}):\n${err}`);
      assert.ok(Date.now() < deadline, `the example printed no publication:\n${out}\n${err}`);
      const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: 'POST',
        headers: { authorization: `apikey ${key}` },
        body: JSON.stringify({ channel, data: { price: 97000 } }),
      });
      assert.equal(res.status, 200, await res.text());
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(out, /^\d+ \{ price: 97000 \}$/m);
  } finally {
    child.kill();
  }
});

test('clients/js README: npm pack, then install the tarball', () => {
  const b = block('clients/js/README.md', 'npm pack /path/to/sori/clients/js');
  const app = project('packed-app');
  sh(b.text.replaceAll('/path/to/sori', repo), { cwd: app });
  const installed = path.join(app, 'node_modules/@sori/client');
  assert.ok(!fs.lstatSync(installed).isSymbolicLink(), 'a copy, not a link');
  for (const f of ['package.json', 'index.d.ts', 'LICENSE', 'src/index.js']) {
    assert.ok(fs.existsSync(path.join(installed, f)), `the package has ${f}`);
  }
});

test('clients/js README: every JavaScript example is valid module syntax', () => {
  const blocks = codeBlocks('clients/js/README.md').filter((b) => b.lang === 'js');
  assert.ok(blocks.length >= 3);
  for (const b of blocks) {
    const file = path.join(tmp, `block-${b.line}.mjs`);
    fs.writeFileSync(file, b.text);
    const run = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
    assert.equal(run.status, 0, `clients/js/README.md:${b.line}: ${run.stderr}`);
  }
});

test('the JS package ships the repository LICENSE', () => {
  assert.equal(
    fs.readFileSync(path.join(repo, 'clients/js/LICENSE'), 'utf8'),
    fs.readFileSync(path.join(repo, 'LICENSE'), 'utf8'),
  );
});
