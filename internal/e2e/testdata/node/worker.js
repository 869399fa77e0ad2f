// A queue consumer: it serves no port, works on a timer, and stops cleanly
// on SIGINT or SIGTERM.
'use strict';
const timer = setInterval(() => {}, 100);
const stop = () => { clearInterval(timer); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
