// Browser tests of sign-up modes and invites (issue 14): the administrator
// closes sign-up on the admin page (the login page then offers no sign-up
// at all), switches to invites, creates one and copies its link; the link
// opens the sign-up form with the code filled in and a new user gets in;
// the spent invite and a revoked one are refused, with the reason shown.
// The admin page's room list shows the rooms. Each test is skipped while
// the server has no such endpoint (chatsrv's part of the contract).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chatFixture, startServer, newPage, screenshot, buildSori, tempDir } from './helpers.js';
import { maybeRouteSDK, createRoom } from './driver.js';

let server;
let browser;
let root;
const has = {};

before(async () => {
  const dataDir = tempDir('data-');
  execFileSync(buildSori(), ['user', 'add', 'root', '--admin', '--data', dataDir], { input: 'correct horse battery\n', stdio: ['pipe', 'ignore', 'inherit'] });
  server = await startServer({ dataDir });
  ({ browser, pages: [root] } = await chatFixture({
    server, users: [{ name: 'root', logIn: true }],
    beforeSignUp: ([r]) => r.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url }),
  }));
  const missing = async (path) => {
    const res = await root.context.request.get(path);
    return res.status() === 405 || (res.status() === 404 && /^no API endpoint/.test((await res.json().catch(() => ({})))?.error?.message ?? ''));
  };
  has.registration = !(await missing('/api/v1/auth/registration')) && !(await missing('/api/v1/admin/invites'));
  has.rooms = !(await missing('/api/v1/admin/rooms'));
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

/** A fresh visitor's page (no session). */
async function visitor() {
  const v = await newPage(browser, server.url);
  await maybeRouteSDK(v.context);
  return v;
}

async function setMode(page, label, status) {
  await page.getByLabel('Who may create an account').selectOption({ label });
  await page.locator('#admin-registration-status', { hasText: status }).waitFor();
}

test('closed, then invite-only: an invite link signs a new user up once; a revoked invite is refused', async (t) => {
  if (!has.registration) { t.skip('the server has no registration modes and invites yet'); return; }
  const r = root.page;
  await r.getByRole('link', { name: 'Server admin' }).click();
  await r.locator('#admin-view').waitFor();
  assert.equal(await r.getByLabel('Who may create an account').inputValue(), 'open');

  // Closed: the login page has no sign-up, not even from #/signup; the API refuses it too.
  await setMode(r, 'Nobody (closed)', 'Sign-up is closed.');
  const v1 = await visitor();
  await v1.page.goto('/#/signup', { waitUntil: 'domcontentloaded' });
  await v1.page.locator('#auth-closed').waitFor();
  assert.equal(await v1.page.getByRole('button', { name: 'Create an account' }).count(), 0);
  assert.equal(await v1.page.getByRole('button', { name: 'Sign up' }).count(), 0);
  const refused = await v1.context.request.post('/api/v1/auth/signup', { data: { username: 'mallory', password: 'correct horse battery' } });
  assert.equal(refused.status(), 403);
  await v1.context.close();

  // Invite-only: an invite for one use, its link copied.
  await setMode(r, 'People with an invite', 'Sign-up needs an invite.');
  await r.getByLabel('Valid for (hours)').fill('2');
  await r.getByLabel('Uses').fill('1');
  await r.getByRole('button', { name: 'Create invite' }).click();
  const linkBox = r.getByLabel('Invite link');
  await linkBox.waitFor();
  const link = await linkBox.inputValue();
  assert.match(link, /\/#\/invite\/[^/]+$/);
  await r.getByRole('button', { name: 'Copy link' }).click();
  await r.locator('#invite-copied', { hasText: 'Link copied.' }).waitFor();
  assert.equal(await r.evaluate(() => navigator.clipboard.readText()), link);
  await r.locator('#admin-invites li', { hasText: '0 of 1 used' }).waitFor();
  await screenshot(r, 'admin-invites');

  // Without a code the form asks for one; the link fills it in and signs carol up.
  const v2 = await visitor();
  await v2.page.goto('/#/signup', { waitUntil: 'domcontentloaded' });
  await v2.page.getByLabel('Invite code').waitFor();
  await v2.page.getByLabel('Username', { exact: true }).fill('dave');
  await v2.page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await v2.page.getByRole('button', { name: 'Sign up' }).click();
  await v2.page.locator('#auth-error', { hasText: 'Enter your invite code.' }).waitFor();
  await v2.page.goto(link, { waitUntil: 'domcontentloaded' });
  const code = decodeURIComponent(link.split('/#/invite/')[1]);
  await v2.page.getByLabel('Invite code').waitFor();
  assert.equal(await v2.page.getByLabel('Invite code').inputValue(), code);
  await v2.page.getByLabel('Username', { exact: true }).fill('carol');
  await v2.page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await v2.page.getByRole('button', { name: 'Sign up' }).click();
  await v2.page.getByText('Signed in as carol').waitFor({ state: 'attached' });
  assert.equal(new URL(v2.page.url()).hash.startsWith('#/invite/'), false, 'the code leaves the address bar');
  await createRoom(v2.page, 'carols');
  await v2.context.close();

  // The invite is spent: a second sign-up with it is refused, and the form says so.
  const v3 = await visitor();
  await v3.page.goto(link, { waitUntil: 'domcontentloaded' });
  await v3.page.getByLabel('Username', { exact: true }).fill('erin');
  await v3.page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await v3.page.getByRole('button', { name: 'Sign up' }).click();
  await v3.page.locator('#auth-error').filter({ hasText: /\S/ }).waitFor();
  assert.equal(await v3.page.locator('#chat-view').isHidden(), true);
  await v3.context.close();

  // A revoked invite stops working at once.
  await r.getByRole('button', { name: 'Create invite' }).click();
  await r.waitForFunction((old) => document.querySelector('#invite-new input')?.value !== old, link);
  const second = await linkBox.inputValue();
  const entry = r.locator(`#admin-invites li[data-invite="${await linkBox.getAttribute('data-invite')}"]`);
  await entry.waitFor();
  assert.match(await entry.textContent(), /0 of 1 used/);
  await entry.getByRole('button', { name: /^Revoke/ }).click();
  await entry.waitFor({ state: 'detached' });
  const v4 = await visitor();
  const res = await v4.context.request.post('/api/v1/auth/signup', { data: { username: 'frank', password: 'correct horse battery', invite: decodeURIComponent(second.split('/#/invite/')[1]) } });
  assert.equal(res.status(), 403);
  await v4.context.close();
  await setMode(r, 'Anyone (open)', 'Anyone who reaches the server may sign up.');
});

test("the admin page lists the server's rooms", async (t) => {
  if (!has.rooms) { t.skip('the server has no GET /api/v1/admin/rooms yet'); return; }
  const r = root.page;
  await r.getByRole('link', { name: 'Back to the chat' }).click();
  await createRoom(r, 'roots');
  await r.goto('/#/admin', { waitUntil: 'domcontentloaded' });
  await r.locator('#admin-rooms tr', { hasText: '#roots' }).waitFor();
  if (has.registration) await r.locator('#admin-rooms tr', { hasText: '#carols' }).waitFor();
});
