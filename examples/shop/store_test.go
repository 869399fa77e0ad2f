package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// herd starts every instance of every service at once; each migrates the
// same fresh database. All must start, and the seeds must exist once.
func TestConcurrentMigration(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		const instances = 4
		names := []string{"users", "products", "orders", "payments"}
		stores := make([]*Store, instances*len(names))
		errs := make([]error, len(stores))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for i := range stores {
			name := names[i%len(names)]
			wg.Go(func() {
				stores[i], errs[i] = openStore(ctx, name, services[name].schema, cfg)
				if errs[i] != nil {
					errs[i] = fmt.Errorf("instance %d of %s: %w", i/len(names), name, errs[i])
				}
			})
		}
		wg.Wait()
		for _, st := range stores {
			if st != nil {
				defer st.Close()
			}
		}
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if n := count(t, stores[0], "users", ""); n != 3 {
			t.Errorf("%d users, want the 3 seeded", n)
		}
		if n := count(t, stores[1], "products", ""); n != 4 {
			t.Errorf("%d products, want the 4 seeded", n)
		}
	})
}

func TestDataSurvivesReopening(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		st := open(t, "users", cfg)
		srv := serve(t, "users", st, nil)
		status, body := call(t, "POST", srv.URL+"/users", `{"name":"Dave","email":"dave@example.com"}`)
		check{status: 201}.verify(t, status, body)
		created := decode[user](t, body)
		srv.Close()
		st.Close()

		srv = serve(t, "users", open(t, "users", cfg), nil)
		status, body = call(t, "GET", srv.URL+"/users/"+created.ID, "")
		check{status: 200}.verify(t, status, body)
		if got := decode[user](t, body); got != created {
			t.Errorf("after reopening: %+v, want %+v", got, created)
		}
		status, body = call(t, "GET", srv.URL+"/users", "")
		check{status: 200}.verify(t, status, body)
		if list := decode[[]user](t, body); len(list) != 4 {
			t.Errorf("%d users after reopening, want 4 (seeds not added twice)", len(list))
		}
	})
}

// The settings several instances on one SQLite file depend on.
func TestSQLiteSettings(t *testing.T) {
	st := open(t, "users", storeConfig{DataDir: t.TempDir()})
	for pragma, want := range map[string]string{"journal_mode": "wal", "busy_timeout": "5000", "foreign_keys": "1"} {
		var got string
		if err := st.DB.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}
