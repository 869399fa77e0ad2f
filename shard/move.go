package shard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The phases of a bucket move, in order, as stored in herd_shard_moves.
// A phase's action is idempotent, and the next phase is stored only after
// it completed, so a move stopped anywhere resumes by running its stored
// phase again.
const (
	PhaseStart   = "start"   // target: bucket incoming; source: bucket copying (its writes logged)
	PhaseCopy    = "copy"    // clear the log, copy the bucket's rows source → target
	PhaseCatchUp = "catchup" // apply logged changes in rounds while writes go on
	PhaseFence   = "fence"   // source: bucket fenced (writes wait; reads go on)
	PhaseFinal   = "final"   // apply the rest of the log; compare rows (count and digest)
	PhaseOwn     = "own"     // target: bucket owned (no one routes there yet)
	PhaseFlip    = "flip"    // map: bucket → target, version + 1 (the commit point)
	PhaseRelease = "release" // source: bucket moved (stale callers reload the map)
	PhaseCleanup = "cleanup" // source: delete the bucket's rows and log
	PhaseDone    = "done"
)

var phases = []string{PhaseStart, PhaseCopy, PhaseCatchUp, PhaseFence, PhaseFinal, PhaseOwn, PhaseFlip, PhaseRelease, PhaseCleanup, PhaseDone}

// catch-up tuning: a round reads at most roundMax changes; the fence
// comes once a round finds at most fenceBelow (or after maxRounds).
const (
	roundMax   = 5000
	fenceBelow = 200
	maxRounds  = 50
)

type move struct {
	db       *DB
	id       int64
	bucket   int
	from, to string
	phase    string
	version  int64
	src, dst Conn
	cols     map[string]string // table → quoted column list
}

// Move moves bucket to shard to while writes go on, and returns when the
// map routes it there and the source's rows are gone. If an unfinished
// move of the bucket is stored (a mover crashed), Move resumes it; it must
// be to the same shard. Only one mover at a time works on a bucket
// (ErrMoveRunning otherwise). Cancelling ctx stops the move at the step it
// is in, leaving it resumable; if it stops while fenced, writes to that
// bucket wait (up to Config.FenceWait) until it is resumed.
func (db *DB) Move(ctx context.Context, bucket int, to string) error {
	m := db.cur.Load()
	if bucket < 0 || bucket >= m.Buckets() {
		return fmt.Errorf("shard: move bucket %d: no such bucket", bucket)
	}
	if db.cfg.Shards[to] == nil {
		return fmt.Errorf("shard: move bucket %d to %s: no such shard in Config.Shards", bucket, to)
	}
	lock, err := db.cfg.Map.Begin(ctx)
	if err != nil {
		return fmt.Errorf("shard: move bucket %d: %w", bucket, err)
	}
	defer lock.Rollback(context.WithoutCancel(ctx))
	var got bool
	if err := lock.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, lockClass+1, bucket).Scan(&got); err != nil {
		return fmt.Errorf("shard: move bucket %d: %w", bucket, err)
	}
	if !got {
		return fmt.Errorf("%w (bucket %d)", ErrMoveRunning, bucket)
	}
	mv := &move{db: db, bucket: bucket, cols: map[string]string{}}
	err = db.cfg.Map.QueryRow(ctx, `SELECT id, source, target, phase, coalesce(version, 0) FROM herd_shard_moves WHERE bucket = $1 AND finished_at IS NULL`, bucket).
		Scan(&mv.id, &mv.from, &mv.to, &mv.phase, &mv.version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var owner string
		if err := db.cfg.Map.QueryRow(ctx, `SELECT shard FROM herd_shard_buckets WHERE bucket = $1`, bucket).Scan(&owner); err != nil {
			return fmt.Errorf("shard: move bucket %d: %w", bucket, err)
		}
		if owner == to {
			return nil
		}
		mv.from, mv.to, mv.phase = owner, to, PhaseStart
		if err := db.cfg.Map.QueryRow(ctx, `INSERT INTO herd_shard_moves (bucket, source, target, phase) VALUES ($1, $2, $3, $4) RETURNING id`,
			bucket, mv.from, mv.to, mv.phase).Scan(&mv.id); err != nil {
			return fmt.Errorf("shard: move bucket %d: %w", bucket, err)
		}
	case err != nil:
		return fmt.Errorf("shard: move bucket %d: %w", bucket, err)
	case mv.to != to:
		return fmt.Errorf("shard: move bucket %d to %s: an unfinished move to %s is stored; resume it first", bucket, to, mv.to)
	}
	mv.src, mv.dst = db.cfg.Shards[mv.from], db.cfg.Shards[mv.to]
	if mv.src == nil {
		return fmt.Errorf("shard: move bucket %d: source shard %s not in Config.Shards", bucket, mv.from)
	}
	if err := mv.run(ctx); err != nil {
		return fmt.Errorf("shard: move bucket %d %s → %s, in phase %s: %w", bucket, mv.from, mv.to, mv.phase, err)
	}
	return nil
}

