package shard

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Query is a statement run on every shard by QueryAll and Aggregate.
type Query struct {
	// SQL is run on each shard with $1 bound to the shard's buckets under
	// the map the call uses (an integer[]); it must filter on it, as in
	// `WHERE shard_bucket = ANY($1)`, so that rows of a bucket being copied
	// to a shard, or not yet cleaned from one, are not counted twice. The
	// caller's Args are $2, $3, … Required.
	SQL  string
	Args []any
	// OrderBy, if set, orders the result: each shard sorts its rows so
	// (the package wraps SQL in an ORDER BY by column position), and the
	// shards' rows are merged k-way. NULLs sort as PostgreSQL sorts them:
	// last ascending, first descending.
	OrderBy []Order
	// Limit, if positive, keeps the first Limit rows of the result. In
	// QueryAll it is pushed down (each shard returns at most Limit rows);
	// Aggregate applies it after combining.
	Limit int
	// ShardTimeout, if positive, bounds each shard's part (the context's
	// deadline bounds them all).
	ShardTimeout time.Duration
	// AllowPartial makes a failed shard not fail the call: the rows of the
	// others are returned together with a *PartialError naming every
	// failed shard. By default the first failure cancels the rest and the
	// call returns no rows and a *PartialError.
	AllowPartial bool
}

// Order is one sort key: a result column (0-based) and its direction.
type Order struct {
	Column int
	Desc   bool
}

// Result is the merged answer of QueryAll or Aggregate.
type Result struct {
	Columns []string
	Rows    [][]any
	// Version is the map version the rows were read under.
	Version int64
	// ShardRows is how many rows each answering shard returned.
	ShardRows map[string]int
}

// PartialError names the shards whose part of a query failed, with their
// errors. It is returned whenever any shard failed; with
// Query.AllowPartial the Result beside it holds the other shards' rows.
type PartialError struct {
	Errors map[string]error
	// Shards is the number of shards asked.
	Shards int
}

func (e *PartialError) Error() string {
	names := e.Failed()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + e.Errors[n].Error()
	}
	return fmt.Sprintf("shard: %d of %d shards failed: %s", len(names), e.Shards, strings.Join(parts, "; "))
}

// Unwrap returns the shards' errors, for errors.Is and errors.As.
func (e *PartialError) Unwrap() []error {
	out := make([]error, 0, len(e.Errors))
	for _, n := range e.Failed() {
		out = append(out, e.Errors[n])
	}
	return out
}

// Failed returns the failed shards' names, sorted.
func (e *PartialError) Failed() []string {
	names := make([]string, 0, len(e.Errors))
	for n := range e.Errors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var dollarOne = regexp.MustCompile(`\$1\b`)

type part struct {
	name string
	cols []string
	rows [][]any
	err  error
}

// QueryAll runs q on every shard that owns buckets, in parallel, and
// merges the rows (see Query for ordering, limits, deadlines and failed
// shards). Each shard checks, in the statement's own snapshot, that it
// still holds the buckets it was given; if a bucket moved meanwhile the
// call reloads the map and runs again, so a row is never read twice or
// missed.
func (db *DB) QueryAll(ctx context.Context, q Query) (*Result, error) {
	if !dollarOne.MatchString(q.SQL) {
		return nil, errors.New("shard: QueryAll: the SQL must filter on its buckets, $1 (e.g. WHERE shard_bucket = ANY($1))")
	}
	for attempt := 0; ; attempt++ {
		m := db.cur.Load()
		res, stale, err := db.queryAll(ctx, m, q, true)
		if stale && attempt < db.cfg.Retries {
			if _, rerr := db.Refresh(ctx); rerr != nil {
				return nil, rerr
			}
			continue
		}
		return res, err
	}
}

func (db *DB) queryAll(ctx context.Context, m *Map, q Query, pushLimit bool) (*Result, bool, error) {
	sql := `SELECT herd_q.* FROM (` + q.SQL + `) AS herd_q WHERE herd_shard_check($1)`
	if len(q.OrderBy) > 0 {
		keys := make([]string, len(q.OrderBy))
		for i, o := range q.OrderBy {
			keys[i] = strconv.Itoa(o.Column + 1)
			if o.Desc {
				keys[i] += " DESC"
			}
		}
		sql += ` ORDER BY ` + strings.Join(keys, ", ")
	}
	if q.Limit > 0 && pushLimit {
		sql += ` LIMIT ` + strconv.Itoa(q.Limit)
	}
	var names []string
	for _, s := range m.shards {
		if len(m.BucketsOf(s)) > 0 {
			names = append(names, s)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]part, len(names))
	var wg sync.WaitGroup
	var once sync.Once
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := db.queryShard(ctx, m, name, sql, q)
			parts[i] = p
			if p.err != nil && !q.AllowPartial && sqlState(p.err) != codeNotOwned {
				once.Do(cancel) // fail fast: the others' answers are not needed
			}
		}()
	}
	wg.Wait()
	res := &Result{Version: m.version, ShardRows: map[string]int{}}
	pe := &PartialError{Errors: map[string]error{}, Shards: len(names)}
	stale := false
	var first error
	for _, p := range parts {
		if p.err == nil {
			res.ShardRows[p.name] = len(p.rows)
			if res.Columns == nil {
				res.Columns = p.cols
			}
			continue
		}
		if sqlState(p.err) == codeNotOwned {
			stale = true
		}
		if first == nil && !errors.Is(p.err, context.Canceled) {
			first = p.err
		}
		pe.Errors[p.name] = p.err
	}
	if stale {
		return nil, true, fmt.Errorf("%w: %w", ErrStaleMap, pe)
	}
	if len(pe.Errors) > 0 && !q.AllowPartial {
		// Keep the shards that failed, not those cancelled because of them
		// (unless the caller's own context ended).
		if ctx.Err() == nil || first != nil {
			for n, err := range pe.Errors {
				if errors.Is(err, context.Canceled) && first != nil {
					delete(pe.Errors, n)
				}
			}
		}
		return nil, false, pe
	}
	rowsets := make([][][]any, 0, len(parts))
	for _, p := range parts {
		if p.err == nil {
			rowsets = append(rowsets, p.rows)
		}
	}
	if len(q.OrderBy) > 0 {
		res.Rows = mergeSorted(rowsets, q.OrderBy, limitOr(q.Limit, pushLimit))
	} else {
		for _, rs := range rowsets {
			res.Rows = append(res.Rows, rs...)
		}
		if n := limitOr(q.Limit, pushLimit); n > 0 && len(res.Rows) > n {
			res.Rows = res.Rows[:n]
		}
	}
	if len(pe.Errors) > 0 {
		return res, false, pe
	}
	return res, false, nil
}

