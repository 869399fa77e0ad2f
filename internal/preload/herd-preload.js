// herd's Node.js preload, loaded with --require through NODE_OPTIONS.
//
// In every mode, when herd asks for it (HERD_LAG_IPC=1), it measures the
// app's event-loop delay with perf_hooks.monitorEventLoopDelay and reports
// it to herd about once a second on the IPC channel herd opened:
// {"herd":"lag","p50":..,"p99":..,"max":..} in milliseconds. Its timer is
// unref'd and it never listens for messages, so it keeps no app alive and
// an app's own process.on('message') sees nothing of it.
//
// In mode: shared_socket it also lets an unmodified app share herd's socket:
//
// - the first server.listen() on $PORT listens on the socket herd passed as
//   fd 3 (LISTEN_FDS=1, LISTEN_PID=this process, systemd's protocol), so
//   every instance accepts from one socket, as PM2's cluster mode promises;
// - once it listens, it tells herd it is ready (READY=1 on $HERD_READY_FD);
// - on SIGTERM it stops accepting and drops nothing, keep-alive included
//   (see stop below), then exits: a reload loses no request.
'use strict';
const net = require('net');
const http = require('http');
const fs = require('fs');

const fds = Number(process.env.LISTEN_FDS || 0);
const forMe = process.env.LISTEN_PID === String(process.pid);
const port = String(process.env.PORT || '');
// Children of the app are not meant to inherit the socket.
delete process.env.LISTEN_FDS;
delete process.env.LISTEN_PID;
delete process.env.LISTEN_FDNAMES;

if (process.env.HERD_LAG_IPC === '1' && typeof process.send === 'function') {
  delete process.env.HERD_LAG_IPC;
  const { monitorEventLoopDelay } = require('perf_hooks');
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const ms = (ns) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
  const report = setInterval(() => {
    if (!process.connected) return;
    const msg = { herd: 'lag', p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) };
    delay.reset();
    // With a callback a closed channel is an error passed to it, not an
    // 'error' event that would crash an app with no handler.
    process.send(msg, () => {});
  }, 1000);
  report.unref();
}

function wantedPort(args) {
  const a = args[0];
  if (a !== null && typeof a === 'object' && !Array.isArray(a)) {
    if (a.fd !== undefined || a.path !== undefined) return false;
    return String(a.port) === port;
  }
  return String(a) === port;
}

if (fds >= 1 && forMe && port !== '') {
  const listen = net.Server.prototype.listen;
  const servers = [];
  let taken = false;
  let draining = false;
  const inFlight = new Set(); // responses not yet finished

  // track marks every response of an HTTP server that arrives while
  // draining "Connection: close", so its client opens its next request
  // elsewhere instead of on a connection about to close.
  const track = (server) => {
    if (!(server instanceof http.Server)) return;
    server.prependListener('request', (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      inFlight.add(res);
      const done = () => inFlight.delete(res);
      res.once('finish', done);
      res.once('close', done);
    });
  };

  net.Server.prototype.listen = function (...args) {
    if (taken || !wantedPort(args)) return listen.apply(this, args);
    taken = true;
    servers.push(this);
    track(this);
    const cb = args.find((a) => typeof a === 'function');
    this.once('listening', () => {
      const fd = Number(process.env.HERD_READY_FD || 0);
      if (fd > 0) {
        try {
          fs.writeSync(fd, 'READY=1\n');
          fs.closeSync(fd);
        } catch (e) {
          // herd falls back to its listen_timeout
        }
      }
    });
    return listen.call(this, { fd: 3 }, cb);
  };

  // stop: http.Server.close() would close idle keep-alive connections at
  // once, racing a client that is sending on one (it sees a reset, and may
  // not resend a POST). Instead: stop accepting (the other instances take
  // the socket's queue), answer every request still arriving on an open
  // connection with "Connection: close", close connections still idle only
  // after a grace period a client's next request falls in, and exit once
  // every connection has ended (herd's kill_timeout bounds it).
  const graceMs = Number(process.env.HERD_IDLE_GRACE_MS || 1000);
  process.once('SIGTERM', () => {
    if (servers.length === 0) process.exit(0);
    draining = true;
    for (const res of inFlight) {
      if (!res.headersSent) res.shouldKeepAlive = false;
    }
    let open = servers.length;
    for (const s of servers) {
      // net.Server's close stops accepting and leaves connections be.
      net.Server.prototype.close.call(s, () => {
        if (--open === 0) process.exit(0);
      });
      if (typeof s.closeIdleConnections === 'function') {
        setTimeout(() => s.closeIdleConnections(), graceMs).unref();
      }
    }
  });
}
