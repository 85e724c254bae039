// End-to-end test: builds the real `sori` binary, starts `sori serve` on a
// free loopback port with a temporary data dir, and drives it with the Node
// `ws` client (an implementation independent of the Go code under test).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import WebSocket from 'ws';

const repo = resolve(import.meta.dirname, '../..');
const apiKey = 'e2e-api-key';
let dir, proc, base, wsURL, stderr = '';

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function until(cond, what, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; server log:\n${stderr}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

async function api(path, body, status = 200) {
  const res = await fetch(base + path, {
    method: 'POST', headers: { Authorization: 'apikey ' + apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, status, `${path}: ${JSON.stringify(json)}`);
  return json;
}

// Client wraps a ws connection: commands with ids, one reply each, pushes queued.
class Client {
  constructor(ws) {
    this.ws = ws; this.id = 0; this.waiting = new Map(); this.pushes = []; this.pushWaiters = [];
    this.closed = once(ws, 'close').then(([code, reason]) => ({ code, reason: reason.toString() }));
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'server sent a binary frame');
      const m = JSON.parse(data.toString());
      if (m.id) {
        const w = this.waiting.get(m.id);
        assert.ok(w, `reply to unknown id ${m.id}`);
        this.waiting.delete(m.id);
        w(m);
      } else if (this.pushWaiters.length) {
        this.pushWaiters.shift()(m);
      } else {
        this.pushes.push(m);
      }
    });
  }
  static async open(opts = {}) {
    const ws = new WebSocket(wsURL, 'sori.v1', opts);
    await once(ws, 'open');
    assert.equal(ws.protocol, 'sori.v1');
    return new Client(ws);
  }
  send(cmd) {
    const id = ++this.id;
    const reply = new Promise(res => this.waiting.set(id, res));
    this.ws.send(JSON.stringify({ id, ...cmd }));
    return reply;
  }
  async call(cmd) {
    const r = await this.send(cmd);
    assert.ok(r.result, `${cmd.op}: ${JSON.stringify(r.error)}`);
    return r.result;
  }
  push() {
    if (this.pushes.length) return Promise.resolve(this.pushes.shift());
    return new Promise(res => this.pushWaiters.push(res));
  }
}

async function token(user, channels = []) {
  return (await api('/api/token', { user, ttl: '1h', channels })).token;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sori-e2e-'));
  // make test builds the binary once for every Node suite (SORI_BIN).
  let bin = process.env.SORI_BIN;
  if (!bin) {
    bin = join(dir, 'sori');
    execFileSync('go', ['build', '-o', bin, './cmd/sori'], { cwd: repo, stdio: 'inherit' });
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  wsURL = `ws://127.0.0.1:${port}/ws`;
  proc = spawn(bin, ['serve', '--turn=false', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data'),
    '--api-keys', apiKey, '--shutdown-timeout', '5s'], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', d => { stderr += d; });
  await until(async () => {
    try { return (await fetch(base + '/readyz')).status === 200; } catch { return false; }
  }, 'sori serve to be ready');
});

after(() => {
  if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('connect, subscribe, publish from a client and from the server API', async () => {
  const alice = await Client.open();
  const hello = await alice.call({ op: 'connect', token: await token('alice') });
  assert.equal(hello.user, 'alice');
  assert.ok(hello.ping > 0);
  await alice.call({ op: 'subscribe', channel: 'lobby' });
  const bob = await Client.open();
  await bob.call({ op: 'connect', token: await token('bob') });
  await bob.call({ op: 'subscribe', channel: 'lobby' });

  const pub = await bob.call({ op: 'publish', channel: 'lobby', data: { text: 'hi from bob' } });
  assert.equal(pub.offset, 1);
  for (const c of [alice, bob]) {
    const p = await c.push();
    assert.deepEqual([p.push, p.channel, p.offset, p.user, p.data.text], ['pub', 'lobby', 1, 'bob', 'hi from bob']);
  }
  await api('/api/publish', { channel: 'lobby', data: { text: 'from the backend' } });
  const p = await alice.push();
  assert.equal(p.data.text, 'from the backend');
  assert.equal(p.user, undefined);

  const bad = await alice.send({ op: 'teleport' });
  assert.equal(bad.error.code, 102);
  alice.ws.close(1000); bob.ws.close(1000);
  assert.equal((await alice.closed).code, 1000);
});

test('permessage-deflate both ways', async () => {
  const c = await Client.open({ perMessageDeflate: { threshold: 0 } });
  assert.match(c.ws.extensions, /permessage-deflate/);
  await c.call({ op: 'connect', token: await token('carol') });
  await c.call({ op: 'subscribe', channel: 'big' });
  const text = 'squeeze '.repeat(2000);
  await c.call({ op: 'publish', channel: 'big', data: { text } });
  assert.equal((await c.push()).data.text, text);
  c.ws.close(1000);
  await c.closed;
});

test('resume after reconnect gets exactly what was missed', async () => {
  const tok = await token('dave');
  const first = await Client.open();
  await first.call({ op: 'connect', token: tok });
  const sub = await first.call({ op: 'subscribe', channel: 'feed:eur' });
  await api('/api/publish', { channel: 'feed:eur', data: { v: 1 } });
  const seen = await first.push();
  first.ws.terminate(); // drop without a close handshake
  await first.closed;

  await api('/api/broadcast', { channels: ['feed:eur'], data: { v: 2 } });
  await api('/api/publish', { channel: 'feed:eur', data: { v: 3 } });

  const again = await Client.open();
  await again.call({ op: 'connect', token: tok });
  const res = await again.call({ op: 'subscribe', channel: 'feed:eur', recover: true, epoch: sub.epoch, offset: seen.offset });
  assert.equal(res.recovered, true);
  assert.deepEqual(res.publications.map(p => [p.offset, p.data.v]), [[2, 2], [3, 3]]);
  await api('/api/publish', { channel: 'feed:eur', data: { v: 4 } });
  assert.equal((await again.push()).offset, 4);

  const lost = await again.send({ op: 'subscribe', channel: 'feed:usd', recover: true, epoch: 'gone', offset: 7 });
  assert.equal(lost.result.recovered, undefined, 'a foreign epoch must not recover');
  again.ws.close(1000);
  await again.closed;
});

test('bad token closes with 4501', async () => {
  const c = await Client.open();
  const r = await c.send({ op: 'connect', token: 'not-a-jwt' });
  assert.equal(r.error.code, 113);
  assert.equal((await c.closed).code, 4501);
});

test('SIGTERM closes clients with 1001 and a reconnect hint', async () => {
  const c = await Client.open();
  await c.call({ op: 'connect', token: await token('erin') });
  // Listen for the exit before the signal: the server may be gone before the
  // close event has been handled, and a missed 'exit' would wait forever.
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const { code, reason } = await c.closed;
  assert.equal(code, 1001);
  assert.match(reason, /reconnect/);
  const [exit] = await exited;
  assert.equal(exit, 0, stderr);
});
