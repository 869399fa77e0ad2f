package dbrouter

import (
	"github.com/jackc/pgx/v5"
)

// hookRows wraps pgx.Rows: it may hold a first Next already taken (to see
// a replica's failure before handing the rows out), and calls done once
// when the rows end, with their error.
type hookRows struct {
	pgx.Rows
	peeked, first bool
	done          func(error)
	ended         bool
}

func (r *hookRows) Next() bool {
	if r.peeked {
		r.peeked = false
		if !r.first {
			r.end()
		}
		return r.first
	}
	if r.Rows.Next() {
		return true
	}
	r.end()
	return false
}

func (r *hookRows) Close() {
	r.Rows.Close()
	r.end()
}

func (r *hookRows) end() {
	if r.ended {
		return
	}
	r.ended = true
	r.Rows.Close() // pgx closes rows at their end; make sure before done
	if r.done != nil {
		r.done(r.Rows.Err())
	}
}

// row is pgx.Row over rows, as pgx's own.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	rows := r.rows
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}