// Resume finishes every unfinished move stored in the map database, in
// bucket order. Run it when a mover starts (after a crash).
func (db *DB) Resume(ctx context.Context) error {
	rows, err := db.cfg.Map.Query(ctx, `SELECT bucket, target FROM herd_shard_moves WHERE finished_at IS NULL ORDER BY bucket`)
	if err != nil {
		return fmt.Errorf("shard: resume: %w", err)
	}
	type open struct {
		b  int
		to string
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (open, error) {
		var o open
		return o, r.Scan(&o.b, &o.to)
	})
	if err != nil {
		return fmt.Errorf("shard: resume: %w", err)
	}
	for _, o := range ms {
		if err := db.Move(ctx, o.b, o.to); err != nil {
			return err
		}
	}
	return nil
}

// MoveStatus is one stored move, as Moves reports it.
type MoveStatus struct {
	ID       int64
	Bucket   int
	From, To string
	// Phase is the phase the move is in (or "done", "aborted").
	Phase string
	// Version is the map version the flip made (0 before the flip).
	Version int64
	// RowsCopied and Changes count the rows the copy phase copied and the
	// logged changes the catch-ups applied.
	RowsCopied, Changes int64
	Created, Updated    time.Time
	// Fenced is how long writes to the bucket waited (fence to release);
	// for a move still fenced, so far.
	Fenced   time.Duration
	Finished bool
}

