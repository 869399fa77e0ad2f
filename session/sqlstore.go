package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// SQLStore keeps sessions in a database/sql database: SQLite
// (modernc.org/sqlite, driver "sqlite") or PostgreSQL (pgx's stdlib, driver
// "pgx"). It is the embedded default of an app that has a database and no
// Redis: every instance on the same database shares the sessions. Two
// tables (TABLE defaults to "sessions"):
//
//	TABLE        (id PRIMARY KEY, user_id, created_ms, deadline_ms)
//	TABLE_values (id, name, value, PRIMARY KEY (id, name))
//
// one row per session key, so that Save upserts and deletes only the keys
// it changed: two instances saving different keys of one session both keep
// theirs (see the package doc). Each write is one transaction that begins
// by updating (so locking) the session's row, which orders it against any
// other write to the session, Destroy and DestroyUser included.
//
// Expired rows are deleted by Cleanup, which a janitor goroutine runs every
// CleanupInterval until Close. For SQLite open the database with a busy
// timeout and WAL, as several connections (and processes) write to it:
// "file:PATH?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)". Every
// write transaction begins with a write, so it waits for SQLite's write
// lock under the busy timeout rather than failing on a stale snapshot.
//
// It is safe for concurrent use.
type SQLStore struct {
	db       *sql.DB
	postgres bool
	t        string // the sessions table; t + "_values" the values
	now      func() time.Time
	log      *slog.Logger

	stop context.CancelFunc // ends the janitor's context
	done chan struct{}      // closed when the janitor returned
}

// SQLOptions configure an SQLStore.
type SQLOptions struct {
	// Table names the sessions table (and, with "_values", the values
	// table). Empty means "sessions". Letters, digits and _ only.
	Table string
	// Dialect is "sqlite" or "postgres". Empty means: guessed from the
	// driver (a type name with "sqlite" in it is SQLite, else PostgreSQL).
	Dialect string
	// CleanupInterval is how often the janitor deletes expired sessions.
	// Zero means 5 minutes; negative means no janitor (call Cleanup).
	CleanupInterval time.Duration
	// Now is the janitor's clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives the janitor's errors. Nil means slog.Default().
	Logger *slog.Logger
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,50}$`)

// NewSQLStore creates the store's tables if they are missing (safe to run
// from many instances at once) and starts its janitor. db stays the
// caller's: Close stops the janitor, not the database. ctx bounds the
// migration.
func NewSQLStore(ctx context.Context, db *sql.DB, opts SQLOptions) (*SQLStore, error) {
	if opts.Table == "" {
		opts.Table = "sessions"
	}
	if !tableName.MatchString(opts.Table) {
		return nil, fmt.Errorf("session: SQLOptions.Table %q is not a plain table name", opts.Table)
	}
	s := &SQLStore{db: db, t: opts.Table, now: opts.Now, log: opts.Logger, done: make(chan struct{})}
	switch opts.Dialect {
	case "postgres":
		s.postgres = true
	case "sqlite":
	case "":
		s.postgres = !strings.Contains(strings.ToLower(fmt.Sprintf("%T", db.Driver())), "sqlite")
	default:
		return nil, fmt.Errorf("session: SQLOptions.Dialect %q is neither sqlite nor postgres", opts.Dialect)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("session: creating the session tables: %w", err)
	}
	interval := opts.CleanupInterval
	if interval == 0 {
		interval = 5 * time.Minute
	}
	jctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if interval < 0 {
		close(s.done)
	} else {
		go s.janitor(jctx, interval)
	}
	return s, nil
}

// Interface guard.
var _ Store = (*SQLStore)(nil)

func (s *SQLStore) migrate(ctx context.Context) error {
	blob := "BLOB"
	if s.postgres {
		blob = "BYTEA"
	}
	ddl := []string{
		`CREATE TABLE IF NOT EXISTS ` + s.t + ` (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL DEFAULT '',
			created_ms BIGINT NOT NULL,
			deadline_ms BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + s.t + `_user ON ` + s.t + ` (user_id) WHERE user_id <> ''`,
		`CREATE INDEX IF NOT EXISTS ` + s.t + `_deadline ON ` + s.t + ` (deadline_ms)`,
		`CREATE TABLE IF NOT EXISTS ` + s.t + `_values (
			id TEXT NOT NULL,
			name TEXT NOT NULL,
			value ` + blob + ` NOT NULL,
			PRIMARY KEY (id, name))`,
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.postgres {
			// Concurrent CREATE TABLE IF NOT EXISTS can fail on a unique
			// violation in PostgreSQL's catalog: instances take turns.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "herd/session:"+s.t); err != nil {
				return err
			}
		}
		for _, q := range ddl {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQLStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Load implements Store: one query, so one snapshot of the session.
func (s *SQLStore) Load(ctx context.Context, id string, now time.Time) (Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.user_id, s.created_ms, s.deadline_ms, v.name, v.value
		FROM `+s.t+` s LEFT JOIN `+s.t+`_values v ON v.id = s.id
		WHERE s.id = $1 AND s.deadline_ms > $2`, id, ms(now))
	if err != nil {
		return Record{}, err
	}
	defer rows.Close()
	rec := Record{Values: map[string][]byte{}}
	found := false
	for rows.Next() {
		var created, deadline int64
		var name sql.NullString
		var value []byte
		if err := rows.Scan(&rec.UserID, &created, &deadline, &name, &value); err != nil {
			return Record{}, err
		}
		found = true
		rec.Created, rec.Deadline = time.UnixMilli(created), time.UnixMilli(deadline)
		if name.Valid {
			if value == nil {
				value = []byte{}
			}
			rec.Values[name.String] = value
		}
	}
	if err := rows.Err(); err != nil {
		return Record{}, err
	}
	if !found {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Save implements Store.
func (s *SQLStore) Save(ctx context.Context, id string, c Change) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if c.New {
			user := ""
			if c.User != nil {
				user = *c.User
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+s.t+` (id, user_id, created_ms, deadline_ms) VALUES ($1, $2, $3, $4)`,
				id, user, ms(c.Created), ms(c.Deadline)); err != nil {
				return err
			}
		} else {
			// The first statement writes the row: it takes the row's lock
			// (PostgreSQL) or the write lock (SQLite) before anything is
			// read, and checks the session is live.
			set, args := "deadline_ms = deadline_ms", []any{id, ms(c.Now)}
			if !c.Deadline.IsZero() {
				args = append(args, ms(c.Deadline))
				set = fmt.Sprintf("deadline_ms = $%d", len(args))
			}
			if c.User != nil {
				args = append(args, *c.User)
				set += fmt.Sprintf(", user_id = $%d", len(args))
			}
			res, err := tx.ExecContext(ctx, `UPDATE `+s.t+` SET `+set+` WHERE id = $1 AND deadline_ms > $2`, args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return ErrNotFound
			}
		}
		for k, v := range c.Set {
			if v == nil {
				v = []byte{}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+s.t+`_values (id, name, value) VALUES ($1, $2, $3)
				ON CONFLICT (id, name) DO UPDATE SET value = excluded.value`, id, k, v); err != nil {
				return err
			}
		}
		for _, k := range c.Delete {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.t+`_values WHERE id = $1 AND name = $2`, id, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Renew implements Store.
func (s *SQLStore) Renew(ctx context.Context, oldID, newID string, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+s.t+` SET id = $2 WHERE id = $1 AND deadline_ms > $3`, oldID, newID, ms(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE `+s.t+`_values SET id = $2 WHERE id = $1`, oldID, newID)
		return err
	})
}

