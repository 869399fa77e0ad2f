package dbrouter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CommitError is the error of a transaction whose COMMIT failed. Tx never
// retries one: the COMMIT may have reached the server, and whether the
// transaction took effect is then the caller's to find out.
type CommitError struct{ Err error }

func (e *CommitError) Error() string { return "dbrouter: commit: " + e.Err.Error() }
func (e *CommitError) Unwrap() error { return e.Err }

// Retryable reports whether err is a serialization failure (40001) or a
// deadlock (40P01), which running the whole transaction again may cure.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Tx runs fn in a transaction on the primary and commits it if fn returns
// nil. See TxWith.
func (r *Router) Tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return r.TxWith(ctx, pgx.TxOptions{}, fn)
}

// TxWith runs fn in a transaction with opts on the primary, and commits it
// if fn returns nil.
//
// When fn or a statement in it fails with a serialization failure or a
// deadlock (see Retryable), the transaction is rolled back and fn runs
// again in a new one, with exponential backoff, up to Config.TxAttempts
// times in all: fn must be safe to run more than once. Any other error from
// fn rolls back and is returned. A panic in fn rolls back and panics on.
// A COMMIT that was sent is never retried: its error comes back as a
// *CommitError, also when fn called Commit itself.
//
// After the COMMIT, under a context with a token holder or a scope, the
// write's LSN is taken on the same connection and recorded, as Exec does.
// ctx bounds the whole, retries included.
func (r *Router) TxWith(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 5 * time.Millisecond
	bo.MaxInterval = 500 * time.Millisecond
	bo.Multiplier = 2
	bo.RandomizationFactor = 0.5
	attempt := func() (struct{}, error) {
		err := r.txOnce(ctx, opts, fn)
		var ce *CommitError
		if err == nil || errors.As(err, &ce) || !Retryable(err) {
			if err != nil {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, nil
		}
		return struct{}{}, err
	}
	r.decide(0, reasonWrite)
	_, err := backoff.Retry(ctx, attempt,
		backoff.WithBackOff(bo),
		backoff.WithMaxTries(uint(max(r.cfg.TxAttempts, 1))),
		backoff.WithMaxElapsedTime(0)) // ctx is the limit
	return err
}

// rollbackTimeout bounds a ROLLBACK sent after the caller's context ended.
const rollbackTimeout = 5 * time.Second

func (r *Router) txOnce(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) (err error) {
	conn, err := r.primary.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("dbrouter: tx: %w", err)
	}
	defer conn.Release()
	inner, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("dbrouter: tx: begin: %w", err)
	}
	tx := &guardTx{Tx: inner}
	rollback := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = inner.Rollback(rctx) // a failed rollback closes the connection
	}
	defer func() {
		if p := recover(); p != nil {
			if !tx.commitSent {
				rollback()
			}
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if tx.commitSent {
			var ce *CommitError
			if !errors.As(err, &ce) {
				err = &CommitError{Err: err}
			}
			return err
		}
		rollback()
		return err
	}
	if !tx.commitSent {
		tx.commitSent = true
		if err := inner.Commit(ctx); err != nil {
			return &CommitError{Err: err}
		}
	}
	if r.wantsToken(ctx) {
		r.recordFrom(ctx, conn.Conn())
	}
	return nil
}

// guardTx notes when fn sends COMMIT itself.
type guardTx struct {
	pgx.Tx
	commitSent bool
}

func (t *guardTx) Commit(ctx context.Context) error {
	t.commitSent = true
	if err := t.Tx.Commit(ctx); err != nil {
		return &CommitError{Err: err}
	}
	return nil
}
