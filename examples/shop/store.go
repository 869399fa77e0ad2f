package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// storeConfig says where a service keeps its data.
type storeConfig struct {
	// DatabaseURL (postgres://…) selects PostgreSQL; every service may share
	// one database, as their tables have distinct names.
	DatabaseURL string
	// DataDir holds one SQLite file per service (NAME.db) when DatabaseURL
	// is empty.
	DataDir string
}

// schema is what a service needs in its database. Every statement must be
// safe to run again: each instance runs them all at every start.
type schema struct {
	ddl  []string
	seed []string // INSERT … ON CONFLICT DO NOTHING with fixed ids
}

// Store is a service's database. The SQL is written once for both engines:
// $1, $2… placeholders (in order), TEXT ids made by the app, BIGINT money and
// fixed-width RFC 3339 text timestamps, which sort as text.
type Store struct {
	DB       *sql.DB
	Postgres bool

	// write, on SQLite, lets one transaction of this process at a time
	// ask for the file's write lock (every transaction is BEGIN IMMEDIATE):
	// SQLite has one writer anyway, and connections of one process that
	// wait for it in SQLite's busy handler sleep in growing steps and miss
	// their turn, so 20 concurrent orders took seconds. Other processes
	// still wait in busy_timeout. nil on PostgreSQL.
	write chan struct{}
}

// migrateLockKey is the pg_advisory_xact_lock every shop instance takes to
// migrate, so that instances starting together do not race on CREATE TABLE
// (PostgreSQL can fail concurrent CREATE TABLE IF NOT EXISTS with a unique
// violation in its catalog).
const migrateLockKey = 0x73686f70 // "shop"

// openStore opens the database of service name and brings it to sch. It
// returns only once the schema and seed rows are in place.
// defaultDataDir holds the SQLite files when SHOP_DATA is unset: under
// .herd, beside herd's own state, which git ignores.
const defaultDataDir = ".herd/data"

func openStore(ctx context.Context, name string, sch schema, cfg storeConfig) (*Store, error) {
	var st *Store
	if cfg.DatabaseURL != "" {
		db, err := sql.Open("pgx", cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL: %w", err)
		}
		// 4 services × several instances each share the server's default of
		// 100 connections, so each instance keeps few.
		db.SetMaxOpenConns(5)
		db.SetMaxIdleConns(5)
		db.SetConnMaxIdleTime(time.Minute)
		st = &Store{DB: db, Postgres: true}
	} else {
		dir := cfg.DataDir
		if dir == "" {
			dir = defaultDataDir
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the data folder: %w", err)
		}
		path := filepath.Join(dir, name+".db")
		// busy_timeout comes first (the driver sees to it) so that switching
		// to WAL waits for other instances instead of failing. _txlock makes
		// every transaction BEGIN IMMEDIATE: it takes the write lock up front,
		// where busy_timeout applies, instead of failing with SQLITE_BUSY when
		// a reader later tries to write.
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
			"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		st = &Store{DB: db, write: make(chan struct{}, 1)}
	}
	if err := st.migrate(ctx, sch); err != nil {
		st.DB.Close()
		return nil, fmt.Errorf("migrating the %s database: %w", name, err)
	}
	return st, nil
}

func (s *Store) Close() error { return s.DB.Close() }

// migrate applies sch in one transaction. On PostgreSQL an advisory lock
// serializes instances; on SQLite BEGIN IMMEDIATE does, and a start that still
// meets SQLITE_BUSY (another process holding the file past busy_timeout, or
// switching it to WAL) is retried.
func (s *Store) migrate(ctx context.Context, sch schema) error {
	for attempt := 1; ; attempt++ {
		err := s.migrateOnce(ctx, sch)
		if err == nil || s.Postgres || !isBusy(err) || attempt == 10 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %v)", ctx.Err(), err)
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

func (s *Store) migrateOnce(ctx context.Context, sch schema) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
				return fmt.Errorf("taking the migration lock: %w", err)
			}
		}
		for _, q := range sch.ddl {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", firstLine(q), err)
			}
		}
		for _, q := range sch.seed {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("seeding: %s: %w", firstLine(q), err)
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction, committed if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.write != nil {
		select {
		case s.write <- struct{}{}:
			defer func() { <-s.write }()
		case <-ctx.Done():
			return fmt.Errorf("waiting for the database's write lock: %w", ctx.Err())
		}
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failing, which the services turn into 409s or idempotent
// answers: the database, not a prior SELECT, is what is race-safe between
// instances.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isBusy(err error) bool {
	var lite *sqlite.Error
	return errors.As(err, &lite) && lite.Code()&0xff == sqlite3.SQLITE_BUSY
}

// newID returns prefix_ and 16 hex digits: 64 random bits, enough that
// instances never need to coordinate to make ids.
func newID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// timeFormat is RFC 3339 with a fixed width, so that ORDER BY created_at on
// the TEXT column is chronological on both databases.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

func now() string { return time.Now().UTC().Format(timeFormat) }

// firstLine shortens a statement for an error message: "CREATE TABLE IF NOT
// EXISTS users".
func firstLine(q string) string {
	q, _, _ = strings.Cut(q, "(")
	q, _, _ = strings.Cut(q, "\n")
	return strings.TrimSpace(q)
}
