// An unmodified Node app for the shared_socket tests: it listens on $PORT
// and answers its pid. herd's preload turns that listen into the shared socket.
'use strict';
const http = require('http');
http
  .createServer((req, res) => {
    setTimeout(() => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ pid: process.pid, instance: process.env.HERD_INSTANCE }));
    }, Number(new URL(req.url, 'http://x').searchParams.get('ms') || 0));
  })
  .listen(process.env.PORT, () => console.log(`node ${process.pid} listening`));