func limitOr(n int, use bool) int {
	if use {
		return n
	}
	return 0
}

func (db *DB) queryShard(ctx context.Context, m *Map, name, sql string, q Query) part {
	p := part{name: name}
	if q.ShardTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.ShardTimeout)
		defer cancel()
	}
	buckets := m.BucketsOf(name)
	b32 := make([]int32, len(buckets))
	for i, b := range buckets {
		b32[i] = int32(b)
	}
	args := append([]any{b32}, q.Args...)
	rows, err := db.cfg.Shards[name].Query(ctx, sql, args...)
	if err != nil {
		p.err = ctxErr(ctx, err)
		return p
	}
	defer rows.Close()
	for _, f := range rows.FieldDescriptions() {
		p.cols = append(p.cols, f.Name)
	}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			p.err = err
			return p
		}
		p.rows = append(p.rows, v)
	}
	if err := rows.Err(); err != nil {
		p.err = ctxErr(ctx, err)
	}
	return p
}

// ctxErr makes an error caused by the shard's deadline say so.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// mergeSorted merges rowsets, each sorted by order, k-way with a heap,
// keeping the first limit rows (all if limit ≤ 0).
func mergeSorted(rowsets [][][]any, order []Order, limit int) [][]any {
	h := &mergeHeap{order: order}
	for _, rs := range rowsets {
		if len(rs) > 0 {
			h.items = append(h.items, cursor{rows: rs})
		}
	}
	heap.Init(h)
	var out [][]any
	for h.Len() > 0 && (limit <= 0 || len(out) < limit) {
		c := &h.items[0]
		out = append(out, c.rows[c.i])
		c.i++
		if c.i == len(c.rows) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	return out
}

type cursor struct {
	rows [][]any
	i    int
}

type mergeHeap struct {
	items []cursor
	order []Order
}

func (h *mergeHeap) Len() int { return len(h.items) }
func (h *mergeHeap) Less(i, j int) bool {
	return compareRows(h.items[i].rows[h.items[i].i], h.items[j].rows[h.items[j].i], h.order) < 0
}
func (h *mergeHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *mergeHeap) Push(x any)    { h.items = append(h.items, x.(cursor)) }
func (h *mergeHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func compareRows(a, b []any, order []Order) int {
	for _, o := range order {
		c := compareValues(a[o.Column], b[o.Column])
		if o.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// compareValues orders two values of one column as PostgreSQL does for
// the common types; NULL is greater than everything (NULLS LAST
// ascending, FIRST descending, PostgreSQL's defaults).
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	switch x := a.(type) {
	case int64:
		return cmp.Compare(x, toInt64(b))
	case int32:
		return cmp.Compare(int64(x), toInt64(b))
	case int16:
		return cmp.Compare(int64(x), toInt64(b))
	case float64:
		return cmp.Compare(x, toFloat(b))
	case float32:
		return cmp.Compare(float64(x), toFloat(b))
	case string:
		// Byte order: matches the "C" collation; order text columns with
		// COLLATE "C" in the SQL for the shards to agree with the merge.
		return strings.Compare(x, b.(string))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case time.Time:
		return x.Compare(b.(time.Time))
	case pgtype.Numeric:
		return numRat(x).Cmp(numRat(b.(pgtype.Numeric)))
	case []byte:
		return bytes.Compare(x, b.([]byte))
	case [16]byte:
		y := b.([16]byte)
		return bytes.Compare(x[:], y[:])
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	}
	return 0
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	}
	return 0
}

func numRat(n pgtype.Numeric) *big.Rat {
	if !n.Valid || n.NaN || n.Int == nil {
		return new(big.Rat)
	}
	r := new(big.Rat).SetInt(n.Int)
	if n.Exp > 0 {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil)))
	} else if n.Exp < 0 {
		r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil)))
	}
	return r
}
