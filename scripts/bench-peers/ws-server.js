// The Node `ws` peer of scripts/bench-peers.sh: a minimal pub/sub relay.
// GET /ws?channel=C (WebSocket) subscribes to C; POST /publish
// {"channel","data"} sends data, encoded once, to every subscriber of C.
// No permessage-deflate, as in the other servers measured.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');
const { readBody } = require('./common');

const channels = new Map();
const server = http.createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') {
    res.writeHead(404).end();
    return;
  }
  const { channel, data } = JSON.parse(await readBody(req));
  const msg = Buffer.from(JSON.stringify(data));
  for (const ws of channels.get(channel) || []) ws.send(msg, { binary: false });
  res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const ch = new URL(req.url, 'http://peer').searchParams.get('channel');
  let subs = channels.get(ch);
  if (!subs) channels.set(ch, (subs = new Set()));
  subs.add(ws);
  ws.on('close', () => subs.delete(ws));
  ws.send(JSON.stringify({ subscribed: ch }));
});
server.listen(+process.env.PORT, '127.0.0.1');
