// The room list follows what others do at once (personal events on
// user:<name>; the app has no room-list poll), files sent in quick
// succession keep their names for the other side, and the small things
// around rooms: invite and leave feedback, the upload
// limit, the public-room list after leaving, the tab title, the favicon, the
// ticker page for anonymous visitors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, launchBrowser, newPage, screenshot, tempDir } from './helpers.js';
import { maybeRouteSDK, signUp, createRoom, joinPublicRoom, openRoom, send } from './driver.js';

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
  // Every response of the app, to find 404s (the favicon was one).
  for (const p of [alice.page, bob.page]) {
    p.notFound = [];
    p.on('response', (r) => { if (r.status() === 404) p.notFound.push(r.url()); });
  }
  await signUp(alice.page, 'alice');
  await signUp(bob.page, 'bob');
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

async function roomMenu(page) {
  const menu = page.locator('#room-menu');
  if (!(await menu.evaluate((d) => d.open))) await menu.locator('summary').click();
}

test('an invitation and a new direct message show up for the other user at once', async () => {
  const a = alice.page;
  const b = bob.page;
  await createRoom(a, 'secrets', 'private');
  await roomMenu(a);
  await a.getByLabel('Invite a user').fill('bob');
  await a.getByRole('button', { name: 'Invite', exact: true }).click();
  // The inviter sees it worked.
  await a.locator('#room-menu-status', { hasText: 'Invited bob' }).waitFor();

  // Bob did nothing: the room appears in his list through the personal
  // event, with a notice (the app no longer polls the room list).
  await b.locator('#room-list a', { hasText: 'secrets' }).waitFor();
  await b.locator('#sidebar-notice', { hasText: 'alice added you to' }).waitFor();

  // A direct message alice opens appears in bob's list the same way.
  await a.locator('#dm-username').fill('bob');
  await a.locator('#dm-form').getByRole('button').click();
  await a.locator('#room-title', { hasText: '@bob' }).waitFor();
  await b.locator('#dm-list a', { hasText: 'alice' }).waitFor();
  await screenshot(b, 'rooms-bob-invited');
});

test('a second file sent right after the first keeps its name for the others', async () => {
  const a = alice.page;
  const b = bob.page;
  await createRoom(a, 'files');
  await joinPublicRoom(b, 'files');
  await openRoom(a, 'files');
  // Two files, one right after the other (the second used to show to bob as
  // a nameless "attachment" until he reloaded).
  for (const [name, body] of [['one.txt', 'first file\n'], ['two.txt', 'second file\n']]) {
    await a.setInputFiles('#composer-file', { name, mimeType: 'text/plain', buffer: Buffer.from(body) });
    await a.getByRole('button', { name: 'Send' }).click();
    await a.locator('#messages .file-card', { hasText: name }).waitFor();
  }
  for (const name of ['one.txt', 'two.txt']) await b.locator('#messages .file-card .file-name', { hasText: name }).waitFor();
  const names = await b.locator('#messages .file-card .file-name').allTextContents();
  assert.deepEqual(names, ['one.txt', 'two.txt']);
  await screenshot(b, 'rooms-two-files');
});

test('an invitation is confirmed to the inviter; the tab title counts every room', async () => {
  const a = alice.page;
  const b = bob.page;
  await createRoom(a, 'plans', 'private');
  await roomMenu(a);
  await a.getByLabel('Invite a user').fill('bob');
  await a.getByRole('button', { name: 'Invite', exact: true }).click();
  await a.locator('#room-menu-status', { hasText: 'Invited bob' }).waitFor();

  // Bob looks at a room of his own while alice writes in files.
  await createRoom(b, 'bobs');
  await openRoom(a, 'files');
  await send(a, 'first news');
  await send(a, 'second news');
  await b.waitForFunction(() => document.title.startsWith('(2) '), null, { timeout: 15000 });
  assert.equal(await b.title(), '(2) #bobs · Sori');
});

test('a file over the upload limit is refused before it is sent, in MB', async () => {
  const a = alice.page;
  await openRoom(a, 'files');
  const uploads = [];
  const onRequest = (r) => { if (r.method() === 'POST' && /\/files\?/.test(r.url())) uploads.push(r.url()); };
  a.on('request', onRequest);
  try {
    // The default limit is 10 MiB; this file is 11 MiB (from disk: a buffer
    // this big crawls through the browser protocol).
    const big = path.join(tempDir('upload-'), 'big.bin');
    fs.writeFileSync(big, Buffer.alloc(11 << 20));
    await a.setInputFiles('#composer-file', big);
    await a.locator('#composer-error', { hasText: 'big.bin is 11.0 MB: files can be up to 10.0 MB.' }).waitFor();
    assert.equal(await a.locator('#attachment-preview').isHidden(), true, 'nothing attached');
    assert.deepEqual(uploads, [], 'no upload was attempted');
    // A file under the limit shows the limit in the preview.
    await a.setInputFiles('#composer-file', { name: 'small.txt', mimeType: 'text/plain', buffer: Buffer.from('small\n') });
    await a.locator('#attachment-preview', { hasText: 'small.txt (6 B of up to 10.0 MB)' }).waitFor();
    await a.locator('#attachment-preview').getByRole('button', { name: 'Remove small.txt' }).click();
  } finally {
    a.off('request', onRequest);
  }
});

test('leaving asks first, and the room is offered again in the public list', async () => {
  const b = bob.page;
  await openRoom(b, 'files');
  // The public list is open while bob is in every public room.
  const browse = b.locator('#browse-rooms');
  if (!(await browse.evaluate((d) => d.open))) await browse.locator('summary').click();
  await b.locator('#public-rooms', { hasText: 'You are in every public room.' }).waitFor();

  await roomMenu(b);
  await b.getByRole('button', { name: 'Leave this room' }).click();
  await b.locator('#leave-question', { hasText: 'Leave #files?' }).waitFor();
  // "Stay" keeps him in the room.
  await b.getByRole('button', { name: 'Stay' }).click();
  assert.equal(await b.locator('#room-list a', { hasText: 'files' }).count(), 1);
  await b.getByRole('button', { name: 'Leave this room' }).click();
  await b.getByRole('button', { name: 'Leave', exact: true }).click();
  await b.locator('#room-list a', { hasText: 'files' }).waitFor({ state: 'detached' });
  // The open list now offers the room he left.
  await b.getByRole('button', { name: 'Join files' }).waitFor();
});

test('no request of the app answers 404 (the favicon is embedded)', async () => {
  const a = alice.page;
  await a.reload();
  await a.locator('#conn[data-state="connected"]').waitFor();
  const icon = await a.evaluate(async () => (await fetch(document.querySelector('link[rel="icon"]').href)).status);
  assert.equal(icon, 200);
  assert.deepEqual([...alice.page.notFound, ...bob.page.notFound], []);
});

test('the ticker page tells an anonymous visitor what to do', async () => {
  const { context, page } = await newPage(browser, server.url);
  try {
    await page.goto('/ticker.html');
    const note = page.locator('#anonymous');
    await note.waitFor();
    assert.match(await note.textContent(), /--allow-anonymous/);
    assert.equal(await page.locator('#conn').textContent(), 'needs a login');
  } finally {
    await context.close();
  }
});
