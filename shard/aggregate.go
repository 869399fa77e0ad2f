package shard

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// Agg says how Aggregate combines one result column across shards.
type Agg int

const (
	// Group: the column is a GROUP BY key; rows with equal keys combine.
	Group Agg = iota
	// Sum adds the shards' values (integers as int64, floats as float64,
	// numeric exactly as pgtype.Numeric); NULLs are skipped.
	Sum
	// Count adds the shards' counts (int64).
	Count
	// Min and Max keep the least and greatest non-NULL value.
	Min
	Max
	// Avg: the column holds the shard's SUM(x) and the next one, which
	// must be Count, its COUNT(x). The combined row has the total sum
	// divided by the total count (float64; NULL when the count is 0) here
	// and the total count next: the average over all rows, not the
	// average of the shards' averages.
	Avg
)

// Aggregate runs q on every shard (as QueryAll: parallel, checked against
// the map, with q's deadlines and failure mode) and combines the shards'
// rows column by column as aggs says, one Agg per column: rows with equal
// Group columns become one row. q.OrderBy and q.Limit apply to the
// combined rows (the limit is not pushed down: a shard's top groups are
// not the top groups of all).
func (db *DB) Aggregate(ctx context.Context, q Query, aggs ...Agg) (*Result, error) {
	for i, a := range aggs {
		if a == Avg && (i+1 >= len(aggs) || aggs[i+1] != Count) {
			return nil, fmt.Errorf("shard: Aggregate: column %d is Avg, so column %d must be Count", i, i+1)
		}
	}
	if !dollarOne.MatchString(q.SQL) {
		return nil, fmt.Errorf("shard: Aggregate: the SQL must filter on its buckets, $1 (e.g. WHERE shard_bucket = ANY($1))")
	}
	order, limit := q.OrderBy, q.Limit
	q.OrderBy = nil
	var res *Result
	var err error
	for attempt := 0; ; attempt++ {
		var stale bool
		res, stale, err = db.queryAll(ctx, db.cur.Load(), q, false)
		if stale && attempt < db.cfg.Retries {
			if _, rerr := db.Refresh(ctx); rerr != nil {
				return nil, rerr
			}
			continue
		}
		break
	}
	if res == nil {
		return nil, err
	}
	if len(res.Columns) > 0 && len(res.Columns) != len(aggs) {
		return nil, fmt.Errorf("shard: Aggregate: %d columns; %d aggs given", len(res.Columns), len(aggs))
	}
	var out [][]any
	index := map[string]int{}
	for _, row := range res.Rows {
		var kb strings.Builder
		for i, a := range aggs {
			if a == Group {
				fmt.Fprintf(&kb, "%T:%v\x00", row[i], row[i])
			}
		}
		k := kb.String()
		j, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, append([]any(nil), row...))
			continue
		}
		acc := out[j]
		for i, a := range aggs {
			switch a {
			case Sum, Avg:
				acc[i] = addValues(acc[i], row[i])
			case Count:
				acc[i] = toInt64(acc[i]) + toInt64(row[i])
			case Min:
				if acc[i] == nil || (row[i] != nil && compareValues(row[i], acc[i]) < 0) {
					acc[i] = row[i]
				}
			case Max:
				if acc[i] == nil || (row[i] != nil && compareValues(row[i], acc[i]) > 0) {
					acc[i] = row[i]
				}
			}
		}
	}
	for _, row := range out {
		for i, a := range aggs {
			switch a {
			case Count:
				row[i] = toInt64(row[i])
			case Avg:
				n := toInt64(row[i+1])
				if n == 0 || row[i] == nil {
					row[i] = nil
					continue
				}
				f, _ := new(big.Rat).Quo(toRat(row[i]), new(big.Rat).SetInt64(n)).Float64()
				row[i] = f
			}
		}
	}
	if len(order) > 0 {
		sort.SliceStable(out, func(i, j int) bool { return compareRows(out[i], out[j], order) < 0 })
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	res.Rows = out
	return res, err
}

// addValues adds two partial sums of one column; NULL adds nothing.
func addValues(a, b any) any {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	switch x := a.(type) {
	case int64, int32, int16:
		return toInt64(x) + toInt64(b)
	case float64, float32:
		return toFloat(x) + toFloat(b)
	case pgtype.Numeric:
		y, ok := b.(pgtype.Numeric)
		if !ok || x.NaN || y.NaN || x.InfinityModifier != 0 || y.InfinityModifier != 0 {
			return pgtype.Numeric{NaN: true, Valid: true}
		}
		if !x.Valid {
			return y
		}
		if !y.Valid {
			return x
		}
		exp := min(x.Exp, y.Exp)
		s := new(big.Int).Add(scale(x, exp), scale(y, exp))
		return pgtype.Numeric{Int: s, Exp: exp, Valid: true}
	}
	return a
}

func scale(n pgtype.Numeric, exp int32) *big.Int {
	v := new(big.Int)
	if n.Int != nil {
		v.Set(n.Int)
	}
	if d := n.Exp - exp; d > 0 {
		v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil))
	}
	return v
}

func toRat(v any) *big.Rat {
	switch x := v.(type) {
	case int64, int32, int16:
		return new(big.Rat).SetInt64(toInt64(x))
	case float64, float32:
		r, _ := new(big.Rat).SetString(fmt.Sprint(toFloat(x)))
		if r == nil {
			return new(big.Rat)
		}
		return r
	case pgtype.Numeric:
		return numRat(x)
	}
	return new(big.Rat)
}
