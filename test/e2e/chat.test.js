// Browser tests of the chat app: two users in two browser contexts, against
// a real `sori serve` child process. Conditions are awaited with deadlines,
// never with sleeps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, signUp, logIn, createRoom, joinPublicRoom, openRoom, send, messageLocator, messageTexts, waitOnline } from './driver.js';

// A 2×2 PNG (red, green, blue, white).
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

let server;
let browser;
let alice; // {context, page}
let bob;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await newPage(browser, server.url);
  bob = await newPage(browser, server.url);
  await maybeRouteSDK(alice.context);
  await maybeRouteSDK(bob.context);
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('two users sign up and chat both ways', async () => {
  const a = alice.page;
  const b = bob.page;
  await signUp(a, 'alice');
  await signUp(b, 'bob');
  await createRoom(a, 'general');
  await joinPublicRoom(b, 'general');

  await send(a, 'hello bob');
  await messageLocator(b, 'hello bob').waitFor();
  await send(b, 'hi alice, https://example.com/docs?page=1 has it.');
  await messageLocator(a, 'hi alice').waitFor();

  // Links: http(s) only, opened without opener or referrer.
  const link = messageLocator(a, 'hi alice').locator('a');
  assert.equal(await link.getAttribute('href'), 'https://example.com/docs?page=1');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');

  // Both see the same conversation, in the same order.
  await waitFor(async () => (await messageTexts(a)).length === 2 && (await messageTexts(b)).length === 2, { message: 'two messages on both pages' });
  assert.deepEqual(await messageTexts(a), await messageTexts(b));

  // Who is online.
  await a.locator('#online-count', { hasText: '2 online' }).waitFor();

  // Typing indicator.
  await b.getByLabel('Message', { exact: true }).fill('typing something');
  await a.locator('#typing', { hasText: 'bob is typing' }).waitFor();
  await b.getByLabel('Message', { exact: true }).fill('');

  // Reply.
  const hello = messageLocator(b, 'hello bob');
  await hello.hover();
  await hello.getByRole('button', { name: 'Reply' }).click();
  await b.locator('#reply-preview', { hasText: 'Replying to alice' }).waitFor();
  await send(b, 'this is a reply');
  await messageLocator(a, 'this is a reply').locator('.msg-reply', { hasText: 'alice: hello bob' }).waitFor();

  // Reactions, toggled on and off, seen by the other side.
  const reply = messageLocator(a, 'this is a reply');
  await reply.hover();
  await reply.getByRole('button', { name: 'React', exact: true }).click();
  // The emoji picker: search by name, Enter picks the first match.
  await a.getByLabel('Search emoji').fill('thumbs up');
  await a.getByLabel('Search emoji').press('Enter');
  await messageLocator(b, 'this is a reply').locator('.reactions button', { hasText: '👍 1' }).waitFor();
  await messageLocator(b, 'this is a reply').locator('.reactions button').click();
  await messageLocator(a, 'this is a reply').locator('.reactions button', { hasText: '👍 2' }).waitFor();

  // Edit own message (Enter saves).
  const mine = messageLocator(a, 'hello bob');
  await mine.hover();
  await mine.getByRole('button', { name: 'Edit' }).click();
  const editor = a.getByLabel('Edit message');
  await editor.fill('hello bob (edited)');
  await editor.press('Enter');
  await messageLocator(b, 'hello bob (edited)').locator('.msg-edited').waitFor();
  // The reply quoting it follows.
  await messageLocator(b, 'this is a reply').locator('.msg-reply', { hasText: 'hello bob (edited)' }).waitFor();

  // Delete own message (two clicks: Delete, Confirm delete).
  await send(a, 'a message to delete');
  await messageLocator(b, 'a message to delete').waitFor();
  const del = messageLocator(a, 'a message to delete');
  await del.hover();
  await del.getByRole('button', { name: 'Delete' }).click();
  await del.getByRole('button', { name: 'Confirm delete' }).click();
  await b.locator('#messages .msg.deleted .msg-body', { hasText: 'This message was deleted.' }).waitFor();
  assert.equal(await messageLocator(b, 'a message to delete').count(), 0);
  // Only one's own messages offer edit and delete.
  assert.equal(await messageLocator(b, 'hello bob (edited)').getByRole('button', { name: 'Edit' }).count(), 0);

  // Read receipts: bob has the room open at the bottom, so he has read alice's message.
  await send(a, 'did you read this?');
  await messageLocator(a, 'did you read this?').locator('.receipts', { hasText: 'Seen by bob' }).waitFor();

  // Image upload with an inline preview, served through the authorized download URL.
  await a.setInputFiles('#composer-file', { name: 'dot.png', mimeType: 'image/png', buffer: PNG });
  await a.locator('#attachment-preview img').waitFor();
  await a.getByLabel('Message', { exact: true }).fill('a picture');
  await a.getByLabel('Message', { exact: true }).press('Enter');
  for (const p of [a, b]) {
    const img = messageLocator(p, 'a picture').locator('.attachment img');
    await img.waitFor();
    await waitFor(() => img.evaluate((el) => el.complete && el.naturalWidth === 2), { message: 'the uploaded image to load' });
    assert.match(await img.getAttribute('src'), /^\/api\/v1\/files\/[A-Za-z0-9_-]+$/);
  }
  // A file that is not an image is a download link with its name and size.
  await b.setInputFiles('#composer-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('some notes\n') });
  await b.getByRole('button', { name: 'Send' }).click();
  await a.locator('#messages .file-card', { hasText: 'notes.txt' }).waitFor();

  // Unread badges: bob writes in a second room while alice looks at general.
  await createRoom(b, 'random');
  await openRoom(b, 'random'); // already open; makes the intent explicit
  await joinPublicRoom(a, 'random');
  await openRoom(a, 'general');
  await send(b, 'news in random');
  await send(b, 'more news in random');
  const badge = a.locator('#room-list a', { hasText: 'random' }).locator('.badge');
  await badge.filter({ hasText: '2' }).waitFor();
  await openRoom(a, 'random');
  await messageLocator(a, 'more news in random').waitFor();
  await waitFor(async () => (await badge.count()) === 0, { message: 'the badge to clear' });

  // Direct messages: opened by name from either side, the same conversation.
  await a.getByLabel('Message a user').fill('bob');
  await a.getByRole('button', { name: 'Open', exact: true }).click();
  await a.locator('#room-title', { hasText: '@bob' }).waitFor();
  await send(a, 'psst, just between us');
  await b.getByLabel('Message a user').fill('alice');
  await b.getByLabel('Message a user').press('Enter');
  await b.locator('#room-title', { hasText: '@alice' }).waitFor();
  await messageLocator(b, 'psst, just between us').waitFor();
  await send(b, 'sure');
  await messageLocator(a, 'sure').waitFor();
  assert.equal(await a.locator('#dm-list a', { hasText: '@bob' }).count(), 1);
  // A user who does not exist gets a clear message.
  await a.getByLabel('Message a user').fill('nobody-here');
  await a.getByLabel('Message a user').press('Enter');
  await a.getByText('There is no user named nobody-here.').waitFor();

  // Search across rooms, then jump to the hit.
  await a.getByLabel('Search messages').fill('reply');
  await a.getByRole('button', { name: 'Search', exact: true }).click();
  const hit = a.locator('#search-list li', { hasText: 'this is a reply' });
  await hit.waitFor();
  await hit.locator('mark', { hasText: 'reply' }).waitFor(); // the matched word is marked
  await hit.getByRole('button').click();
  await a.locator('#room-title', { hasText: 'general' }).waitFor();
  await a.locator('#messages .msg.flash', { hasText: 'this is a reply' }).waitFor();

  await screenshot(a, 'chat-alice');
  await screenshot(b, 'chat-bob');
  await b.emulateMedia({ colorScheme: 'dark' });
  await screenshot(b, 'chat-bob-dark');
  await b.emulateMedia({ colorScheme: 'light' });
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  // The app runs under its strict CSP without a single violation.
  assert.deepEqual([...a.consoleErrors, ...b.consoleErrors].filter((e) => /Content Security Policy/i.test(e)), []);
});

test('log out, a wrong password, and log in again', async () => {
  const { context, page } = await newPage(browser, server.url);
  await maybeRouteSDK(context);
  try {
    await logIn(page, 'alice');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Log in' }).waitFor(); // the session is gone on the server too
    await page.getByLabel('Username', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await logIn(page, 'alice');
    await waitOnline(page);
    await page.locator('#room-list a', { hasText: 'general' }).waitFor();
    assert.deepEqual(page.errors, []);
  } finally {
    await context.close();
  }
});

test('scroll-back loads older history, in order', async () => {
  const a = alice.page;
  await createRoom(a, 'history');
  const roomId = Number((await a.evaluate(() => location.hash)).match(/room\/(\d+)/)[1]);
  // 120 messages posted through the REST API with alice's session.
  const csrf = (await alice.context.cookies()).find((c) => c.name === 'sori_csrf').value;
  for (let i = 1; i <= 120; i++) {
    const res = await alice.context.request.post(`/api/v1/rooms/${roomId}/messages`, { headers: { 'X-CSRF-Token': csrf }, data: { text: `history ${i}` } });
    assert.equal(res.status(), 201);
  }
  await a.reload();
  await waitOnline(a);
  await messageLocator(a, 'history 120').waitFor();
  const texts = async () => messageTexts(a);
  assert.equal((await texts()).length, 50, 'the newest page first');
  assert.equal((await texts())[0], 'history 71');
  // Scrolling to the top loads the next page; the button does the same.
  await a.locator('#timeline').evaluate((t) => { t.scrollTop = 0; });
  await waitFor(async () => (await texts()).length >= 100, { message: 'a second page' });
  const older = a.getByRole('button', { name: 'Load older messages' });
  // The button may hide itself between a visibility check and a pointer
  // click (the scroll above is still loading); a DOM click on it while shown
  // does the same as the user's without that race.
  await older.evaluate((b) => { if (!b.hidden) b.click(); });
  await waitFor(async () => (await texts()).length === 120, { message: 'the whole history' });
  assert.deepEqual(await texts(), Array.from({ length: 120 }, (_, i) => `history ${i + 1}`));
  await waitFor(async () => older.isHidden(), { message: 'no more to load' });
});

test('an HTML/script payload is shown as inert text', async () => {
  const a = alice.page;
  const b = bob.page;
  await createRoom(a, 'xss');
  await joinPublicRoom(b, 'xss');
  await a.evaluate(() => { window.__xss = 0; });
  await b.evaluate(() => { window.__xss = 0; });
  const payloads = [
    '<img src=x onerror="window.__xss=1;alert(1)">',
    '<script>window.__xss=2;alert(2)</script>',
    '<a href="javascript:alert(3)">click</a> javascript:alert(4) data:text/html,<b>x</b>',
    '<svg onload=alert(5)><iframe src="javascript:alert(6)"></iframe>',
  ];
  for (const p of payloads) await send(b, p);
  for (const page of [a, b]) {
    for (const p of payloads) await messageLocator(page, p).waitFor();
    const bodies = await messageTexts(page);
    assert.deepEqual(bodies, payloads, 'the payloads are shown exactly, as text');
    const injected = await page.locator('#messages').evaluate((list) => ({
      elements: list.querySelectorAll('.msg-body img, .msg-body script, .msg-body svg, .msg-body iframe, .msg-body b').length,
      links: [...list.querySelectorAll('.msg-body a')].map((x) => x.getAttribute('href')),
      handlers: [...list.querySelectorAll('*')].filter((el) => [...el.attributes].some((at) => at.name.startsWith('on'))).length,
    }));
    assert.deepEqual(injected, { elements: 0, links: [], handlers: 0 });
    assert.equal(await page.evaluate(() => window.__xss), 0);
    assert.deepEqual(page.dialogs, [], 'no dialog fired');
  }
  // The room list and the header render names as text too.
  await screenshot(a, 'xss-inert');
});

test('a phone-sized viewport works: send and see a message at 375×667', async () => {
  const phone = await browser.newContext({ baseURL: server.url, viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, reducedMotion: 'reduce' });
  await maybeRouteSDK(phone);
  try {
    const p = await phone.newPage();
    const errors = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await logIn(p, 'bob');
    await waitOnline(p);
    // The room list is one tap away.
    const toggle = p.getByRole('button', { name: /Show rooms/ });
    await toggle.click();
    await p.locator('#room-list a', { hasText: 'general' }).click();
    await p.locator('#room-title', { hasText: 'general' }).waitFor();
    await openRoom(alice.page, 'general');
    await send(p, 'sent from a phone');
    await messageLocator(alice.page, 'sent from a phone').waitFor();
    await send(alice.page, 'seen on the phone?');
    await messageLocator(p, 'seen on the phone?').waitFor();
    // Nothing spills sideways, and the composer is on screen.
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
    const box = await p.getByLabel('Message', { exact: true }).boundingBox();
    assert.ok(box && box.y + box.height <= 667 && box.x >= 0 && box.x + box.width <= 375, 'the message box is visible');
    await screenshot(p, 'phone-375x667');
    await toggle.click();
    await p.locator('#sidebar').getByRole('link', { name: /general/ }).waitFor();
    await screenshot(p, 'phone-rooms');
    await p.keyboard.press('Escape'); // closes the room list
    await waitFor(() => p.locator('#sidebar').isHidden(), { message: 'the room list to close' });
    assert.deepEqual(errors, []);
  } finally {
    await phone.close();
  }
});
