// Browser tests of mentions and notifications: @ completion from the member
// list, the mention highlighted for the one mentioned, a per-room mention
// badge, and a browser notification (Notification API) when the tab is
// hidden — for a mention, not for an ordinary message in a room at the
// default level.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, signUp, createRoom, joinPublicRoom, openRoom, send, messageLocator } from './driver.js';

let server;
let browser;
let alice;
let bob;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await newPage(browser, server.url);
  bob = await newPage(browser, server.url);
  await maybeRouteSDK(alice.context);
  await maybeRouteSDK(bob.context);
  // Bob's page: notifications allowed, each one recorded, and a switch that
  // makes the page report itself hidden (as a background tab does).
  await bob.context.grantPermissions(['notifications'], { origin: server.url });
  await bob.context.addInitScript(() => {
    window.__notes = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
      constructor(title, opts) { super(title, opts); window.__notes.push({ title, body: opts?.body ?? '' }); }
    };
    let hidden = false;
    Object.defineProperty(document, 'visibilityState', { get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { get: () => hidden });
    window.__setHidden = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
  });
  await signUp(alice.page, 'alice');
  await signUp(bob.page, 'bob');
  await createRoom(alice.page, 'team');
  await joinPublicRoom(bob.page, 'team');
  await createRoom(bob.page, 'bobs-corner');
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('@ completes from the member list; the mention stands out and raises a badge', async () => {
  const a = alice.page;
  const b = bob.page;
  await openRoom(a, 'team');
  const box = a.getByLabel('Message', { exact: true });
  await box.fill('');
  await box.pressSequentially('hi @b');
  const list = a.getByRole('listbox', { name: 'Mention someone' });
  await list.getByRole('option', { name: '@bob' }).waitFor();
  assert.equal(await box.getAttribute('aria-expanded'), 'true');
  await box.press('Enter'); // picks, does not send
  assert.equal(await box.inputValue(), 'hi @bob ');
  await list.waitFor({ state: 'hidden' });
  await box.pressSequentially('look at this');
  await box.press('Enter');
  await messageLocator(a, 'hi @bob look at this').waitFor();
  // Bob is in another room: the team room shows a mention badge.
  const team = b.locator('#room-list a', { hasText: 'team' });
  await team.locator('.mention-badge', { hasText: '@1' }).waitFor();
  assert.match(await team.getAttribute('aria-label'), /1 mentioning you/);
  await screenshot(b, 'mention-badge');
  await team.click();
  const mention = messageLocator(b, 'hi @bob look at this').locator('.mention.me', { hasText: '@bob' });
  await mention.waitFor();
  await team.locator('.mention-badge').waitFor({ state: 'detached' });
  // For alice, @bob is a mention but not of her.
  assert.equal(await messageLocator(a, 'hi @bob look at this').locator('.mention.me').count(), 0);
});

/** Sets the open room's notification level from the room menu. */
async function setLevel(page, room, label) {
  await openRoom(page, room);
  await page.locator('#room-menu summary').click();
  await page.getByLabel('Notifications', { exact: true }).selectOption({ label });
  await page.locator('#room-menu-status', { hasText: /notified|muted/ }).waitFor();
  await page.locator('#room-menu summary').click();
}

test('a hidden tab gets a browser notification at the room\'s level: mentions only, then muted', async () => {
  const a = alice.page;
  const b = bob.page;
  await setLevel(b, 'team', 'Mentions and direct messages');
  await openRoom(b, 'bobs-corner');
  await b.evaluate(() => { window.__notes = []; window.__setHidden(true); });
  await send(a, 'just chatting');
  await b.locator('#room-list a', { hasText: 'team' }).locator('.badge', { hasText: '1' }).waitFor();
  const box = a.getByLabel('Message', { exact: true });
  await box.fill('ping @bob, **urgent**');
  await box.press('Enter');
  await messageLocator(a, 'ping @bob, urgent').waitFor();
  await waitFor(() => b.evaluate(() => window.__notes.length > 0), { message: 'a notification' });
  assert.deepEqual(await b.evaluate(() => window.__notes), [{ title: 'alice in #team', body: 'ping @bob, urgent' }]);
  // Visible again: no notification, the page shows it.
  await b.evaluate(() => { window.__notes = []; window.__setHidden(false); });
  await send(a, 'and again @bob');
  await b.locator('#room-list a', { hasText: 'team' }).locator('.mention-badge', { hasText: '@2' }).waitFor();
  assert.deepEqual(await b.evaluate(() => window.__notes), []);
  // Muted: hidden again, a mention makes no notification, and the room says so.
  await setLevel(b, 'team', 'Nothing (mute)');
  await openRoom(b, 'bobs-corner');
  await b.evaluate(() => { window.__setHidden(true); });
  await send(a, 'muted? @bob');
  await b.locator('#room-list a', { hasText: 'team' }).locator('.muted-icon').waitFor();
  await b.locator('#room-list a', { hasText: 'team' }).locator('.badge.quiet', { hasText: '1' }).waitFor();
  assert.deepEqual(await b.evaluate(() => window.__notes), []);
  assert.deepEqual(b.errors, []);
});
