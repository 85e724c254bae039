// The uWebSockets.js peer of scripts/bench-peers.sh: GET /ws?channel=C
// subscribes to C (uWS's own topic pub/sub); POST /publish {"channel","data"}
// publishes data, encoded once, to the topic. No compression.
'use strict';
const uWS = require(process.env.UWS_MODULE || 'uWebSockets.js');

const app = uWS.App();
app.ws('/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0, // as the other peers: no server-side idle close during a run
  upgrade: (res, req, context) => {
    const ch = new URLSearchParams(req.getQuery()).get('channel');
    res.upgrade({ ch }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => {
    const { ch } = ws.getUserData();
    ws.subscribe(ch);
    ws.send(JSON.stringify({ subscribed: ch }));
  },
});
app.post('/publish', (res) => {
  const chunks = [];
  res.onAborted(() => {});
  res.onData((ab, last) => {
    chunks.push(Buffer.from(ab.slice(0)));
    if (!last) return;
    const { channel, data } = JSON.parse(Buffer.concat(chunks));
    app.publish(channel, JSON.stringify(data));
    res.end('{}');
  });
});
app.listen('127.0.0.1', +process.env.PORT, (ok) => {
  if (!ok) {
    console.error('uws: cannot listen');
    process.exit(1);
  }
});
