// Browser tests of administration in the app: the member list with roles
// (promote, demote, remove — each user sees only what their role allows, and
// the others see the change at once), and the account dialog (password
// change, after which the page's live connection comes back by itself; API
// tokens that work and stop working when revoked).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatFixture, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, logIn, messageLocator, openRoom, send } from './driver.js';

let server;
let browser;
let alice;
let bob;
let carol;

before(async () => {
  ({ server, browser, pages: [alice, bob, carol] } = await chatFixture({ users: ['alice', 'bob', 'carol'], room: 'crew' }));
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

/** Opens the Members panel and returns the row of username. */
async function memberRow(page, username) {
  const panel = page.locator('#members-panel');
  if (!(await panel.evaluate((d) => d.open))) await panel.locator('summary').click();
  const row = panel.locator(`li[data-user="${username}"]`);
  await row.waitFor();
  return row;
}

test('the owner promotes, an admin removes a member, the owner demotes', async () => {
  const a = alice.page;
  const b = bob.page;
  const c = carol.page;
  await a.locator('#member-count', { hasText: '3 members' }).waitFor();
  // Bob, a member, can do nothing to anyone.
  assert.equal(await (await memberRow(b, 'carol')).getByRole('button').count(), 0);
  // Alice (owner) makes bob an admin; bob's page shows his new role.
  await (await memberRow(a, 'bob')).getByRole('button', { name: 'Make bob an admin' }).click();
  await (await memberRow(b, 'bob')).locator('.role', { hasText: 'admin' }).waitFor();
  // As an admin, bob may remove carol (a member), not alice (the owner).
  assert.equal(await (await memberRow(b, 'alice')).getByRole('button').count(), 0);
  const remove = (await memberRow(b, 'carol')).getByRole('button', { name: 'Remove carol from the room' });
  await remove.click();
  await remove.click(); // the second click confirms
  await c.locator('#room-list a', { hasText: 'crew' }).waitFor({ state: 'detached' });
  await a.locator('#member-count', { hasText: '2 members' }).waitFor();
  await screenshot(a, 'members');
  // Alice demotes bob: his Remove buttons go.
  await (await memberRow(a, 'bob')).getByRole('button', { name: 'Make bob a member' }).click();
  await waitFor(async () => (await (await memberRow(b, 'bob')).locator('.role').count()) === 0, { message: 'bob a member again' });
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});

test('account: an API token works until revoked; the password changes', async () => {
  const a = alice.page;
  await a.getByRole('button', { name: 'Account' }).click();
  const dialog = a.getByRole('dialog', { name: 'Your account' });
  await dialog.getByLabel('Label').fill('ci bot');
  await dialog.getByRole('button', { name: 'Create token' }).click();
  const secret = await dialog.getByLabel('The new token').inputValue();
  assert.match(secret, /^sori_/);
  await dialog.locator('#token-list li', { hasText: 'ci bot' }).waitFor();
  const me = async () => (await fetch(`${server.url}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } })).status;
  assert.equal(await me(), 200, 'the token works');
  await dialog.getByRole('button', { name: 'Revoke ci bot' }).click();
  await dialog.locator('#token-list li', { hasText: 'ci bot' }).waitFor({ state: 'detached' });
  assert.equal(await me(), 401, 'revoked');

  await dialog.getByLabel('Current password').fill('not my password');
  await dialog.getByLabel(/^New password \(/).fill('a brand new secret');
  await dialog.getByLabel('New password again').fill('a brand new secret');
  await dialog.getByRole('button', { name: 'Change password' }).click();
  await dialog.getByText('The current password is wrong.').waitFor();
  await dialog.getByLabel('Current password').fill('correct horse battery');
  // From here on the page records its connection states: the change revokes
  // the token of the page's live connection (closed with 4501), and the page,
  // which gets a new session with the answer, must connect again by itself,
  // without a reload (a reload would lose this record).
  await a.evaluate(() => {
    const conn = document.querySelector('#conn');
    window.connStates = [];
    new MutationObserver(() => window.connStates.push(conn.dataset.state)).observe(conn, { attributeFilter: ['data-state'] });
  });
  await dialog.getByRole('button', { name: 'Change password' }).click();
  // Two argon2id hashes (check the old password, hash the new one) and a
  // revocation of every other credential: under a loaded CI run this took
  // longer than the default 15 s once.
  await dialog.getByText('Password changed.').waitFor({ timeout: 60000 });
  await screenshot(a, 'account');
  await waitFor(async () => {
    const states = await a.evaluate(() => window.connStates ?? null);
    return states?.includes('disconnected') && states.at(-1) === 'connected';
  }, { timeout: 60000, message: 'the page closed with 4501 and online again with its new session, without a reload' });
  await dialog.getByRole('button', { name: 'Close' }).click();
  // The page keeps working over REST and live (a cookie caller gets a new
  // session), and the new password logs in elsewhere.
  await openRoom(a, 'crew');
  await openRoom(bob.page, 'crew');
  await send(bob.page, 'live after the password change');
  await messageLocator(a, 'live after the password change').waitFor();
  await send(a, 'and back the other way');
  await messageLocator(bob.page, 'and back the other way').waitFor();
  const other = await newPage(browser, server.url);
  await maybeRouteSDK(other.context);
  await logIn(other.page, 'alice', 'a brand new secret');
  await other.context.close();
});
