// The Socket.IO v4 peer of scripts/bench-peers.sh: clients emit
// "sub" with a channel name and join that room (acknowledged with
// "subscribed"); POST /publish {"channel","data"} emits "pub" to the room.
// WebSocket transport only, no permessage-deflate.
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const { readBody } = require('./common');

const server = http.createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') {
    res.writeHead(404).end();
    return;
  }
  const { channel, data } = JSON.parse(await readBody(req));
  io.to(channel).emit('pub', data);
  res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
});
const io = new Server(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
io.on('connection', (socket) => {
  socket.on('sub', (ch) => {
    socket.join(ch);
    socket.emit('subscribed', ch);
  });
});
server.listen(+process.env.PORT, '127.0.0.1');
