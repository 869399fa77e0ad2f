package dbrouter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herdhq/herd/dbrouter"
)

// A primary and a replica; writes on the primary, reads on the replica
// unless it has not replayed the caller's own write yet.
func Example() {
	ctx := context.Background()
	r, err := dbrouter.New(ctx, dbrouter.Config{
		Primary:  os.Getenv("DATABASE_URL"),
		Replicas: []string{os.Getenv("DATABASE_REPLICA_URL")},
		MaxLag:   5 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	// A token holder for this unit of work (Middleware makes one per
	// HTTP request).
	ctx = dbrouter.WithToken(ctx, dbrouter.Token{})
	if _, err := r.Exec(ctx, "insert into orders (user_id, total) values ($1, $2)", 42, 990); err != nil {
		fmt.Println(err)
		return
	}
	var n int
	// Sees the insert: the replica only if it has replayed it, else the primary.
	if err := r.Read().QueryRow(ctx, "select count(*) from orders where user_id = $1", 42).Scan(&n); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n)
}

// Tx retries serialization failures and deadlocks; fn must be safe to
// run again.
func ExampleRouter_Tx() {
	var r *dbrouter.Router // from dbrouter.New
	ctx := context.Background()
	if r == nil {
		return
	}
	err := r.TxWith(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		var balance int
		if err := tx.QueryRow(ctx, "select balance from accounts where id = $1", 1).Scan(&balance); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "update accounts set balance = $1 where id = $2", balance-10, 1)
		return err
	})
	fmt.Println(err)
}

// ReadOnly routes reads through Router's pgxpool-shaped methods, for code
// that takes an interface such as this one.
func ExampleReadOnly() {
	type querier interface {
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
	var db querier // a *dbrouter.Router, or a *pgxpool.Pool in other code
	if db == nil {
		return
	}
	var name string
	_ = db.QueryRow(dbrouter.ReadOnly(context.Background()), "select name from users where id = $1", 7).Scan(&name)
}

// A token travels in the Herd-Consistency-Token header; Middleware puts
// the request's into its context and answers with what the handler wrote.
func ExampleMiddleware() {
	h := dbrouter.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handler's token:", dbrouter.TokenFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest("GET", "/orders?user_id=42", nil)
	req.Header.Set(dbrouter.TokenHeader, "7312345678901234567:16/B374D848")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println("answer's header:", rec.Header().Get(dbrouter.TokenHeader))
	// Output:
	// handler's token: 7312345678901234567:16/B374D848
	// answer's header: 7312345678901234567:16/B374D848
}

func ExampleParseToken() {
	a, _ := dbrouter.ParseToken("1:0/1A00")
	b, _ := dbrouter.ParseToken("1:0/1B00,2:3/0")
	m := a.Merge(b)
	fmt.Println(m, m.LSN(1), m.Covers(a))
	// Output: 1:0/1B00,2:3/0 0/1B00 true
}

// MemoryStore (the default) and RedisStore keep each scope's last write
// for callers that cannot carry a token.
func ExampleWithScope() {
	ctx := dbrouter.WithScope(context.Background(), "user:42")
	fmt.Println(dbrouter.ScopeFrom(ctx))
	// Output: user:42
}
