package shard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Interface guard: a pool is a Conn (and takes the one-round-trip path).
var (
	_ Conn    = (*pgxpool.Pool)(nil)
	_ batcher = (*pgxpool.Pool)(nil)
)

const ordersDDL = `
CREATE TABLE orders (
	id           bigint PRIMARY KEY,
	user_id      bigint NOT NULL,
	shard_bucket integer NOT NULL,
	total        numeric(12, 2) NOT NULL,
	status       text NOT NULL DEFAULT 'new',
	version      integer NOT NULL DEFAULT 0
);
CREATE INDEX ON orders (shard_bucket);
CREATE TABLE notes (
	user_id      bigint NOT NULL,
	n            integer NOT NULL,
	shard_bucket integer NOT NULL,
	body         text,
	PRIMARY KEY (user_id, n)
);
CREATE INDEX ON notes (shard_bucket);
CREATE FUNCTION test_delay() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
`

var testTables = []Table{
	{Name: "orders", Key: []string{"id"}},
	{Name: "notes", Key: []string{"user_id", "n"}},
}

// cluster is a map database and n shard databases on the test server,
// dropped when the test ends.
type cluster struct {
	t      testing.TB
	prefix string
	admin  *pgxpool.Pool
	mapdb  *pgxpool.Pool
	pools  map[string]*pgxpool.Pool // by shard name s0, s1, …
	names  []string
}

func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	url := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	c := &cluster{t: t, prefix: "shard_test_" + hex.EncodeToString(rb[:]), pools: map[string]*pgxpool.Pool{}}
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	c.admin = admin
	dbs := []string{c.prefix + "_map"}
	for i := range n {
		dbs = append(dbs, fmt.Sprintf("%s_%d", c.prefix, i))
	}
	t.Cleanup(func() {
		for _, p := range c.pools {
			p.Close()
		}
		if c.mapdb != nil {
			c.mapdb.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, d := range dbs {
			if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+d+` WITH (FORCE)`); err != nil {
				t.Errorf("drop %s: %v", d, err)
			}
		}
		admin.Close()
	})
	for _, d := range dbs {
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+d); err != nil {
			t.Fatal(err)
		}
	}
	c.mapdb = c.pool(ctx, url, dbs[0])
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		p := c.pool(ctx, url, dbs[i+1])
		if _, err := p.Exec(ctx, ordersDDL); err != nil {
			t.Fatal(err)
		}
		c.pools[name] = p
		c.names = append(c.names, name)
	}
	return c
}

func (c *cluster) pool(ctx context.Context, url, db string) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.ConnConfig.Database = db
	cfg.MaxConns = 8
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// config returns a Config over the first n shards.
func (c *cluster) config(n int) Config {
	cfg := Config{Map: c.mapdb, Shards: map[string]Conn{}, Tables: testTables}
	for _, name := range c.names[:n] {
		cfg.Shards[name] = c.pools[name]
	}
	return cfg
}

// rawCount counts a table's rows on every shard, bypassing the package.
func (c *cluster) rawCount(ctx context.Context, table string) map[string]int64 {
	out := map[string]int64{}
	for _, name := range c.names {
		var n int64
		if err := c.pools[name].QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			c.t.Fatal(err)
		}
		out[name] = n
	}
	return out
}
