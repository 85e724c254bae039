// Browser tests of threads, pins and permalinks: a reply in a thread (side
// panel) stays out of the main timeline, its root counts it and shows it as
// new to the other user; pins show live for every member; a permalink
// #/rooms/{id}/messages/{seq} scrolls to a message loaded only by scrolling
// back, and one to a thread reply opens its thread.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatFixture, screenshot, waitFor } from './helpers.js';
import { send, messageLocator, messageTexts } from './driver.js';

let server;
let browser;
let alice;
let bob;
let roomId;

before(async () => {
  ({ server, browser, pages: [alice, bob], roomId } = await chatFixture({ users: ['alice', 'bob'], room: 'threads' }));
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('a reply in a thread: side panel, reply count, new for the other user, not in the timeline', async () => {
  const a = alice.page;
  const b = bob.page;
  await send(a, 'root message');
  const root = messageLocator(b, 'root message');
  await root.waitFor();
  await root.hover();
  await root.getByRole('button', { name: 'Thread', exact: true }).click();
  const panel = b.getByRole('complementary', { name: 'Thread' });
  await panel.locator('.msg-body', { hasText: 'root message' }).waitFor();
  await panel.getByLabel('Reply in thread').fill('first reply');
  await panel.getByLabel('Reply in thread').press('Enter');
  await panel.locator('#thread-list .msg-body', { hasText: 'first reply' }).waitFor();
  // Alice sees the count, marked new, and not the reply in her timeline.
  const summary = messageLocator(a, 'root message').locator('.thread-summary');
  await summary.filter({ hasText: '1 reply' }).waitFor();
  assert.match(await summary.textContent(), /new/);
  assert.deepEqual(await messageTexts(a), ['root message']);
  await screenshot(b, 'thread-panel');
  await summary.click();
  await a.locator('#thread-list .msg-body', { hasText: 'first reply' }).waitFor();
  await waitFor(async () => !/new/.test(await summary.textContent()), { message: 'the thread seen' });
  // A live reply from alice reaches bob's open panel and the count.
  await a.getByLabel('Reply in thread').fill('second reply');
  await a.getByLabel('Reply in thread').press('Enter');
  await panel.locator('#thread-list .msg-body', { hasText: 'second reply' }).waitFor();
  await messageLocator(b, 'root message').locator('.thread-summary', { hasText: '2 replies' }).waitFor();
  // Thread replies are found by search.
  await b.getByLabel('Search messages').fill('secon');
  await b.getByRole('button', { name: 'Search', exact: true }).click();
  await b.locator('#search-list li', { hasText: 'second reply' }).waitFor();
  await b.locator('#search-close').click();
  await a.getByRole('button', { name: 'Close the thread' }).click();
});

test('pins appear for every member at once', async () => {
  const a = alice.page;
  const b = bob.page;
  const root = messageLocator(a, 'root message');
  await root.hover();
  await root.getByRole('button', { name: 'Pin', exact: true }).click();
  await messageLocator(b, 'root message').locator('.msg-pinned').waitFor();
  await b.locator('#pin-count', { hasText: '📌 1' }).waitFor();
  await b.locator('#pin-count').click();
  await b.locator('#pin-list li', { hasText: 'root message' }).waitFor();
  assert.match(await b.locator('#pin-list li').textContent(), /pinned by alice/);
  await b.locator('#pin-count').click();
  await root.hover();
  await root.getByRole('button', { name: 'Unpin', exact: true }).click();
  await b.locator('#pins').waitFor({ state: 'hidden' });
  assert.equal(await messageLocator(b, 'root message').locator('.msg-pinned').count(), 0);
});

test('permalinks scroll to an old message and open a thread reply in its thread', async () => {
  const a = alice.page;
  const b = bob.page;
  for (let i = 0; i < 60; i++) await send(a, `filler ${i}`);
  // "root message" is older than the first page bob's new page loads.
  const rootSeq = Number(await messageLocator(a, 'root message').getAttribute('data-seq'));
  const replySeq = rootSeq + 1; // bob's reply came right after the root
  await b.goto(`/#/rooms/${roomId}/messages/${rootSeq}`);
  const flashed = b.locator('#messages .msg.linked', { hasText: 'root message' });
  await flashed.waitFor();
  assert.ok(await flashed.isVisible());
  await b.goto(`/#/rooms/${roomId}/messages/${replySeq}`);
  await b.locator('#thread-list .msg.flash', { hasText: 'first reply' }).waitFor();
  await screenshot(b, 'permalink-thread');
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});
