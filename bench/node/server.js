// The Node hello world of the PM2 comparison: answers every request with the
// 13 bytes "Hello, World!" on $PORT. Unmodified for herd's shared_socket mode:
// herd's preload makes this listen() use the shared socket.
'use strict';
const http = require('http');
const body = Buffer.from('Hello, World!');
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  })
  .listen(Number(process.env.PORT || 3000));
