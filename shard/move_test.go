package shard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load is a write load: writers each own a range of users, insert orders
// and notes, update orders (version + 1) and delete notes, and publish
// what they committed; readers check that a committed write is always
// read back (never an older version, never missing), and that a count
// over all shards never includes a row twice.
type load struct {
	db        *DB
	writers   int
	users     int          // per writer
	orders    []sync.Map   // per writer: id → *atomic.Int64 committed version
	notes     []sync.Map   // per writer: "user/n" → present bool
	started   atomic.Int64 // inserts begun
	done      atomic.Int64 // inserts committed
	ops       atomic.Int64
	reads     atomic.Int64
	scans     atomic.Int64
	errs      chan error
	userCache sync.Map // order id → user
	stop      chan struct{}
	wg        sync.WaitGroup
}

func newLoad(db *DB, writers, users int) *load {
	return &load{db: db, writers: writers, users: users, orders: make([]sync.Map, writers), notes: make([]sync.Map, writers),
		errs: make(chan error, 100), stop: make(chan struct{})}
}

func (l *load) fail(err error) {
	select {
	case l.errs <- err:
	default:
	}
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) user(w, i int) int64 { return int64(w*100000 + i) }

// start runs the writers and readers until finish.
func (l *load) start(ctx context.Context) {
	for w := range l.writers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			nextID := int64(w) * 1_000_000_000
			var ids []int64
			nextNote := map[int64]int{}
			for !l.stopped() {
				u := l.user(w, r.IntN(l.users))
				k := strconv.FormatInt(u, 10)
				var err error
				switch op := r.IntN(10); {
				case op < 4 || len(ids) == 0: // new order
					nextID++
					l.started.Add(1)
					_, err = l.db.Exec(ctx, k, insertOrder, nextID, u, l.db.Bucket(k), fmt.Sprintf("%d.%02d", r.IntN(500), r.IntN(100)))
					if err == nil {
						l.done.Add(1)
						ids = append(ids, nextID)
						v := new(atomic.Int64)
						l.orders[w].Store(nextID, v)
					}
				case op < 8: // update an order of this writer
					id := ids[r.IntN(len(ids))]
					v, _ := l.orders[w].Load(id)
					var user int64
					user, err = l.userOf(ctx, w, id)
					if err != nil {
						break
					}
					k = strconv.FormatInt(user, 10)
					var tag interface{ RowsAffected() int64 }
					tag, err = l.db.Exec(ctx, k, `UPDATE orders SET version = version + 1, total = total + 1 WHERE id = $1`, id)
					if err == nil {
						if tag.RowsAffected() != 1 {
							err = fmt.Errorf("update of order %d changed %d rows", id, tag.RowsAffected())
							break
						}
						v.(*atomic.Int64).Add(1)
					}
				case op < 9: // a note
					n := nextNote[u]
					nextNote[u]++
					_, err = l.db.Exec(ctx, k, `INSERT INTO notes (user_id, n, shard_bucket, body) VALUES ($1, $2, $3, 'x')`, u, n, l.db.Bucket(k))
					if err == nil {
						l.notes[w].Store(fmt.Sprintf("%d/%d", u, n), true)
					}
				default: // delete a note
					n := nextNote[u] - 1
					if n < 0 {
						break
					}
					_, err = l.db.Exec(ctx, k, `DELETE FROM notes WHERE user_id = $1 AND n = $2`, u, n)
					if err == nil {
						l.notes[w].Store(fmt.Sprintf("%d/%d", u, n), false)
					}
				}
				if err != nil {
					if l.stopped() {
						return
					}
					l.fail(fmt.Errorf("writer %d: %w", w, err))
					return
				}
				l.ops.Add(1)
			}
		}()
	}
	// A reader checks committed versions.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		r := rand.New(rand.NewPCG(99, 1))
		for !l.stopped() {
			w := r.IntN(l.writers)
			var id int64
			var want int64 = -1
			l.orders[w].Range(func(k, v any) bool {
				id, want = k.(int64), v.(*atomic.Int64).Load()
				return r.IntN(8) != 0
			})
			if want < 0 {
				continue
			}
			user, err := l.userOf(ctx, w, id)
			if err == nil {
				var rows [][]any
				rows, err = l.db.QueryRows(ctx, strconv.FormatInt(user, 10), `SELECT version FROM orders WHERE id = $1`, id)
				switch {
				case err != nil:
				case len(rows) != 1:
					err = fmt.Errorf("order %d: %d rows read; want 1", id, len(rows))
				case int64(rows[0][0].(int32)) < want:
					err = fmt.Errorf("order %d: version %d read; committed %d", id, rows[0][0], want)
				}
			}
			if err != nil {
				if !l.stopped() {
					l.fail(fmt.Errorf("reader: %w", err))
				}
				return
			}
			l.reads.Add(1)
		}
	}()
	// A scanner counts over all shards.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for !l.stopped() {
			lo := l.done.Load()
			res, err := l.db.Aggregate(ctx, Query{SQL: `SELECT count(*) FROM orders WHERE shard_bucket = ANY($1)`}, Count)
			hi := l.started.Load()
			if err == nil {
				n := res.Rows[0][0].(int64)
				if n < lo || n > hi {
					err = fmt.Errorf("count over all shards %d; want %d..%d (a row missed or counted twice)", n, lo, hi)
				}
			}
			if err != nil {
				if !l.stopped() {
					l.fail(fmt.Errorf("scanner: %w", err))
				}
				return
			}
			l.scans.Add(1)
		}
	}()
}

