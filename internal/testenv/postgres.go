package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDatabase makes a database of its own for the test on the shared
// PostgreSQL (HERD_TEST_POSTGRES_URL) and drops it when the test ends. It
// returns the database's URL and name. Replicas of the shared server (see
// PostgresReplica) have it too once they replay its creation.
func PostgresDatabase(t testing.TB) (dbURL, name string) {
	t.Helper()
	base := Postgres(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = "herd_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connecting to %s: %v", base, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "create database "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: dropping %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "drop database if exists "+name+" with (force)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	return withDatabase(base, name), name
}

// withDatabase returns u naming database db instead.
func withDatabase(u, db string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/" + db
	return p.String()
}

// PGReplica is a private streaming replica of the shared PostgreSQL,
// made by PostgresReplica. Its methods are safe for concurrent use.
type PGReplica struct {
	// URL reaches the replica's "postgres" database; DatabaseURL another.
	URL string
	// Port is the replica's loopback port, Dir its folder (data in
	// Dir/data, the Unix socket in Dir).
	Port int
	Dir  string

	bin     string
	mu      sync.Mutex
	running bool
	done    bool
}

// PostgresReplica starts a streaming replica of the shared PostgreSQL
// (HERD_TEST_POSTGRES_URL, binaries in HERD_TEST_PG_BIN) for the test
// alone, on a free loopback port, and removes it when the test ends. It
// runs as the postgres user (PostgreSQL refuses root), taking a base
// backup with pg_basebackup -R. The replica has every database of the
// shared server: make the test's own with PostgresDatabase. Without the
// server or the binaries the test skips, or fails under
// HERD_REQUIRE_SERVICES=1.
func PostgresReplica(t testing.TB) *PGReplica {
	t.Helper()
	primary := Postgres(t)
	bin := need(t, "HERD_TEST_PG_BIN", "PostgreSQL's binaries")
	u, err := url.Parse(primary)
	if err != nil {
		t.Fatalf("testenv: HERD_TEST_POSTGRES_URL: %v", err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	for _, tool := range []string{"pg_basebackup", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			missing(t, "PostgreSQL's "+tool+" is not in HERD_TEST_PG_BIN: "+err.Error())
		}
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		missing(t, "runuser is not on PATH: "+err.Error())
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		missing(t, "there is no postgres user to run PostgreSQL as: "+err.Error())
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)

	// Not t.TempDir: its parents are root's, closed to the postgres user.
	dir, err := os.MkdirTemp("", "herd-pg-replica-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	r := &PGReplica{Dir: dir, bin: bin, Port: freePort(t)}
	t.Cleanup(r.Cleanup)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("testenv: chown %s: %v", dir, err)
	}
	data := filepath.Join(dir, "data")
	if out, err := r.asPostgres(filepath.Join(bin, "pg_basebackup"), "-h", host, "-p", port, "-U", "postgres",
		"-D", data, "-R", "-X", "stream", "-c", "fast"); err != nil {
		t.Fatalf("testenv: pg_basebackup: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\n# testenv's private replica\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nhot_standby = on\nlogging_collector = off\n",
		r.Port, dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("testenv: configuring the replica: %v", err)
	}
	r.URL = withDatabase(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", r.Port), "postgres")
	if err := r.Start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return r
}

// missing skips the test, or fails it under HERD_REQUIRE_SERVICES=1.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("HERD_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// DatabaseURL returns the URL of database name on the replica.
func (r *PGReplica) DatabaseURL(name string) string { return withDatabase(r.URL, name) }

// Start starts the replica (again) and waits until it accepts connections.
func (r *PGReplica) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return fmt.Errorf("testenv: replica %s was cleaned up", r.Dir)
	}
	if r.running {
		return nil
	}
	out, err := r.asPostgres(filepath.Join(r.bin, "pg_ctl"), "-D", filepath.Join(r.Dir, "data"),
		"-l", filepath.Join(r.Dir, "log"), "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(r.Dir, "log"))
		return fmt.Errorf("starting the replica: %v\n%s\n%s", err, out, log)
	}
	r.running = true
	return nil
}

// Stop stops the replica (pg_ctl -m fast) and waits until it is down.
func (r *PGReplica) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopLocked("fast")
}

func (r *PGReplica) stopLocked(mode string) error {
	if !r.running {
		return nil
	}
	out, err := r.asPostgres(filepath.Join(r.bin, "pg_ctl"), "-D", filepath.Join(r.Dir, "data"), "-m", mode, "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("stopping the replica: %v\n%s", err, out)
	}
	r.running = false
	return nil
}

// Cleanup stops the replica and removes its folder. PostgresReplica
// registers it with t.Cleanup; calling it again does nothing.
func (r *PGReplica) Cleanup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	_ = r.stopLocked("immediate")
	_ = os.RemoveAll(r.Dir)
}

func (r *PGReplica) asPostgres(cmd string, args ...string) ([]byte, error) {
	c := exec.Command("runuser", append([]string{"-u", "postgres", "--", cmd}, args...)...)
	c.Dir = r.Dir // the postgres user may not read the caller's folder
	return c.CombinedOutput()
}

// freePort returns a loopback port free now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
