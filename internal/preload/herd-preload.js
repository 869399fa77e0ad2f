// herd's Node.js preload for mode: shared_socket (loaded with --require
// through NODE_OPTIONS). It lets an unmodified app share herd's socket:
//
// - the first server.listen() on $PORT listens on the socket herd passed as
//   fd 3 (LISTEN_FDS=1, LISTEN_PID=this process, systemd's protocol), so
//   every instance accepts from one socket, as PM2's cluster mode promises;
// - once it listens, it tells herd it is ready (READY=1 on $HERD_READY_FD);
// - on SIGTERM it stops accepting, closes idle keep-alive connections,
//   lets requests in flight finish, then exits: a reload drops nothing.
'use strict';
const net = require('net');
const fs = require('fs');

const fds = Number(process.env.LISTEN_FDS || 0);
const forMe = process.env.LISTEN_PID === String(process.pid);
const port = String(process.env.PORT || '');
// Children of the app are not meant to inherit the socket.
delete process.env.LISTEN_FDS;
delete process.env.LISTEN_PID;
delete process.env.LISTEN_FDNAMES;

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

  net.Server.prototype.listen = function (...args) {
    if (taken || !wantedPort(args)) return listen.apply(this, args);
    taken = true;
    servers.push(this);
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

  process.once('SIGTERM', () => {
    if (servers.length === 0) process.exit(0);
    let open = servers.length;
    for (const s of servers) {
      s.close(() => {
        if (--open === 0) process.exit(0);
      });
      if (typeof s.closeIdleConnections === 'function') s.closeIdleConnections();
    }
  });
}