// Moves returns the stored moves, unfinished first, then the latest
// finished ones, at most limit in all (0: 100).
func (db *DB) Moves(ctx context.Context, limit int) ([]MoveStatus, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.cfg.Map.Query(ctx, `SELECT id, bucket, source, target, phase, coalesce(version, 0), rows_copied, changes, created_at, updated_at,
		coalesce(extract(epoch FROM coalesce(released_at, CASE WHEN fenced_at IS NOT NULL AND finished_at IS NULL THEN now() END) - fenced_at), 0)::float8,
		finished_at IS NOT NULL
		FROM herd_shard_moves ORDER BY finished_at IS NOT NULL, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("shard: moves: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MoveStatus, error) {
		var m MoveStatus
		var fenced float64
		err := r.Scan(&m.ID, &m.Bucket, &m.From, &m.To, &m.Phase, &m.Version, &m.RowsCopied, &m.Changes, &m.Created, &m.Updated, &fenced, &m.Finished)
		m.Fenced = time.Duration(fenced * float64(time.Second))
		return m, err
	})
}

// Abort undoes the unfinished move of bucket before its commit point:
// the source owns the bucket again (unfenced, no longer logging), and the
// target's copy and the log are deleted. A move past its flip cannot be
// undone (the target has taken writes): Abort then fails and Resume
// finishes it; moving the bucket back is a new move.
func (db *DB) Abort(ctx context.Context, bucket int) error {
	lock, err := db.cfg.Map.Begin(ctx)
	if err != nil {
		return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
	}
	defer lock.Rollback(context.WithoutCancel(ctx))
	var got bool
	if err := lock.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, lockClass+1, bucket).Scan(&got); err != nil {
		return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
	}
	if !got {
		return fmt.Errorf("%w (bucket %d)", ErrMoveRunning, bucket)
	}
	mv := &move{db: db, bucket: bucket, cols: map[string]string{}}
	err = db.cfg.Map.QueryRow(ctx, `SELECT id, source, target, phase FROM herd_shard_moves WHERE bucket = $1 AND finished_at IS NULL`, bucket).
		Scan(&mv.id, &mv.from, &mv.to, &mv.phase)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("shard: abort bucket %d: no unfinished move", bucket)
	}
	if err != nil {
		return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
	}
	switch mv.phase {
	case PhaseStart, PhaseCopy, PhaseCatchUp, PhaseFence, PhaseFinal, PhaseOwn:
	case PhaseFlip:
		// Stored before the flip's transaction: it may have committed.
		var owner string
		if err := db.cfg.Map.QueryRow(ctx, `SELECT shard FROM herd_shard_buckets WHERE bucket = $1`, bucket).Scan(&owner); err != nil {
			return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
		}
		if owner != mv.from {
			return fmt.Errorf("shard: abort bucket %d: the map already has it on %s, past the flip; Resume finishes the move", bucket, owner)
		}
	default:
		return fmt.Errorf("shard: abort bucket %d: the move is in phase %s, past its flip; Resume finishes it", bucket, mv.phase)
	}
	mv.src, mv.dst = db.cfg.Shards[mv.from], db.cfg.Shards[mv.to]
	if mv.src == nil || mv.dst == nil {
		return fmt.Errorf("shard: abort bucket %d: shards %s and %s must be in Config.Shards", bucket, mv.from, mv.to)
	}
	// Each step is idempotent: an Abort that stopped half-way is taken up
	// by Abort again (a Resume of it fails at its next check instead).
	if _, err := mv.dst.Exec(ctx, `UPDATE herd_shard_local SET state = 'moved' WHERE bucket = $1 AND state IN ('incoming', 'owned')`, bucket); err != nil {
		return fmt.Errorf("shard: abort bucket %d: target %s: %w", bucket, mv.to, err)
	}
	if err := mv.setSource(ctx, "owned", []string{"owned", "copying", "fenced"}, 0); err != nil {
		return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
	}
	for _, t := range db.tables {
		if _, err := mv.copyInto(ctx, t, fmt.Sprintf(`DELETE FROM %s WHERE %s = %d`, t.ident(), pgx.Identifier{t.bucketCol()}.Sanitize(), bucket), nil, ""); err != nil {
			return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
		}
	}
	if _, err := mv.src.Exec(ctx, `DELETE FROM herd_shard_changes WHERE bucket = $1`, bucket); err != nil {
		return fmt.Errorf("shard: abort bucket %d: source %s: %w", bucket, mv.from, err)
	}
	if err := mv.persist(ctx, "aborted"); err != nil {
		return fmt.Errorf("shard: abort bucket %d: %w", bucket, err)
	}
	return nil
}

// Rebalance runs moves (from Plan) one after another, stopping at the
// first error; a stopped Rebalance is finished by Resume and running
// Plan and Rebalance again.
func (db *DB) Rebalance(ctx context.Context, moves []Move) error {
	for _, mv := range moves {
		if err := db.Move(ctx, mv.Bucket, mv.To); err != nil {
			return err
		}
	}
	return nil
}

func (mv *move) run(ctx context.Context) error {
	for mv.phase != PhaseDone {
		if h := mv.db.hook; h != nil {
			if err := h(mv.bucket, mv.phase); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := mv.step(ctx)
		if err != nil {
			return err
		}
		if err := mv.persist(ctx, next); err != nil {
			return err
		}
	}
	_, err := mv.db.Refresh(ctx)
	return err
}

func (mv *move) persist(ctx context.Context, next string) error {
	// fenced_at and released_at bound the time writes to the bucket wait.
	if _, err := mv.db.cfg.Map.Exec(ctx, `UPDATE herd_shard_moves SET phase = $2, updated_at = now(),
		fenced_at = CASE WHEN $2 = 'final' THEN now() ELSE fenced_at END,
		released_at = CASE WHEN $2 = 'cleanup' THEN now() ELSE released_at END,
		finished_at = CASE WHEN $2 IN ('done', 'aborted') THEN now() END WHERE id = $1`,
		mv.id, next); err != nil {
		return fmt.Errorf("store phase %s: %w", next, err)
	}
	mv.phase = next
	return nil
}

func (mv *move) step(ctx context.Context) (string, error) {
	b := mv.bucket
	switch mv.phase {
	case PhaseStart:
		tag, err := mv.dst.Exec(ctx, `INSERT INTO herd_shard_local (bucket, state) VALUES ($1, 'incoming')
			ON CONFLICT (bucket) DO UPDATE SET state = 'incoming' WHERE herd_shard_local.state IN ('moved', 'incoming')`, b)
		if err != nil {
			return "", fmt.Errorf("target %s: %w", mv.to, err)
		}
		if tag.RowsAffected() != 1 {
			return "", fmt.Errorf("target %s already holds the bucket", mv.to)
		}
		if err := mv.setSource(ctx, "copying", []string{"owned", "copying"}, 0); err != nil {
			return "", err
		}
		return PhaseCopy, nil
	case PhaseCopy:
		// Clear the log before the copy's snapshot: every change after it
		// is logged again, every change before it is in the copy.
		if _, err := mv.src.Exec(ctx, `DELETE FROM herd_shard_changes WHERE bucket = $1`, b); err != nil {
			return "", fmt.Errorf("source %s: %w", mv.from, err)
		}
		var total int64
		for _, t := range mv.db.tables {
			cols, err := mv.columns(ctx, t)
			if err != nil {
				return "", err
			}
			n, err := mv.copyInto(ctx, t,
				fmt.Sprintf(`DELETE FROM %s WHERE %s = %d`, t.ident(), pgx.Identifier{t.bucketCol()}.Sanitize(), b), nil,
				fmt.Sprintf(`SELECT %s FROM %s WHERE %s = %d`, cols, t.ident(), pgx.Identifier{t.bucketCol()}.Sanitize(), b))
			if err != nil {
				return "", err
			}
			total += n
		}
		if _, err := mv.db.cfg.Map.Exec(ctx, `UPDATE herd_shard_moves SET rows_copied = $2 WHERE id = $1`, mv.id, total); err != nil {
			return "", err
		}
		return PhaseCatchUp, nil
	case PhaseCatchUp:
		for range maxRounds {
			n, err := mv.applyRound(ctx)
			if err != nil {
				return "", err
			}
			if n <= fenceBelow {
				break
			}
		}
		return PhaseFence, nil
	case PhaseFence:
		// Takes the bucket's lock exclusive: waits for every call that
		// entered it, and new calls wait for this.
		if err := mv.setSource(ctx, "fenced", []string{"copying", "fenced"}, 0); err != nil {
			return "", err
		}
		return PhaseFinal, nil
	case PhaseFinal:
		for {
			n, err := mv.applyRound(ctx)
			if err != nil {
				return "", err
			}
			if n == 0 {
				break
			}
		}
		// The bucket is frozen: source and target must now hold the same
		// rows. Compare counts and a digest of the rows in key order.
		for _, t := range mv.db.tables {
			cols, err := mv.columns(ctx, t)
			if err != nil {
				return "", err
			}
			q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(ROW(%s)::text, E'\n' ORDER BY %s)), '') FROM %s WHERE %s = $1`,
				cols, t.keyList(""), t.ident(), pgx.Identifier{t.bucketCol()}.Sanitize())
			var ns, nd int64
			var ds, dd string
			if err := mv.src.QueryRow(ctx, q, b).Scan(&ns, &ds); err != nil {
				return "", fmt.Errorf("source %s: check %s: %w", mv.from, t.Name, err)
			}
			if err := mv.dst.QueryRow(ctx, q, b).Scan(&nd, &dd); err != nil {
				return "", fmt.Errorf("target %s: check %s: %w", mv.to, t.Name, err)
			}
			if ns != nd || ds != dd {
				return "", fmt.Errorf("table %s: %d rows (digest %s) on the source, %d (digest %s) on the target after the final catch-up", t.Name, ns, ds, nd, dd)
			}
		}
		return PhaseOwn, nil
	case PhaseOwn:
		tag, err := mv.dst.Exec(ctx, `UPDATE herd_shard_local SET state = 'owned' WHERE bucket = $1 AND state IN ('incoming', 'owned')`, b)
		if err != nil {
			return "", fmt.Errorf("target %s: %w", mv.to, err)
		}
		if tag.RowsAffected() != 1 {
			return "", fmt.Errorf("target %s: bucket is not incoming", mv.to)
		}
		return PhaseFlip, nil
	case PhaseFlip:
		return PhaseRelease, mv.flip(ctx)
	case PhaseRelease:
		if err := mv.setSource(ctx, "moved", []string{"fenced", "moved"}, mv.version); err != nil {
			return "", err
		}
		return PhaseCleanup, nil
	case PhaseCleanup:
		tx, err := mv.src.Begin(ctx)
		if err != nil {
			return "", fmt.Errorf("source %s: %w", mv.from, err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT set_config('herd_shard.bypass', 'on', true)`); err != nil {
			return "", err
		}
		for _, t := range mv.db.tables {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, t.ident(), pgx.Identifier{t.bucketCol()}.Sanitize()), b); err != nil {
				return "", fmt.Errorf("source %s: clean %s: %w", mv.from, t.Name, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM herd_shard_changes WHERE bucket = $1`, b); err != nil {
			return "", err
		}
		if err := tx.Commit(ctx); err != nil {
			return "", fmt.Errorf("source %s: %w", mv.from, err)
		}
		return PhaseDone, nil
	}
	return "", fmt.Errorf("unknown phase %q", mv.phase)
}

