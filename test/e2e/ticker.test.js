// The ticker demo: prices pushed by a backend through the server API
// (POST /api/publish with an API key) show up on /ticker.html, linked from
// the app; the example publisher in examples/ticker drives it too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { startServer, launchBrowser, newPage, screenshot, waitFor, apiKey, tempDir, repoRoot } from './helpers.js';
import { maybeRouteSDK, signUp, waitOnline } from './driver.js';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop('SIGTERM');
});

async function publish(channel, data) {
  const res = await fetch(`${server.url}/api/publish`, {
    method: 'POST',
    headers: { Authorization: `apikey ${apiKey(server.dataDir)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  assert.equal(res.status, 200, await res.text());
}

test('the ticker page shows prices pushed through the server API', async () => {
  server = await startServer();
  browser = await launchBrowser();
  const { context, page } = await newPage(browser, server.url);
  await maybeRouteSDK(context);
  await signUp(page, 'trader');
  await page.getByRole('link', { name: 'Ticker demo' }).click();
  await page.waitForURL('**/ticker.html');
  await waitOnline(page);

  const row = (sym) => page.locator('#rows tr', { has: page.locator('th', { hasText: sym }) });
  await publish('feed:BTC-USD', { symbol: 'BTC-USD', price: 64000.5, ts: Date.now() });
  await row('BTC-USD').locator('td').first().filter({ hasText: (64000.5).toLocaleString('en-US') }).waitFor();
  await publish('feed:BTC-USD', { symbol: 'BTC-USD', price: 65280.51, ts: Date.now() });
  await row('BTC-USD').locator('td').nth(1).filter({ hasText: '+2.00%' }).waitFor();
  await publish('feed:NVDA', { symbol: 'NVDA', price: 120, ts: Date.now() });
  await row('NVDA').locator('td').first().filter({ hasText: '120' }).waitFor();

  // A page opened later starts from the last price (history), without waiting for a tick.
  const late = await context.newPage();
  await late.goto('/ticker.html');
  await late.locator('#rows tr', { has: late.locator('th', { hasText: 'NVDA' }) }).locator('td').first().filter({ hasText: '120' }).waitFor();
  await late.close();

  // The example publisher (examples/ticker) feeds the board.
  const bin = path.join(tempDir('ticker-'), 'ticker');
  execFileSync('go', ['build', '-o', bin, './examples/ticker'], { cwd: repoRoot, stdio: 'inherit' });
  const pub = spawn(bin, ['--url', server.url, '--data', server.dataDir, '--rate', '20', '--count', '40'], { stdio: 'inherit' });
  try {
    const counts = () => page.locator('#rows tr td:nth-child(4)').allTextContents();
    await waitFor(async () => (await counts()).every((c) => Number(c) >= 3), { message: 'ticks from the example publisher on every row', timeout: 20000 });
  } finally {
    pub.kill('SIGINT');
  }
  await screenshot(page, 'ticker');
  assert.deepEqual(page.errors, []);
});