// userOf: orders are made by the writer for its own users; the id tells
// nothing, so the user is read back once and remembered.
func (l *load) userOf(ctx context.Context, w int, id int64) (int64, error) {
	if u, ok := l.userCache.Load(id); ok {
		return u.(int64), nil
	}
	res, err := l.db.QueryAll(ctx, Query{SQL: `SELECT user_id FROM orders WHERE shard_bucket = ANY($1) AND id = $2`, Args: []any{id}})
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 {
		return 0, fmt.Errorf("order %d of writer %d: %d rows over all shards; want 1", id, w, len(res.Rows))
	}
	u := res.Rows[0][0].(int64)
	l.userCache.Store(id, u)
	return u, nil
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	select {
	case err := <-l.errs:
		t.Fatal(err)
	default:
	}
}

// verify checks every committed row, through the package and raw: each
// exactly once, on the shard the map names, with its committed version.
func (l *load) verify(ctx context.Context, t *testing.T, c *cluster) {
	t.Helper()
	m, err := l.db.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	where := map[int64]string{} // order id → shard holding it
	versions := map[int64]int64{}
	for _, name := range c.names {
		rows, err := c.pools[name].Query(ctx, `SELECT id, user_id, shard_bucket, version FROM orders`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, user int64
			var b, v int32
			if err := rows.Scan(&id, &user, &b, &v); err != nil {
				t.Fatal(err)
			}
			if prev, dup := where[id]; dup {
				t.Errorf("order %d on %s and %s", id, prev, name)
			}
			where[id], versions[id] = name, int64(v)
			k := strconv.FormatInt(user, 10)
			if int(b) != BucketOf(k, m.Buckets()) || m.Shard(int(b)) != name {
				t.Errorf("order %d (bucket %d) on %s; the map says %s", id, b, name, m.Shard(int(b)))
			}
		}
		rows.Close()
	}
	want := 0
	for w := range l.writers {
		l.orders[w].Range(func(k, v any) bool {
			want++
			id := k.(int64)
			if _, ok := where[id]; !ok {
				t.Errorf("order %d lost", id)
			} else if got, wantV := versions[id], v.(*atomic.Int64).Load(); got != wantV {
				t.Errorf("order %d: version %d; want %d", id, got, wantV)
			}
			return true
		})
	}
	if len(where) != want {
		t.Errorf("%d orders on the shards; %d committed", len(where), want)
	}
	notes := map[string]bool{}
	for _, name := range c.names {
		rows, err := c.pools[name].Query(ctx, `SELECT user_id, n FROM notes`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var u int64
			var n int32
			if err := rows.Scan(&u, &n); err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%d/%d", u, n)
			if notes[key] {
				t.Errorf("note %s twice", key)
			}
			notes[key] = true
		}
		rows.Close()
	}
	for w := range l.writers {
		l.notes[w].Range(func(k, v any) bool {
			if notes[k.(string)] != v.(bool) {
				t.Errorf("note %s present %v; want %v", k, notes[k.(string)], v)
			}
			delete(notes, k.(string))
			return true
		})
	}
	for k := range notes {
		t.Errorf("note %s on a shard, never committed", k)
	}
	for _, name := range c.names {
		var n int
		if err := c.pools[name].QueryRow(ctx, `SELECT count(*) FROM herd_shard_changes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d change-log rows left", name, n)
		}
	}
}

// From 4 shards to 5 while 4 writers, a reader and a counter run: every
// planned bucket moves; no write fails, no read sees an old version or
// misses a row, no count includes a row twice; at the end every row is
// once, on the shard the map names, with its last committed version.
func TestMoveUnderWriteLoad(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 5)
	if _, err := Create(ctx, c.config(4), 64); err != nil {
		t.Fatal(err)
	}
	// The load routes through a DB that knows the fifth shard's connection
	// (the map does not name it yet).
	router, err := Open(ctx, c.config(5))
	if err != nil {
		t.Fatal(err)
	}
	l := newLoad(router, 4, 40)
	l.start(ctx)
	// Let the load build rows before moving.
	for l.done.Load() < 400 {
		select {
		case err := <-l.errs:
			t.Fatal(err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	mover, err := Open(ctx, c.config(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := mover.AddShard(ctx, "s4"); err != nil {
		t.Fatal(err)
	}
	moves, err := Plan(mover.Map(), c.names...)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	opsBefore := l.ops.Load()
	if err := mover.Rebalance(ctx, moves); err != nil {
		l.finish(t)
		t.Fatal(err)
	}
	took := time.Since(start)
	opsDuring := l.ops.Load() - opsBefore
	l.finish(t)
	t.Logf("%d bucket moves in %v (%v each) under %d writes, %d reads, %d counts", len(moves), took.Round(time.Millisecond),
		(took / time.Duration(len(moves))).Round(time.Millisecond), opsDuring, l.reads.Load(), l.scans.Load())
	if opsDuring == 0 || l.reads.Load() == 0 || l.scans.Load() == 0 {
		t.Errorf("the load did nothing during the moves: %d writes, %d reads, %d counts", opsDuring, l.reads.Load(), l.scans.Load())
	}
	if got := mover.Map().Counts()["s4"]; got != 12 {
		t.Errorf("s4 owns %d buckets; want 12", got)
	}
	l.verify(ctx, t, c)
	ms, err := mover.Moves(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var longest, sum time.Duration
	for _, m := range ms {
		sum += m.Fenced
		longest = max(longest, m.Fenced)
	}
	t.Logf("writes to a moving bucket waited (fence to release): longest %v, mean %v", longest.Round(100*time.Microsecond), (sum / time.Duration(len(ms))).Round(100*time.Microsecond))
	var copied, changes int64
	if err := c.mapdb.QueryRow(ctx, `SELECT sum(rows_copied), sum(changes) FROM herd_shard_moves`).Scan(&copied, &changes); err != nil {
		t.Fatal(err)
	}
	t.Logf("rows copied %d, logged changes applied %d", copied, changes)
	if changes == 0 {
		t.Error("no logged change was applied: the load did not write to moving buckets")
	}
}

var errCrash = errors.New("crash (test)")

// A move stopped at each phase (an error from the hook, or its context
// cancelled) leaves every row readable once, writes going on (or, while
// fenced, waiting), and a new process's Resume finishes it.
func TestMoveResumesAfterStopInEveryPhase(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	db, err := Create(ctx, c.config(2), 32)
	if err != nil {
		t.Fatal(err)
	}
	// Users by bucket, for buckets on s0.
	users := map[int][]int64{}
	for u := int64(1); u < 2000 && len(users) < 16; u++ {
		b := db.Bucket(strconv.FormatInt(u, 10))
		if db.Map().Shard(b) == "s0" && len(users[b]) < 3 {
			users[b] = append(users[b], u)
		}
	}
	var buckets []int
	for b, us := range users {
		if len(us) == 3 {
			buckets = append(buckets, b)
		}
	}
	nextID := int64(0)
	total := 0
	for _, b := range buckets {
		for _, u := range users[b] {
			for range 5 {
				nextID++
				addOrder(ctx, t, db, nextID, u, "2.50")
				total++
			}
		}
	}
	fenced := map[string]bool{PhaseFinal: true, PhaseOwn: true, PhaseFlip: true}
	for _, phase := range phases[:len(phases)-1] {
		for _, how := range []string{"error", "cancel"} {
			if how == "cancel" && phase != PhaseCopy && phase != PhaseFinal {
				continue
			}
			t.Run(phase+"/"+how, func(t *testing.T) {
				b := buckets[0]
				buckets = buckets[1:]
				crashing, err := Open(ctx, c.config(2))
				if err != nil {
					t.Fatal(err)
				}
				mctx, cancel := context.WithCancel(ctx)
				defer cancel()
				crashing.hook = func(_ int, p string) error {
					if p != phase {
						return nil
					}
					if how == "cancel" {
						cancel()
						return nil
					}
					return errCrash
				}
				err = crashing.Move(mctx, b, "s1")
				if how == "error" && !errors.Is(err, errCrash) || how == "cancel" && !errors.Is(err, context.Canceled) {
					t.Fatalf("Move stopped with %v; want the %s", err, how)
				}
				// While stopped: every row of the bucket is read, once, through
				// the package, and counted once over all shards.
				short, err := Open(ctx, c.config(2))
				if err != nil {
					t.Fatal(err)
				}
				short.cfg.FenceWait = 100 * time.Millisecond
				for _, u := range users[b] {
					rows, err := short.QueryRows(ctx, strconv.FormatInt(u, 10), `SELECT id FROM orders WHERE user_id = $1`, u)
					if err != nil || len(rows) != 5 {
						t.Errorf("user %d while stopped: %d rows, %v; want 5", u, len(rows), err)
					}
				}
				res, err := short.Aggregate(ctx, Query{SQL: `SELECT count(*) FROM orders WHERE shard_bucket = ANY($1)`}, Count)
				if err != nil || res.Rows[0][0].(int64) != int64(total) {
					t.Errorf("count while stopped = %v, %v; want %d", res, err, total)
				}
				// A write: waits out FenceWait and fails while fenced, else lands.
				u := users[b][0]
				k := strconv.FormatInt(u, 10)
				nextID++
				_, err = short.Exec(ctx, k, insertOrder, nextID, u, short.Bucket(k), "9.99")
				if fenced[phase] {
					if !errors.Is(err, ErrFenced) {
						t.Errorf("write while fenced: %v; want ErrFenced", err)
					}
				} else if err != nil {
					t.Errorf("write while stopped: %v", err)
				} else {
					total++
				}
				// A new process resumes.
				resumer, err := Open(ctx, c.config(2))
				if err != nil {
					t.Fatal(err)
				}
				if err := resumer.Resume(ctx); err != nil {
					t.Fatalf("Resume: %v", err)
				}
				if got := resumer.Map().Shard(b); got != "s1" {
					t.Errorf("after Resume bucket %d on %s; want s1", b, got)
				}
				want := int64(15)
				if !fenced[phase] {
					want = 16
				}
				for name, wantN := range map[string]int64{"s0": 0, "s1": want} {
					var n int64
					if err := c.pools[name].QueryRow(ctx, `SELECT count(*) FROM orders WHERE shard_bucket = $1`, b).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != wantN {
						t.Errorf("after Resume: %d rows of bucket %d on %s; want %d", n, b, name, wantN)
					}
				}
				var open int
				if err := c.mapdb.QueryRow(ctx, `SELECT count(*) FROM herd_shard_moves WHERE finished_at IS NULL`).Scan(&open); err != nil || open != 0 {
					t.Errorf("unfinished moves after Resume: %d, %v", open, err)
				}
			})
		}
	}
	res, err := db.Aggregate(ctx, Query{SQL: `SELECT count(*) FROM orders WHERE shard_bucket = ANY($1)`}, Count)
	if err != nil || res.Rows[0][0].(int64) != int64(total) {
		t.Errorf("count at the end = %v, %v; want %d", res, err, total)
	}
}

// Under the write, read and count load, a move is stopped in each phase
// in turn and resumed by another process at once: writes to a bucket
// stopped while fenced wait and then land; nothing is lost or doubled.
func TestMoveStoppedInEveryPhaseUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	db, err := Create(ctx, c.config(2), 32)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoad(db, 3, 30)
	l.start(ctx)
	for l.done.Load() < 200 {
		select {
		case err := <-l.errs:
			t.Fatal(err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	for i, phase := range phases[:len(phases)-1] {
		b := i * 3 // a bucket not moved before
		to := map[string]string{"s0": "s1", "s1": "s0"}[db.Map().Shard(b)]
		crashing, err := Open(ctx, c.config(2))
		if err != nil {
			t.Fatal(err)
		}
		crashing.hook = func(_ int, p string) error {
			if p == phase {
				return errCrash
			}
			return nil
		}
		if err := crashing.Move(ctx, b, to); !errors.Is(err, errCrash) {
			l.finish(t)
			t.Fatalf("%s: Move stopped with %v; want the crash", phase, err)
		}
		resumer, err := Open(ctx, c.config(2))
		if err != nil {
			t.Fatal(err)
		}
		if err := resumer.Resume(ctx); err != nil {
			l.finish(t)
			t.Fatalf("%s: Resume: %v", phase, err)
		}
		select {
		case err := <-l.errs:
			t.Fatalf("after a stop in %s: %v", phase, err)
		default:
		}
	}
	l.finish(t)
	t.Logf("%d writes, %d reads, %d counts", l.ops.Load(), l.reads.Load(), l.scans.Load())
	l.verify(ctx, t, c)
}

// A write whose log entry has a lower sequence number than one already
// applied (its transaction committed later) is applied all the same.
func TestMoveAppliesLateCommits(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	db, err := Create(ctx, c.config(2), 16)
	if err != nil {
		t.Fatal(err)
	}
	// Two users in one bucket.
	var us []int64
	b := -1
	for u := int64(1); len(us) < 2; u++ {
		bu := db.Bucket(strconv.FormatInt(u, 10))
		if b < 0 {
			b = bu
		}
		if bu == b {
			us = append(us, u)
		}
	}
	from := db.Map().Shard(b)
	to := map[string]string{"s0": "s1", "s1": "s0"}[from]
	var held interface {
		Commit(context.Context) error
		Rollback(context.Context) error
	}
	db.hook = func(_ int, p string) error {
		switch p {
		case PhaseCatchUp:
			// A: entered and inserted, not committed: it holds a lower seq.
			tx, err := c.pools[from].Begin(ctx)
			if err != nil {
				return err
			}
			held = tx
			if _, err := tx.Exec(ctx, `SELECT herd_shard_enter($1, true)`, b); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, insertOrder, 1, us[0], b, "1"); err != nil {
				return err
			}
			// B: committed, a higher seq, applied by the catch-up round.
			k := strconv.FormatInt(us[1], 10)
			if _, err := db.Exec(ctx, k, insertOrder, 2, us[1], b, "2"); err != nil {
				return err
			}
		case PhaseFence:
			// A commits after B was applied (the fence would wait for it).
			return held.Commit(ctx)
		}
		return nil
	}
	if err := db.Move(ctx, b, to); err != nil {
		if held != nil {
			held.Rollback(ctx)
		}
		t.Fatal(err)
	}
	var n int
	if err := c.pools[to].QueryRow(ctx, `SELECT count(*) FROM orders WHERE id IN (1, 2)`).Scan(&n); err != nil || n != 2 {
		t.Errorf("on the target: %d of orders 1 and 2, %v; want both", n, err)
	}
}

// A move stopped before its flip can be aborted: the source owns the
// bucket again and takes writes, the target's copy is gone, and the same
// move can run again later. Past the flip, Abort refuses.
func TestAbortBeforeTheFlip(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	db, err := Create(ctx, c.config(2), 16)
	if err != nil {
		t.Fatal(err)
	}
	orders := fill(ctx, t, db, map[string]int{"s0": 40, "s1": 10})
	byBucket := map[int]int{}
	for _, o := range orders {
		byBucket[db.Bucket(strconv.FormatInt(o.user, 10))]++
	}
	s0 := db.Map().BucketsOf("s0")
	nextID := int64(len(orders))
	total := int64(len(orders))
	for i, phase := range []string{PhaseStart, PhaseCopy, PhaseCatchUp, PhaseFence, PhaseFinal, PhaseOwn, PhaseFlip, PhaseRelease} {
		t.Run(phase, func(t *testing.T) {
			b := s0[i]
			db.hook = func(_ int, p string) error {
				if p == phase {
					return errCrash
				}
				return nil
			}
			if err := db.Move(ctx, b, "s1"); !errors.Is(err, errCrash) {
				t.Fatalf("Move: %v; want the crash", err)
			}
			db.hook = nil
			err := db.Abort(ctx, b)
			if phase == PhaseRelease {
				if err == nil {
					t.Fatal("Abort after the flip succeeded; want an error")
				}
				if err := db.Resume(ctx); err != nil {
					t.Fatal(err)
				}
				if got := db.Map().Shard(b); got != "s1" {
					t.Errorf("after Resume bucket %d on %s; want s1", b, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if got := db.Map().Shard(b); got != "s0" {
				t.Errorf("after Abort bucket %d on %s; want s0", b, got)
			}
			var onTarget, logged int
			if err := c.pools["s1"].QueryRow(ctx, `SELECT count(*) FROM orders WHERE shard_bucket = $1`, b).Scan(&onTarget); err != nil {
				t.Fatal(err)
			}
			// A write lands on the source, unfenced and not logged.
			var u int64
			for x := int64(1); ; x++ {
				if db.Bucket(strconv.FormatInt(x, 10)) == b {
					u = x
					break
				}
			}
			nextID++
			addOrder(ctx, t, db, nextID, u, "3.00")
			total++
			if err := c.pools["s0"].QueryRow(ctx, `SELECT count(*) FROM herd_shard_changes`).Scan(&logged); err != nil {
				t.Fatal(err)
			}
			if onTarget != 0 || logged != 0 {
				t.Errorf("after Abort: %d rows of the bucket on the target, %d log entries; want 0, 0", onTarget, logged)
			}
			res, err := db.Aggregate(ctx, Query{SQL: `SELECT count(*) FROM orders WHERE shard_bucket = ANY($1)`}, Count)
			if err != nil || res.Rows[0][0].(int64) != total {
				t.Errorf("count after Abort = %v, %v; want %d", res, err, total)
			}
		})
	}
	// The aborted buckets move for real now.
	for _, b := range s0[:7] {
		if err := db.Move(ctx, b, "s1"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.Aggregate(ctx, Query{SQL: `SELECT count(*) FROM orders WHERE shard_bucket = ANY($1)`}, Count)
	if err != nil || res.Rows[0][0].(int64) != total {
		t.Errorf("count at the end = %v, %v; want %d", res, err, total)
	}
	ms, err := db.Moves(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	aborted := 0
	for _, m := range ms {
		if m.Phase == "aborted" {
			aborted++
		}
		if !m.Finished {
			t.Errorf("move %+v unfinished", m)
		}
	}
	if aborted != 7 {
		t.Errorf("%d moves aborted; want 7", aborted)
	}
}
