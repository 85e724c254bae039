// Page-level actions on the web app, shared by the tests. They wait for
// visible conditions (with deadlines), never for fixed times.
import fs from 'node:fs';
import path from 'node:path';

/** Routes /sdk/ to a local directory when SORI_SDK_DIR is set (to try an unreleased SDK). */
export async function maybeRouteSDK(context) {
  const dir = process.env.SORI_SDK_DIR;
  if (!dir) return;
  await context.route('**/sdk/**', (route) => {
    const rel = new URL(route.request().url()).pathname.replace(/^\/sdk\//, '');
    const file = path.join(dir, rel);
    if (!fs.existsSync(file)) return route.fulfill({ status: 404 });
    return route.fulfill({ status: 200, contentType: 'text/javascript', body: fs.readFileSync(file, 'utf8') });
  });
}

export async function signUp(page, username, password = 'correct horse battery') {
  await page.goto('/');
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByText(`Signed in as ${username}`).waitFor({ state: 'attached' });
  await waitOnline(page);
}

export async function logIn(page, username, password = 'correct horse battery') {
  await page.goto('/');
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText(`Signed in as ${username}`).waitFor({ state: 'attached' });
}

export async function waitOnline(page, timeout = 15000) {
  await page.locator('#conn[data-state="connected"]').waitFor({ timeout });
}

export async function createRoom(page, name, kind = 'public') {
  const details = page.locator('#create-room');
  if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click();
  await page.getByLabel(/^Name/).fill(name);
  await page.getByRole('radio', { name: kind === 'public' ? /Public/ : /Private/ }).check();
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

export async function joinPublicRoom(page, name) {
  const details = page.locator('#browse-rooms');
  if (await details.evaluate((d) => d.open)) await details.locator('summary').click(); // close, to reload the list
  await details.locator('summary').click();
  await page.getByRole('button', { name: `Join ${name}` }).click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

export async function openRoom(page, name) {
  await page.locator('#room-list a, #dm-list a').filter({ hasText: name }).first().click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

export async function send(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
  await messageLocator(page, text).first().waitFor();
}

/** The message element whose body is exactly text. */
export function messageLocator(page, text) {
  return page.locator('#messages .msg').filter({ has: page.locator('.msg-body', { hasText: text }) });
}

/** Texts of all message bodies in the open room, in order. */
export function messageTexts(page) {
  return page.locator('#messages .msg .msg-body').allTextContents();
}
