package session

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/herdhq/herd/internal/testenv"
)

// clock is a fake clock for Manager.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(time.Now().UnixMilli())} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// backend opens handles on one fresh, empty store: each call of the
// function open returns is another instance's view (its own client or
// database connection pool) of the same data.
type backend struct {
	name string
	open func(t testing.TB) func() Store
}

var backends = []backend{
	{"memory", func(t testing.TB) func() Store {
		s := NewMemoryStore()
		return func() Store { return s }
	}},
	{"sqlite", func(t testing.TB) func() Store {
		path := filepath.Join(t.TempDir(), "sessions.db")
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
		return func() Store { return openSQL(t, "sqlite", dsn, "sessions") }
	}},
	{"postgres", func(t testing.TB) func() Store {
		dsn := testPostgres(t)
		table := "s_" + randHex(6)
		return func() Store { return openSQL(t, "pgx", dsn, table) }
	}},
	{"redis", func(t testing.TB) func() Store {
		url := testenv.Redis(t)
		prefix := "herdtest:session:" + randHex(6) + ":"
		t.Cleanup(func() { flushPrefix(t, url, prefix) })
		return func() Store { return NewRedisStore(redisClient(t, url), RedisOptions{Prefix: prefix}) }
	}},
}

func openSQL(t testing.TB, driver, dsn, table string) *SQLStore {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := NewSQLStore(ctx, db, SQLOptions{Table: table, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func redisClient(t testing.TB, u string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func flushPrefix(t testing.TB, u, prefix string) {
	c := redisClient(t, u)
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		c.Unlink(ctx, iter.Val())
	}
}

// The PostgreSQL database of this test binary: made on first use, dropped
// by TestMain.
var pg struct {
	once       sync.Once
	admin, dsn string
	name       string
	err        error
}

func testPostgres(t testing.TB) string {
	t.Helper()
	base := testenv.Postgres(t)
	pg.once.Do(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			pg.err = err
			return
		}
		defer admin.Close()
		pg.name = "session_test_" + randHex(6)
		if _, err := admin.Exec("CREATE DATABASE " + pg.name); err != nil {
			pg.err = err
			return
		}
		u, _ := url.Parse(base)
		u.Path = "/" + pg.name
		pg.admin, pg.dsn = base, u.String()
	})
	if pg.err != nil {
		t.Fatalf("creating the test database: %v", pg.err)
	}
	return pg.dsn
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.name != "" {
		if admin, err := sql.Open("pgx", pg.admin); err == nil {
			if _, err := admin.Exec("DROP DATABASE IF EXISTS " + pg.name + " WITH (FORCE)"); err != nil {
				println("dropping", pg.name+":", err.Error())
			}
			admin.Close()
		}
	}
	os.Exit(code)
}

// eachBackend runs fn against every backend, in parallel subtests.
func eachBackend(t *testing.T, fn func(t *testing.T, open func() Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}

// countingStore counts the calls to a Store and can fail them.
type countingStore struct {
	Store
	mu               sync.Mutex
	loads, saves     int
	ids              []string
	failLoad, failSv error
}

func (c *countingStore) Load(ctx context.Context, id string, now time.Time) (Record, error) {
	c.mu.Lock()
	c.loads++
	c.ids = append(c.ids, id)
	err := c.failLoad
	c.mu.Unlock()
	if err != nil {
		return Record{}, err
	}
	return c.Store.Load(ctx, id, now)
}

func (c *countingStore) Save(ctx context.Context, id string, ch Change) error {
	c.mu.Lock()
	c.saves++
	c.ids = append(c.ids, id)
	err := c.failSv
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.Store.Save(ctx, id, ch)
}

func (c *countingStore) counts() (loads, saves int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads, c.saves
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (c *countingStore) Len() int { return c.Store.(*MemoryStore).Len() }
