// Permalinks to messages far back (issue 14): a link to a message more than
// 20 pages (1000 messages) back is served by one `?around=` request, not by
// paging back through everything in between; the message is scrolled into
// view and highlighted, with a "Load newer messages" gap between it and the
// recent messages. A second link into the gap replaces the first window.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, waitFor } from './helpers.js';
import { maybeRouteSDK, signUp, createRoom, messageLocator } from './driver.js';

let server;
let browser;
let alice;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await newPage(browser, server.url);
  await maybeRouteSDK(alice.context);
  await signUp(alice.page, 'alice');
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

test('a permalink 21 pages back loads the page around the message and highlights it', async () => {
  const a = alice.page;
  await createRoom(a, 'deep');
  const roomId = Number(new URL(a.url()).hash.match(/#\/room\/(\d+)/)[1]);
  const csrf = (await alice.context.cookies()).find((c) => c.name === 'sori_csrf').value;
  const post = async (text) => {
    const res = await alice.context.request.post(`/api/v1/rooms/${roomId}/messages`, { headers: { 'X-CSRF-Token': csrf }, data: { text } });
    assert.equal(res.status(), 201, await res.text());
    return (await res.json()).seq;
  };
  // In order: 30 older ones, the target, then 1060 more (more than 20 pages of 50), 20 at a time
  // (group commit), while the page is away (it need not render them live).
  await a.goto('about:blank', { waitUntil: 'commit' });
  for (let i = 1; i <= 30; i++) await post(`old ${i}`);
  const target = await post('the far target');
  const later = [];
  for (let i = 1; i <= 1060; i += 20) {
    later.push(...await Promise.all(Array.from({ length: Math.min(20, 1061 - i) }, (_, k) => post(`later ${i + k}`))));
  }
  assert.equal(later.length, 1060);
  const middle = later[499]; // the seq of "later 500"

  const pages = []; // the message listings the app asks for
  a.on('request', (r) => { if (/\/api\/v1\/rooms\/\d+\/messages\?/.test(r.url())) pages.push(new URL(r.url()).searchParams); });
  // A fresh page opened on the link (as when it is pasted into the address bar).
  await a.goto(`/#/rooms/${roomId}/messages/${target}`, { waitUntil: 'domcontentloaded' });
  const linked = a.locator('#messages .msg.linked');
  await linked.waitFor();
  assert.equal(await linked.locator('.msg-body').textContent(), 'the far target');
  assert.equal(await linked.evaluate((el) => el === document.activeElement), true, 'the message has the focus');
  assert.ok(await inView(a, linked), 'the message is scrolled into view');
  assert.ok(pages.some((q) => q.get('around') === String(target)), `one ?around= request: ${pages.map(String)}`);
  const jump = pages.findIndex((q) => q.get('around') === String(target));
  assert.ok(pages.slice(0, jump).filter((q) => q.has('before')).length <= 2, `no paging back through 20 pages first: ${pages.map(String)}`);
  const count = await a.locator('#messages .msg').count();
  assert.ok(count < 400, `only the pages needed are loaded (${count} messages, of 1091)`);
  // Messages on both sides of it, then the gap before the recent ones.
  await exactly(a, 'old 30').waitFor({ state: 'attached' });
  await exactly(a, 'later 1').waitFor({ state: 'attached' });
  const gap = a.getByRole('button', { name: 'Load newer messages' });
  await gap.waitFor({ state: 'attached' });
  assert.equal(await messageLocator(a, 'later 500').count(), 0);
  await screenshot(a, 'permalink-far-back');

  // Loading newer fills in after the window; the gap moves down.
  const lastBefore = await lastBeforeGap(a);
  await gap.click();
  await waitFor(async () => (await lastBeforeGap(a)) > lastBefore, { message: 'a page loaded after the window' });

  // A link to a message inside the gap (in-app navigation this time): the first window goes.
  const middleText = 'later 500';
  await a.evaluate((h) => { location.hash = h; }, `#/rooms/${roomId}/messages/${middle}`);
  await waitFor(async () => (await linked.locator('.msg-body').textContent().catch(() => '')) === middleText, { message: `the link to "${middleText}"` });
  assert.ok(await inView(a, linked));
  assert.equal(await messageLocator(a, 'the far target').count(), 0, 'the first window is gone');
  assert.equal(await a.locator('#messages .msg.linked').count(), 1);
});

/** The message whose body is text, exactly. */
function exactly(page, text) {
  return page.locator('#messages .msg').filter({ has: page.locator('.msg-body', { hasText: new RegExp(`^${text}$`) }) });
}

/** The seq of the last message before the gap. */
function lastBeforeGap(page) {
  return page.evaluate(() => Number(document.querySelector('#messages > .gap')?.previousElementSibling?.dataset.seq ?? 0));
}

/** Whether el is inside the timeline's visible area. */
async function inView(page, el) {
  const box = await el.boundingBox();
  const tl = await page.locator('#timeline').boundingBox();
  return box && tl && box.y >= tl.y - 1 && box.y + Math.min(box.height, 20) <= tl.y + tl.height + 1;
}
