// Package dbrouter is the seed's DatabasePool and DatabaseRouter on
// pgx/pgxpool: pooled connections to a PostgreSQL primary and its
// streaming replicas, writes and transactions on the primary, reads on
// replicas that are up, not lagging and have replayed what the reader
// already wrote, and transactions that retry serialization failures.
//
// # Pools
//
// Each server has a Pool (a pgxpool.Pool) with the seed's settings as
// defaults: 20 connections at most, 5 kept open, idle ones closed after
// 30 s, 10 s to connect, a connection closed after 7,500 uses (pgxpool
// has no such option; Pool counts uses and closes the connection when
// it would be handed out once more) or after an hour. Statements slower than a second are logged
// with their SQL (never the arguments), duration and server. Pool.Stat
// gives the seed's total, idle and waiting counts and more, and a Router
// is a prometheus.Collector for every pool and replica.
//
// # Saying "read"
//
// Router's Exec, Query, QueryRow, Begin and BeginTx are pgxpool's, and
// run on the primary: code written for a *pgxpool.Pool keeps working, and
// nothing goes to a replica unless the caller says it only reads. It says
// so in one of two ways:
//
//	rows, err := router.Read().Query(ctx, "select ...")       // a Reader
//	rows, err := router.Query(dbrouter.ReadOnly(ctx), "select ...") // a context
//
// The second lets code that takes a pgxpool-shaped interface (a shard, a
// repository) route reads without knowing about the Router. Exec is always
// a write, also under ReadOnly.
//
// A read goes to a replica chosen by Config.Policy (LeastOutstanding, or
// RoundRobin as the seed) among those that are Up. A replica that fails
// the read (before its first row) hands the read to the primary: the
// caller never sees the replica's error. FailThreshold connection failures
// in a row quarantine it (Down); the poller probes it every PollInterval
// and a probe that succeeds brings it back. The poller also measures lag
// (WAL bytes behind the primary, and time since the last replayed commit
// while behind): a replica over MaxLag or MaxLagBytes is Lagging and takes
// no reads until it is back under RejoinFraction of them. Every decision
// is counted by server and reason in dbrouter_route_decisions_total
// (write, selected, and on the primary: no_replica, lagging, down, token,
// fallback).
//
// # Read-your-writes
//
// A write made under a context with a token holder takes the primary's
// WAL insert LSN right after its COMMIT, on the same connection, and adds
// it to the holder; a read under that context goes to a replica only once
// the replica has replayed past it, else it waits up to TokenWait for one
// to catch up, then reads on the primary. A Token names its cluster by the
// primary's system identifier, so tokens of several clusters (shards) can
// travel together and never confuse one another.
//
//	ctx = dbrouter.WithToken(ctx, dbrouter.Token{}) // a holder; Middleware makes one per request
//	_, err := router.Exec(ctx, "insert into orders ...")
//	err = router.Read().QueryRow(ctx, "select ... from orders ...").Scan(...) // sees the insert
//
// Between services the token travels in the Herd-Consistency-Token header
// (TokenHeader): Middleware reads it from the request into the request's
// context and writes the token back on the answer; svcclient sends the
// token of its call's context and adds the one an answer brings back, so
// that a write in one service (orders) and a read in another (users), made
// under the same incoming request, are consistent. Its form is
// CLUSTER:HI/LO[,CLUSTER:HI/LO...] (package consistency).
//
// Callers that cannot carry a token stick by scope: under WithScope(ctx,
// "user:42") a write records its LSN for the scope in Config.Sticky (in
// memory by default, or a RedisStore shared by every process, which keeps
// the greater LSN per cluster in a Lua script) and a read in the scope is
// never older than it.
//
// A write under a context with neither a holder nor a scope costs no
// extra round trip; Router.Token takes a token on demand.
//
// # Transactions
//
// Tx(ctx, fn) runs fn in a transaction on the primary, retries it on
// 40001 (serialization failure) and 40P01 (deadlock) with backoff, rolls
// back on an error or a panic (and panics on), and never retries once
// COMMIT was sent: a failed COMMIT is a *CommitError.
package dbrouter
