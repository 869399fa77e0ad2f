// A PM2-style app with wait_ready: it listens on $PORT, warms up for
// WARMUP_MS, then calls process.send('ready'). Until then it answers 503.
'use strict';
const http = require('http');
let warm = false;
http
  .createServer((req, res) => {
    res.statusCode = warm ? 200 : 503;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ pid: process.pid, warm }));
  })
  .listen(process.env.PORT, () => {
    setTimeout(() => {
      warm = true;
      process.send('ready');
    }, Number(process.env.WARMUP_MS || 300));
  });
