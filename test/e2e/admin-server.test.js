// Browser tests of the server-admin page (#/admin, issue 14): an
// administrator (made with `sori user add --admin`) sees the live numbers
// of the server move, lists users, looks at and ends a user's sessions (the
// user's page is signed out), resets a password (the new one logs in);
// a user who is not an administrator has no link and the API refuses them.
// Parts of the page whose endpoints the server does not have yet (disable,
// rooms, sign-up mode, invites) have their own tests, skipped until then.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chatFixture, startServer, screenshot, waitFor, buildSori, tempDir } from './helpers.js';
import { logIn, createRoom, send } from './driver.js';

let server;
let browser;
let root; // the administrator
let bob;
const has = {}; // endpoint -> whether the server has it

before(async () => {
  const dataDir = tempDir('data-');
  execFileSync(buildSori(), ['user', 'add', 'root', '--admin', '--data', dataDir], { input: 'correct horse battery\n', stdio: ['pipe', 'ignore', 'inherit'] });
  server = await startServer({ dataDir });
  ({ browser, pages: [root, bob] } = await chatFixture({ server, users: [{ name: 'root', logIn: true }, 'bob'] }));
  // Which of the contract's endpoints this server has: a path no route claims answers 404 "no API endpoint …".
  const probe = async (method, path) => {
    const res = await root.context.request.fetch(path, { method, headers: { 'X-CSRF-Token': await csrf(root.context) }, data: {} });
    if (res.status() === 405) return false;
    return !(res.status() === 404 && /^no API endpoint/.test((await res.json().catch(() => ({})))?.error?.message ?? ''));
  };
  has.disable = await probe('POST', '/api/v1/admin/users/nobody-here/disable');
  has.rooms = await probe('GET', '/api/v1/admin/rooms');
  has.registration = await probe('GET', '/api/v1/auth/registration');
  has.invites = await probe('GET', '/api/v1/admin/invites');
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

async function csrf(context) {
  return (await context.cookies()).find((c) => c.name === 'sori_csrf')?.value ?? '';
}

/** The number shown for a stat ("Connections", "Messages/s", …). */
async function stat(page, label) {
  return Number(await page.locator(`#admin-stats [data-stat="${label}"] .stat-value`).textContent());
}

async function openAdmin(page) {
  await page.getByRole('link', { name: 'Server admin' }).click();
  await page.locator('#admin-view').waitFor();
}

function userRow(page, name) {
  return page.locator(`#admin-users tr[data-user="${name}"]`);
}

test('live numbers: connections and messages per second move with what users do', async () => {
  const r = root.page;
  await openAdmin(r);
  await r.locator('#admin-stats[data-samples="2"]').waitFor(); // two polls: the rate has a baseline
  assert.ok(await stat(r, 'Connections') >= 2, 'root and bob are connected');
  assert.match(await r.locator('[data-stat="Transports"] .stat-value').textContent(), /WebSocket [1-9]/);
  // Bob writes; a sample covering that time has a rate above 0 (publications since the previous poll).
  const samples = async () => Number(await r.locator('#admin-stats').getAttribute('data-samples'));
  await createRoom(bob.page, 'busy');
  const first = await samples();
  for (let i = 0; i < 5; i++) await send(bob.page, `busy ${i}`);
  const sent = await samples();
  await waitFor(async () => (await samples()) > sent, { message: 'a poll after the messages' });
  const rates = (await r.locator('[data-stat="Messages/s"]').getAttribute('data-values')).split(' ').map(Number);
  const since = rates.slice(rates.length - ((await samples()) - first));
  assert.ok(since.some((x) => x > 0), `a rate above 0 while bob wrote: ${since}`);
  assert.ok(rates.every((x) => x >= 0));
  await screenshot(r, 'server-admin-live');
});

test('users: sessions listed and ended (the page is signed out), a password reset that logs in', async () => {
  const r = root.page;
  const b = bob.page;
  await r.getByRole('button', { name: 'Refresh' }).click();
  const row = userRow(r, 'bob');
  await row.waitFor();
  assert.match(await row.locator('.user-status').textContent(), /online/);
  assert.equal(await userRow(r, 'root').locator('td').nth(0).textContent(), 'admin');
  await row.getByRole('button', { name: 'Sessions of bob' }).click();
  const detail = row.locator('xpath=following-sibling::tr[1]');
  // 60 s, not the default 15: in one loaded clean-clone CI run (both lanes,
  // stop 20) the summary had not appeared after 15 s; 6 of 6 runs alone or
  // beside go test -race passed.
  await detail.locator('.session-summary', { hasText: /^1 session/ }).waitFor({ timeout: 60000 });
  assert.match(await detail.locator('.session-summary').textContent(), /[1-9] open connection/);
  await detail.getByRole('button', { name: 'Sign bob out everywhere' }).click();
  await r.locator('#admin-users-status', { hasText: 'bob is signed out everywhere.' }).waitFor();
  await detail.locator('.session-summary', { hasText: /^0 sessions/ }).waitFor();
  // Bob's page finds out and goes back to the login form.
  await b.locator('#auth-view').waitFor({ timeout: 30000 });

  // A reset password (confirmed with a second click) is shown once and logs bob in.
  const reset = row.getByRole('button', { name: 'Reset the password of bob' });
  await reset.click();
  await reset.click();
  const out = r.getByLabel('New password of bob');
  await out.waitFor();
  const password = await out.inputValue();
  assert.ok(password.length >= 16, password);
  await logIn(b, 'bob', password);
  await screenshot(r, 'server-admin-users');
});

test('a user who is not an administrator has no link, and the API refuses them', async () => {
  const b = bob.page;
  assert.equal(await b.getByRole('link', { name: 'Server admin' }).count(), 0);
  await b.evaluate(() => { location.hash = '#/admin'; });
  assert.equal(await b.locator('#admin-view').isHidden(), true);
  const res = await bob.context.request.get('/api/v1/admin/users');
  assert.equal(res.status(), 403);
});

test('disable and enable a user', async (t) => {
  if (!has.disable) { t.skip('the server has no POST /api/v1/admin/users/{name}/disable yet'); return; }
  const r = root.page;
  const row = userRow(r, 'bob');
  await row.getByRole('button', { name: 'Disable bob' }).click();
  await r.locator('#admin-users-status', { hasText: 'bob is disabled' }).waitFor();
  await bob.page.locator('#auth-view').waitFor({ timeout: 30000 });
  await userRow(r, 'bob').locator('.user-status', { hasText: 'disabled' }).waitFor();
  await userRow(r, 'bob').getByRole('button', { name: 'Enable bob' }).click();
  await r.locator('#admin-users-status', { hasText: 'bob is enabled' }).waitFor();
});
