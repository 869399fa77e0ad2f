// Package shard spreads rows over several PostgreSQL databases by key,
// moves parts of them between databases while writes go on, and queries
// all of them at once without hiding a failed one.
//
// # Placement
//
// A key (a string; write numeric ids in decimal) hashes to one of a fixed
// number of buckets: BucketOf(key, n) = XXH64(key, seed 0) % n. The bucket
// count n is chosen when the map is created (DefaultBuckets, 1024) and
// never changes, because every row stores its bucket in a column of its
// own (shard_bucket by default, set by the caller to db.Bucket(key)).
// Buckets, not keys, are assigned to shards, by a map. Adding a shard moves
// whole buckets, and only those a plan picks: Plan gives each shard
// ⌊n/N⌋ or ⌈n/N⌉ buckets by moving only buckets of shards over their
// share, so going from 4 shards to 5 moves 1/5 of the buckets and so about
// 1/5 of the keys. The seed's hashCode % N moves 80 % of them (see
// ExamplePlan and TestAddingAFifthShardMovesAFifthOfKeys).
//
// # The map
//
// The map lives in one database of its choosing (Config.Map; it may be a
// shard's): herd_shard_map holds the bucket count and a version,
// herd_shard_buckets one row per bucket with its shard, herd_shard_shards
// the shard names, herd_shard_moves the state of every move. Connections
// to the shards are not stored: Config.Shards maps each name to a Conn
// (a *pgxpool.Pool, or anything with its Exec, Query, QueryRow and Begin,
// such as a router over a primary and its replicas, which must send these
// calls to its primary). A DB caches the map and reloads it when a shard
// says it no longer holds a bucket, so the map is read once, not per call.
//
// Each shard also keeps its own view of its buckets (herd_shard_local:
// owned, copying, fenced, incoming, moved), and a row trigger on every
// sharded table. Every call the package routes starts with
// herd_shard_enter(bucket), which takes the bucket's advisory lock shared
// and checks the shard's view, in the same transaction as the caller's
// statement (one round trip with a pool: a batch). A stale map therefore
// never writes to or reads from a shard that let the bucket go: the call
// fails with an internal "not owned", the DB reloads the map and routes it
// again. The trigger refuses any write to a row whose bucket the
// transaction did not enter, so nothing writes around a move's fence (set
// herd_shard.bypass to on in a transaction to do so knowingly, as
// migrations may; TRUNCATE is not seen by row triggers).
//
// # Moving a bucket
//
// DB.Move(ctx, bucket, target) moves one bucket while writes to it go on;
// Rebalance runs a plan. The phases, stored in herd_shard_moves before each
// is left:
//
//  1. start: the target's view says incoming; the source's says copying,
//     changed under the bucket's lock taken exclusive, which waits for the
//     calls that entered before. From then on every write to the bucket on
//     the source is logged by the trigger (table and key, in
//     herd_shard_changes).
//  2. copy: the log is cleared, then the bucket's rows are copied with
//     COPY (binary) from the source into the target, after deleting any
//     rows of the bucket there (from an earlier, stopped try). A change
//     after the copy's snapshot is in the log; one before it is in the copy.
//  3. catchup: rounds apply the log while writes go on: for each changed
//     key the target's row is replaced by the source's current row, or
//     deleted if the source has none; applied entries are deleted by
//     sequence number, so an entry committed late is applied by a later
//     round, never skipped. Rounds stop once one finds few changes.
//  4. fence: the source's view says fenced, under the exclusive lock.
//     Writes to the bucket now wait (Config.FenceWait, default 10 s);
//     reads go on, as the source's rows are complete and frozen.
//  5. final: the rest of the log is applied; then, table by table, the
//     bucket's rows on source and target are compared (count, and an MD5
//     of the rows' text in key order). A difference stops the move here.
//  6. own: the target's view says owned. Nobody routes there yet.
//  7. flip: the map gives the bucket to the target and its version grows
//     by one, with the move's phase, in one transaction: the commit point.
//  8. release: the source's view says moved; callers still holding the old
//     map are told so, reload and go to the target.
//  9. cleanup: the source's rows of the bucket and its log are deleted.
//
// Guarantees: no committed write is lost or applied twice, and every row
// exists on exactly one shard as the map says, once the move is done; a
// write waits only during fence..release (milliseconds for a bucket of a
// few hundred rows); a read through the package always sees the bucket's
// latest committed rows; a scatter-gather never counts a row twice or
// misses one. Each phase's action is idempotent, so a move stopped at any
// point (crash, cancelled context, lost connection) is finished by Move of
// the same bucket and target, or Resume, from another process; a move
// stopped while fenced keeps writes to that one bucket waiting until it
// is resumed. Abort undoes a stopped move that has not flipped (the source
// owns the bucket again, the target's copy is deleted); past the flip
// only Resume goes on. Moves lists the stored moves, with the rows copied,
// the changes applied and how long writes waited (fence to release; tens
// of milliseconds in the tests, for buckets of tens of rows). One mover at a time works on a bucket (an advisory lock held
// in an open transaction on the map database, released if the mover
// dies). Rows a move copies must have the same columns on both shards
// (same DDL); generated columns are left to the target to compute.
//
// # Scatter-gather
//
// QueryAll runs one statement on every shard that owns buckets, in
// parallel, each under the context (and Query.ShardTimeout, if set). The
// statement gets the shard's buckets under the map the call uses as $1
// and must filter on them (WHERE shard_bucket = ANY($1)): a shard may
// hold rows of buckets it does not own yet (copied) or any more (not yet
// cleaned), and those must not count. The package wraps the statement so
// that the shard checks, in the statement's own snapshot, that it still
// holds those buckets; if not (a move flipped meanwhile), the call
// reloads the map and runs again.
//
// By default any failed shard fails the call, cancelling the others, with
// a *PartialError naming it. With Query.AllowPartial the call returns the
// other shards' rows and the *PartialError beside them: rows are never
// silently missing, as they are when the seed's queryAll swallows a
// shard's error. Query.OrderBy sorts on each shard and merges k-way (a
// heap); Query.Limit is pushed down to every shard. Aggregate combines
// per-shard aggregates column by column: COUNT and SUM add (numeric
// exactly), MIN and MAX compare, and AVG is computed from each shard's
// SUM and COUNT (total sum / total count), never as an average of the
// shards' averages, which is wrong when shards hold different numbers of
// rows. GROUP BY columns combine equal groups; the limit of a grouped
// query is applied after combining. The merge compares text by bytes: sort
// text keys COLLATE "C" in the SQL so that each shard sorts as the merge.
//
// A shard's Conn may send the scatter statement to a replica (a
// dbrouter.Router does under dbrouter.ReadOnly(ctx)): the bucket check
// then runs in the replica's snapshot, so rows are still never counted
// twice, but they are as old as the replica.
//
// A DB is safe for concurrent use.
package shard
