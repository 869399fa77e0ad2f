// Package supervisor runs each herd-managed app as N instances and keeps
// them running: it spawns an instance with a free loopback port in PORT,
// waits until it is ready (the app's ready: check: an HTTP probe, a TCP
// connect, READY=1 on NOTIFY_SOCKET, process.send('ready') on a Node IPC
// channel, or, for a worker that serves nothing, staying up min_uptime),
// restarts it after a crash with exponential backoff and
// jitter, marks it errored after too many unstable restarts, and stops it
// gracefully: out of the pool, drained, signalled, killed after a bound.
//
// The supervisor does not know about the load balancer. It tells its owner
// about lifecycle changes through Hooks, and the owner maps them onto the
// balancer's pools: an instance is in a pool exactly while it is Ready.
//
// Lifecycle of one instance slot:
//
//	starting ─► ready ─► draining ─► stopped
//	   │          │
//	   └──────────┴──► (exit) ─► backoff ─► starting ...
//	                              └─► errored (max_restarts unstable exits)
package supervisor