// setSource changes the bucket's state on the source under its exclusive
// lock, from one of states.
func (mv *move) setSource(ctx context.Context, state string, from []string, version int64) error {
	tx, err := mv.src.Begin(ctx)
	if err != nil {
		return fmt.Errorf("source %s: %w", mv.from, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClass, mv.bucket); err != nil {
		return fmt.Errorf("source %s: lock bucket: %w", mv.from, err)
	}
	tag, err := tx.Exec(ctx, `UPDATE herd_shard_local SET state = $2, version = CASE WHEN $3 > 0 THEN $3 ELSE version END WHERE bucket = $1 AND state = ANY($4)`,
		mv.bucket, state, version, from)
	if err != nil {
		return fmt.Errorf("source %s: %w", mv.from, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("source %s: bucket is not in state %s", mv.from, strings.Join(from, " or "))
	}
	return tx.Commit(ctx)
}

// flip commits the bucket to the target in the map, with the move's
// phase, in one transaction: the commit point of the move.
func (mv *move) flip(ctx context.Context) error {
	tx, err := mv.db.cfg.Map.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var owner string
	var v int64
	if err := tx.QueryRow(ctx, `SELECT shard, version FROM herd_shard_buckets WHERE bucket = $1 FOR UPDATE`, mv.bucket).Scan(&owner, &v); err != nil {
		return err
	}
	switch owner {
	case mv.to: // flipped before a crash
	case mv.from:
		if err := tx.QueryRow(ctx, `UPDATE herd_shard_map SET version = version + 1 RETURNING version`).Scan(&v); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE herd_shard_buckets SET shard = $2, version = $3 WHERE bucket = $1`, mv.bucket, mv.to, v); err != nil {
			return err
		}
	default:
		return fmt.Errorf("the map has the bucket on %s", owner)
	}
	if _, err := tx.Exec(ctx, `UPDATE herd_shard_moves SET version = $2 WHERE id = $1`, mv.id, v); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	mv.version = v
	return nil
}

func (mv *move) columns(ctx context.Context, t Table) (string, error) {
	if c, ok := mv.cols[t.Name]; ok {
		return c, nil
	}
	var names []string
	err := mv.src.QueryRow(ctx, `SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`, t.ident()).Scan(&names)
	if err != nil {
		return "", fmt.Errorf("source %s: columns of %s: %w", mv.from, t.Name, err)
	}
	for i, n := range names {
		names[i] = pgx.Identifier{n}.Sanitize()
	}
	c := strings.Join(names, ", ")
	mv.cols[t.Name] = c
	return c, nil
}

// copyInto runs, in one transaction on the target with the trigger
// bypassed, del (with args) and then a COPY of the source's rows selected
// by sel; it returns the rows copied.
func (mv *move) copyInto(ctx context.Context, t Table, del string, delArgs []any, sel string) (int64, error) {
	cols, err := mv.columns(ctx, t)
	if err != nil {
		return 0, err
	}
	dtx, err := mv.dst.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("target %s: %w", mv.to, err)
	}
	defer dtx.Rollback(ctx)
	if _, err := dtx.Exec(ctx, `SELECT set_config('herd_shard.bypass', 'on', true)`); err != nil {
		return 0, fmt.Errorf("target %s: %w", mv.to, err)
	}
	if _, err := dtx.Exec(ctx, del, delArgs...); err != nil {
		return 0, fmt.Errorf("target %s: clear %s: %w", mv.to, t.Name, err)
	}
	if sel == "" {
		return 0, dtx.Commit(ctx)
	}
	stx, err := mv.src.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("source %s: %w", mv.from, err)
	}
	defer stx.Rollback(ctx)
	pr, pw := io.Pipe()
	srcErr := make(chan error, 1)
	go func() {
		_, err := stx.Conn().PgConn().CopyTo(ctx, pw, `COPY (`+sel+`) TO STDOUT (FORMAT binary)`)
		pw.CloseWithError(err)
		srcErr <- err
	}()
	tag, err := dtx.Conn().PgConn().CopyFrom(ctx, pr, fmt.Sprintf(`COPY %s (%s) FROM STDIN (FORMAT binary)`, t.ident(), cols))
	pr.CloseWithError(errors.New("shard: copy stopped"))
	serr := <-srcErr
	if serr != nil {
		return 0, fmt.Errorf("source %s: copy %s out: %w", mv.from, t.Name, serr)
	}
	if err != nil {
		return 0, fmt.Errorf("target %s: copy %s in: %w", mv.to, t.Name, err)
	}
	if err := dtx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("target %s: %w", mv.to, err)
	}
	return tag.RowsAffected(), nil
}

// applyRound applies up to roundMax logged changes of the bucket: for
// each changed key, the target's row is replaced by the source's current
// one (or deleted, if the source has none), then the applied log entries
// are deleted. Entries are deleted by sequence number, not by range, so
// an entry whose transaction commits late (a lower seq after a higher
// one) is applied in a later round, never skipped.
func (mv *move) applyRound(ctx context.Context) (int, error) {
	rows, err := mv.src.Query(ctx, `SELECT seq, tbl, pk::text FROM herd_shard_changes WHERE bucket = $1 ORDER BY seq LIMIT `+strconv.Itoa(roundMax), mv.bucket)
	if err != nil {
		return 0, fmt.Errorf("source %s: read log: %w", mv.from, err)
	}
	type entry struct {
		seq int64
		tbl string
		pk  string
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (entry, error) {
		var e entry
		return e, r.Scan(&e.seq, &e.tbl, &e.pk)
	})
	if err != nil {
		return 0, fmt.Errorf("source %s: read log: %w", mv.from, err)
	}
	if len(es) == 0 {
		return 0, nil
	}
	byTable := map[string][]entry{}
	for _, e := range es {
		byTable[e.tbl] = append(byTable[e.tbl], e)
	}
	for _, t := range mv.db.tables {
		tes := byTable[t.Name]
		delete(byTable, t.Name)
		if len(tes) == 0 {
			continue
		}
		seqs := make([]string, len(tes))
		pks := make([]string, len(tes))
		for i, e := range tes {
			seqs[i] = strconv.FormatInt(e.seq, 10)
			pks[i] = e.pk
		}
		keys := t.keyList("")
		del := fmt.Sprintf(`DELETE FROM %s WHERE (%s) IN (SELECT %s FROM jsonb_populate_recordset(NULL::%s, $1::jsonb) r)`,
			t.ident(), keys, t.keyList("r."), t.ident())
		cols, err := mv.columns(ctx, t)
		if err != nil {
			return 0, err
		}
		sel := fmt.Sprintf(`SELECT %s FROM %s WHERE %s = %d AND (%s) IN (SELECT %s FROM herd_shard_changes c, jsonb_populate_record(NULL::%s, c.pk) r WHERE c.seq = ANY('{%s}'::bigint[]))`,
			cols, t.ident(), pgx.Identifier{t.bucketCol()}.Sanitize(), mv.bucket, keys, t.keyList("r."), t.ident(), strings.Join(seqs, ","))
		if _, err := mv.copyInto(ctx, t, del, []any{"[" + strings.Join(pks, ",") + "]"}, sel); err != nil {
			return 0, err
		}
	}
	for tbl := range byTable {
		return 0, fmt.Errorf("source %s: the log has changes to table %s, which Config.Tables lacks", mv.from, tbl)
	}
	seqs := make([]int64, len(es))
	for i, e := range es {
		seqs[i] = e.seq
	}
	if _, err := mv.src.Exec(ctx, `DELETE FROM herd_shard_changes WHERE seq = ANY($1)`, seqs); err != nil {
		return 0, fmt.Errorf("source %s: trim log: %w", mv.from, err)
	}
	if _, err := mv.db.cfg.Map.Exec(ctx, `UPDATE herd_shard_moves SET changes = changes + $2, updated_at = now() WHERE id = $1`, mv.id, len(es)); err != nil {
		return 0, err
	}
	return len(es), nil
}
