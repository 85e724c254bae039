// The live ticker board: subscribes to feed:<SYMBOL> channels and shows the
// latest price of each. Everything is rendered with textContent, never HTML.
import { SoriClient } from '/sdk/index.js';

const symbols = new URLSearchParams(location.search).get('symbols')?.split(',').filter(Boolean)
  ?? ['BTC-USD', 'ETH-USD', 'SOL-USD', 'AAPL', 'MSFT', 'NVDA'];

const rows = document.getElementById('rows');
const conn = document.getElementById('conn');
const cells = new Map();

for (const sym of symbols) {
  const tr = document.createElement('tr');
  const [name, price, change, count] = ['th', 'td', 'td', 'td'].map((tag) => document.createElement(tag));
  name.scope = 'row';
  name.textContent = sym;
  price.textContent = '—';
  count.textContent = '0';
  tr.append(name, price, change, count);
  rows.append(tr);
  cells.set(sym, { price, change, count, first: null, n: 0 });
}

// A logged-in chat user gets a token from the chat API; anyone else connects
// anonymously, which the server allows only with --allow-anonymous: then the
// page says so rather than trying for ever.
async function chatToken() {
  const res = await fetch('/api/v1/auth/connect-token', { method: 'POST', credentials: 'same-origin', headers: csrfHeaders() });
  if (!res.ok) throw new Error(`connect token: HTTP ${res.status}`);
  return (await res.json()).token;
}

function csrfHeaders() {
  const m = document.cookie.match(/(?:^|; )sori_csrf=([^;]+)/);
  return m ? { 'X-CSRF-Token': decodeURIComponent(m[1]) } : {};
}

const loggedIn = await chatToken().then(() => true, () => false);
const client = new SoriClient({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  ...(loggedIn ? { getToken: chatToken } : {}),
});
client.on('state', (state) => {
  conn.dataset.state = state;
  conn.textContent = { connecting: 'connecting…', connected: 'live', reconnecting: 'reconnecting…', disconnected: 'offline' }[state] ?? state;
});
client.on('disconnected', ({ error }) => {
  // 113: the server wants a token, and an anonymous visitor has none.
  if (error?.code !== 113 || loggedIn) return;
  conn.textContent = 'needs a login';
  document.getElementById('anonymous').hidden = false;
});

function show(sym, data) {
  const c = cells.get(sym);
  const price = Number(data?.price);
  if (!c || !Number.isFinite(price)) return;
  c.first ??= price;
  c.n += 1;
  c.price.textContent = price.toLocaleString(undefined, { maximumFractionDigits: 4 });
  const pct = ((price - c.first) / c.first) * 100;
  c.change.textContent = `${pct >= 0 ? '+' : ''}${pct.toFixed(2)}%`;
  c.change.className = pct >= 0 ? 'up' : 'down';
  c.count.textContent = String(c.n);
}

for (const sym of symbols) {
  const sub = client.subscribe(`feed:${sym}`, { onPublication: (pub) => show(sym, pub.data) });
  // Show the last known price at once rather than waiting for the next tick.
  sub.on?.('subscribed', async () => {
    try {
      const h = await sub.history({ limit: 1 });
      const last = h.publications?.at(-1);
      if (last) show(sym, last.data);
    } catch { /* history is best effort */ }
  });
}
client.connect();
