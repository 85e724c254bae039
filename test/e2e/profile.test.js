// Browser tests of profiles (issue 14): a user sets a display name and
// uploads an avatar in the account dialog; the other user sees both in the
// timeline (REST history and live messages) and the member list, initials
// where there is no avatar; a hostile display name stays text; removing the
// avatar brings the initials back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatFixture, screenshot, waitFor } from './helpers.js';
import { openRoom, send, messageLocator } from './driver.js';

// A 2×2 PNG (red, green, blue, white pixels).
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFElEQVR4nGP4z8DAAMIM/////w8AH+4F+7C4l8kAAAAASUVORK5CYII=', 'base64');

let server;
let browser;
let alice;
let bob;

before(async () => {
  ({ server, browser, pages: [alice, bob] } = await chatFixture({ users: ['alice', 'bob'], room: 'faces' }));
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

/** The header of the message whose body is text. */
function author(page, text) {
  return messageLocator(page, text).locator('.msg-head .msg-user');
}

async function openAccount(page) {
  await page.getByRole('button', { name: 'Account' }).click();
  await page.locator('#account[open]').waitFor();
}

async function memberRow(page, username) {
  const panel = page.locator('#members-panel');
  if (!(await panel.evaluate((d) => d.open))) await panel.locator('summary').click();
  const row = panel.locator(`li[data-user="${username}"]`);
  await row.waitFor();
  return row;
}

test('a display name and an avatar show in the timeline and the member list; initials without one', async () => {
  const a = alice.page;
  const b = bob.page;
  await send(b, 'before the profile');
  await messageLocator(a, 'before the profile').waitFor();
  // No profile yet: the username and initials.
  assert.equal(await author(a, 'before the profile').locator('.msg-name').textContent(), 'bob');
  assert.equal(await author(a, 'before the profile').locator('.avatar.initials').textContent(), 'BO');

  await a.evaluate(() => { window.sameDocument = true; }); // gone if the page reloads
  await openAccount(b);
  await b.getByLabel(/^Display name/).fill('Bobby Tables');
  await b.getByRole('button', { name: 'Save name' }).click();
  await b.locator('#profile-status', { hasText: 'Your display name is Bobby Tables.' }).waitFor();
  await b.locator('#profile-avatar .avatar.initials', { hasText: 'BT' }).waitFor();
  await b.getByLabel(/^Avatar/).setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: PNG });
  await b.locator('#profile-status', { hasText: 'Your avatar is updated.' }).waitFor();
  const own = b.locator('#profile-avatar img.avatar');
  await own.waitFor();
  assert.match(await own.getAttribute('src'), /^\/api\/v1\/users\/bob\/avatar\?v=/);
  await waitFor(() => own.evaluate((img) => img.complete && img.naturalWidth === 2), { message: 'the avatar image decodes' });
  await screenshot(b, 'profile-dialog');
  await b.getByRole('button', { name: 'Close' }).click();
  // Bob's own page shows it at once.
  await author(b, 'before the profile').locator('.msg-name', { hasText: 'Bobby Tables' }).waitFor();

  // Alice's page, open on a room of bob's, is told (the "profile" signal on
  // the room's #live channel) and updates without a reload.
  const seen = author(a, 'before the profile');
  await seen.locator('.msg-name', { hasText: 'Bobby Tables' }).waitFor();
  const liveImg = seen.locator('img.avatar');
  await waitFor(() => liveImg.evaluate((el) => el.complete && el.naturalWidth === 2), { message: "bob's avatar in alice's timeline, live" });
  assert.equal(await (await memberRow(a, 'bob')).locator('.member-name').textContent(), 'Bobby Tables (@bob)');
  assert.equal(await a.evaluate(() => window.sameDocument), true, "alice's page reloaded");

  // A fresh page learns profiles from member lists and REST messages.
  await a.reload({ waitUntil: 'domcontentloaded' });
  await openRoom(a, 'faces');
  const head = author(a, 'before the profile');
  await head.locator('.msg-name', { hasText: 'Bobby Tables' }).waitFor();
  assert.equal(await head.locator('.msg-username').textContent(), '@bob');
  const img = head.locator('img.avatar');
  await waitFor(() => img.evaluate((el) => el.complete && el.naturalWidth === 2), { message: "bob's avatar in alice's timeline" });
  const row = await memberRow(a, 'bob');
  assert.equal(await row.locator('.member-name').textContent(), 'Bobby Tables (@bob)');
  await row.locator('img.avatar').waitFor();
  assert.equal(await (await memberRow(a, 'alice')).locator('.avatar.initials').textContent(), 'AL');
  // A live message (publications carry only the username) gets the same header.
  await send(b, 'after the profile');
  const live = author(a, 'after the profile');
  await live.waitFor();
  assert.equal(await live.locator('.msg-name').textContent(), 'Bobby Tables');
  await live.locator('img.avatar').waitFor();
  await screenshot(a, 'profile-timeline');

  // Removing the avatar brings the initials of the display name back.
  await openAccount(b);
  await b.getByRole('button', { name: 'Remove avatar' }).click();
  await b.locator('#profile-status', { hasText: 'Your avatar is removed.' }).waitFor();
  await b.locator('#profile-avatar .avatar.initials', { hasText: 'BT' }).waitFor();
  await b.getByRole('button', { name: 'Close' }).click();
  await author(b, 'after the profile').locator('.avatar.initials', { hasText: 'BT' }).waitFor();
  await author(a, 'after the profile').locator('.avatar.initials', { hasText: 'BT' }).waitFor(); // live, too
});

test('a hostile display name is shown as text; a non-image avatar is refused', async () => {
  const a = alice.page;
  const b = bob.page;
  const hostile = '<img src=x onerror=alert(1)>';
  await openAccount(b);
  await b.getByLabel(/^Display name/).fill(hostile);
  await b.getByRole('button', { name: 'Save name' }).click();
  await b.locator('#profile-status', { hasText: 'Your display name is' }).waitFor();
  // An HTML page sent as an image: the server reads the bytes and refuses it; the dialog says why.
  await b.getByLabel(/^Avatar/).setInputFiles({ name: 'evil.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script></html>') });
  await b.locator('#profile-error').filter({ hasText: /\S/ }).waitFor();
  await b.getByRole('button', { name: 'Close' }).click();
  await send(b, 'hostile name');
  await a.reload({ waitUntil: 'domcontentloaded' });
  await openRoom(a, 'faces');
  const head = author(a, 'hostile name');
  await head.locator('.msg-name', { hasText: hostile }).waitFor();
  assert.equal(await a.locator('#messages img:not(.avatar)').count(), 0, 'no element made from the name');
  assert.deepEqual(a.dialogs, []);
  assert.deepEqual(b.dialogs, []);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});