// Destroy implements Store. The session's row goes first, which waits for
// (and then fails) any Save holding it.
func (s *SQLStore) Destroy(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.t+` WHERE id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM `+s.t+`_values WHERE id = $1`, id)
		return err
	})
}

// DestroyUser implements Store.
func (s *SQLStore) DestroyUser(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, errors.New("session: DestroyUser of an empty user id")
	}
	var ids []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		rows, err := tx.QueryContext(ctx, `DELETE FROM `+s.t+` WHERE user_id = $1 RETURNING id`, userID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.t+`_values WHERE id = $1`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

// Cleanup deletes the sessions not live at now, their values, and values
// left without a session (by a clock skewed between instances), and
// returns how many sessions it deleted.
func (s *SQLStore) Cleanup(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.t+`_values WHERE id IN (SELECT id FROM `+s.t+` WHERE deadline_ms <= $1)`, ms(now)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+s.t+` WHERE deadline_ms <= $1`, ms(now))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM `+s.t+`_values WHERE NOT EXISTS (SELECT 1 FROM `+s.t+` s WHERE s.id = `+s.t+`_values.id)`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("session: cleaning up expired sessions: %w", err)
	}
	return n, nil
}

func (s *SQLStore) janitor(ctx context.Context, interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Cleanup(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Error("session: janitor", "err", err)
			}
		}
	}
}

// Close stops the janitor (aborting a cleanup under way) and waits for it.
// It does not close the database. Safe to call more than once.
func (s *SQLStore) Close() error {
	s.stop()
	<-s.done
	return nil
}
