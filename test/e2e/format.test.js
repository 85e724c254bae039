// Browser tests of message formatting and the reading aids: the Markdown
// subset rendered as DOM nodes (and hostile Markdown staying inert), the
// same rendering in search results and reply previews.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatFixture, screenshot } from './helpers.js';
import { createRoom, joinPublicRoom } from './driver.js';

let server;
let browser;
let alice;
let bob;

before(async () => {
  ({ server, browser, pages: [alice, bob] } = await chatFixture({ users: ['alice', 'bob'], room: 'fmt' }));
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

/** Types text (Shift+Enter between lines) and sends it; returns the new message's element. */
async function type(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  const before = await page.locator('#messages .msg').count();
  await box.press('Enter');
  await page.locator('#messages .msg').nth(before).waitFor();
  return page.locator('#messages .msg').nth(before);
}

test('Markdown renders as elements, the same for the other user', async () => {
  const a = alice.page;
  const b = bob.page;
  const text = [
    'plain **bold** *italic* ~~gone~~ `x < y` [docs](https://example.com/d) @bob',
    '```',
    '<b>not bold</b> **nor this**',
    '```',
    '> a quote',
    '- one',
    '- two',
    '1. first',
  ].join('\n');
  await type(a, text);
  for (const page of [a, b]) {
    const body = page.locator('#messages .msg').last().locator('.msg-body');
    await body.locator('strong', { hasText: 'bold' }).waitFor();
    assert.equal(await body.locator('em').textContent(), 'italic');
    assert.equal(await body.locator('del').textContent(), 'gone');
    assert.equal(await body.locator('p code').textContent(), 'x < y');
    assert.equal(await body.locator('pre code').textContent(), '<b>not bold</b> **nor this**');
    assert.equal(await body.locator('blockquote').textContent(), 'a quote');
    assert.deepEqual(await body.locator('ul li').allTextContents(), ['one', 'two']);
    assert.deepEqual(await body.locator('ol li').allTextContents(), ['first']);
    const link = body.locator('a');
    assert.equal(await link.getAttribute('href'), 'https://example.com/d');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');
    assert.equal(await body.locator('b').count(), 0, 'HTML in a code block stays text');
    const mention = body.locator('.mention', { hasText: '@bob' });
    assert.equal(await mention.evaluate((el) => el.classList.contains('me')), page === b, 'a mention of me stands out');
  }
  await screenshot(b, 'markdown');
});

test('hostile Markdown stays inert', async () => {
  const a = alice.page;
  const b = bob.page;
  for (const page of [a, b]) await page.evaluate(() => { window.__xss = 0; });
  const payloads = [
    '[click](javascript:window.__xss=1)',
    '[click](JAVASCRIPT:window.__xss=2) [x](data:text/html,<script>window.__xss=3</script>) [y](vbscript:x)',
    '**<img src=x onerror="window.__xss=4">** `<script>window.__xss=5</script>`',
    '> <svg onload="window.__xss=6">\n- <iframe src="javascript:window.__xss=7"></iframe>',
    `${'*_~~'.repeat(450)}bomb${'~~_*'.repeat(450)}`,
    `${'[a'.repeat(1900)}](https://x.example)`,
  ];
  for (const p of payloads) await type(b, p);
  for (const page of [a, b]) {
    await page.locator('#messages .msg .msg-body', { hasText: 'bomb' }).waitFor();
    const found = await page.locator('#messages').evaluate((list) => ({
      elements: list.querySelectorAll('.msg-body img, .msg-body script, .msg-body svg, .msg-body iframe, .msg-body b').length,
      badLinks: [...list.querySelectorAll('a')].map((x) => x.getAttribute('href')).filter((h) => !/^(https?|mailto):/.test(h) && !h.startsWith('/api/v1/files/')),
      handlers: [...list.querySelectorAll('*')].filter((el) => [...el.attributes].some((at) => at.name.startsWith('on'))).length,
    }));
    assert.deepEqual(found, { elements: 0, badLinks: [], handlers: 0 });
    const first = page.locator('#messages .msg .msg-body', { hasText: 'click' }).first();
    assert.equal(await first.textContent(), '[click](javascript:window.__xss=1)', 'a javascript: link is shown as its text');
    assert.equal(await page.evaluate(() => window.__xss), 0);
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
  }
});

test('search results and reply previews use the same rendering', async () => {
  const a = alice.page;
  const b = bob.page;
  const msg = await type(a, 'welcome to **formatting** land');
  // Reply preview (composer) and the reply's quote both show the bold word.
  await msg.hover();
  await msg.getByRole('button', { name: 'Reply' }).click();
  await a.locator('#reply-text strong', { hasText: 'formatting' }).waitFor();
  await type(a, 'a reply');
  await a.locator('#messages .msg').last().locator('.msg-reply strong', { hasText: 'formatting' }).waitFor();
  await b.locator('#messages .msg').last().locator('.msg-reply strong', { hasText: 'formatting' }).waitFor();
  // Search by prefix: the hit is rendered with the matched word marked.
  await b.getByLabel('Search messages').fill('welc');
  await b.getByRole('button', { name: 'Search', exact: true }).click();
  const hit = b.locator('#search-list li', { hasText: 'welcome' });
  await hit.locator('strong', { hasText: 'formatting' }).waitFor();
  assert.equal(await hit.locator('mark').textContent(), 'welc');
});

test('reading: one header per run of an author, a day divider, a "New messages" line', async () => {
  const a = alice.page;
  const b = bob.page;
  await createRoom(a, 'reading');
  await joinPublicRoom(b, 'reading');
  const first = await type(a, 'run one');
  const second = await type(a, 'run two');
  const third = await type(b, 'bob breaks the run');
  assert.equal(await first.evaluate((el) => el.classList.contains('cont')), false);
  assert.equal(await second.evaluate((el) => el.classList.contains('cont')), true, 'the second of a run has no header of its own');
  assert.equal(await third.evaluate((el) => el.classList.contains('cont')), false);
  assert.deepEqual(await a.locator('#messages .day-divider').allTextContents(), ['Today']);
  // Bob looks at another room while alice writes; back in the room, the line
  // sits above the first message he has not seen.
  await createRoom(b, 'elsewhere');
  await type(a, 'while bob was away');
  await type(a, 'and more');
  await b.locator('#room-list a', { hasText: 'reading' }).locator('.badge:not(.mention-badge)', { hasText: /^2$/ }).waitFor();
  await b.locator('#room-list a', { hasText: 'reading' }).click();
  const line = b.locator('#messages .msg .new-line');
  await line.waitFor();
  assert.equal(await line.count(), 1);
  // (The line used to sit higher when the room list was reloaded before bob's read receipt reached the
  // server: rooms-read.test.js makes that happen on purpose.)
  assert.equal(await b.locator('#messages .msg', { has: b.locator('.new-line') }).locator('.msg-body').textContent(), 'while bob was away');
  await screenshot(b, 'reading-new-line');
});

test('the emoji picker: search, insert in the composer, react with any emoji', async () => {
  const a = alice.page;
  const b = bob.page;
  await a.locator('#room-list a', { hasText: 'reading' }).click();
  await a.getByRole('button', { name: 'Insert an emoji' }).click();
  await a.getByLabel('Search emoji').fill('rocket');
  await a.getByLabel('Search emoji').press('Enter');
  assert.equal(await a.getByLabel('Message', { exact: true }).inputValue(), '🚀');
  const msg = await type(a, 'launch 🚀');
  await msg.hover();
  await msg.getByRole('button', { name: 'React', exact: true }).click();
  await a.getByLabel('Search emoji').fill('octo');
  await a.locator('.emoji-picker').getByRole('button', { name: /octopus/ }).click();
  await b.locator('#messages .msg', { hasText: 'launch' }).locator('.reactions button', { hasText: '🐙 1' }).waitFor();
  // Recently used emoji come first next time.
  await msg.hover();
  await msg.getByRole('button', { name: 'React', exact: true }).click();
  assert.equal(await a.locator('.emoji-picker .emoji-row').first().getAttribute('aria-label'), 'Recent');
  assert.deepEqual(await a.locator('.emoji-picker .emoji-row').first().getByRole('button').allTextContents(), ['🐙', '🚀']);
  await a.keyboard.press('Escape');
  await a.locator('.emoji-picker').waitFor({ state: 'detached' });
});

test('light/dark choice in the app, kept across reloads', async () => {
  const a = alice.page;
  await a.emulateMedia({ colorScheme: 'light' });
  const bg = () => a.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await bg();
  await a.getByLabel('Theme').selectOption('dark');
  assert.equal(await a.evaluate(() => document.documentElement.dataset.theme), 'dark');
  const dark = await bg();
  assert.notEqual(dark, light);
  await a.reload();
  await a.locator('#conn[data-state="connected"]').waitFor();
  assert.equal(await bg(), dark, 'the choice survives a reload');
  assert.equal(await a.getByLabel('Theme').inputValue(), 'dark');
  await screenshot(a, 'theme-dark');
  await a.getByLabel('Theme').selectOption('system');
  assert.equal(await bg(), light, 'system follows the (light) system setting again');
});
