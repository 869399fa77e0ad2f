package logbuf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTailKeepsLastLinesPerApp(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, 3)
	for i := range 5 {
		fmt.Fprintf(b.Writer("web", 0), "web[0] line %d\n", i)
	}
	fmt.Fprintf(b.Writer("api", 0), "api[0] hello\n")
	got := b.Tail("web", 10)
	if len(got) != 3 || got[0].Text != "web[0] line 2" || got[2].Text != "web[0] line 4" {
		t.Errorf("Tail(web) = %+v; want lines 2..4", got)
	}
	if all := b.Tail("", 2); len(all) != 2 || all[1].Text != "api[0] hello" || all[0].Text != "web[0] line 4" {
		t.Errorf("Tail(all, 2) = %+v; want the last two lines in order", all)
	}
	if out.String() == "" || bytes.Count(out.Bytes(), []byte("\n")) != 6 {
		t.Errorf("pass-through got %q; want all 6 lines", out.String())
	}
}

func TestFollow(t *testing.T) {
	b := New(nil, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan string, 10)
	go b.Follow(ctx, "web", func(l Line) error { got <- l.Text; return nil })
	time.Sleep(50 * time.Millisecond) // let the follower subscribe
	fmt.Fprintf(b.Writer("api", 0), "api[0] not this\n")
	fmt.Fprintf(b.Writer("web", 0), "web[1] this\n")
	select {
	case l := <-got:
		if l != "web[1] this" {
			t.Errorf("followed %q; want web's line only", l)
		}
	case <-ctx.Done():
		t.Fatal("no line followed")
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	b := New(nil, 10)
	err := b.EnableFiles(FileOptions{Dir: dir, MaxSize: 1 << 20, MaxFiles: 2, MaxAge: time.Hour}, map[string]AppFiles{
		"web": {DateFormat: "YYYY-MM-DD"},
		"api": {Merge: true},
		"job": {JSON: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(b.Writer("web", 1), "web[1] hello\n")
	fmt.Fprintf(b.Writer("api", 0), "api[0] from zero\n")
	fmt.Fprintf(b.Writer("api", 1), "api[1] from one\n")
	fmt.Fprintf(b.Writer("job", 2), "job[2] done\n")
	// Past max_size the file rotates, and only max_files old ones are kept.
	long := strings.Repeat("x", 1000)
	for range 4000 {
		fmt.Fprintf(b.Writer("web", 1), "web[1] %s\n", long)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	today := time.Now().Format("2006-01-02")
	if got := read("api.log"); got != "api[0] from zero\napi[1] from one\n" {
		t.Errorf("merged api.log = %q", got)
	}
	var rec struct {
		App      string `json:"app"`
		Instance int    `json:"instance"`
		Message  string `json:"message"`
	}
	if err := json.Unmarshal([]byte(read("job-2.log")), &rec); err != nil || rec.Message != "done" || rec.Instance != 2 {
		t.Errorf("job-2.log = %q (%v)", read("job-2.log"), err)
	}
	// lumberjack removes surplus backups in the background, soon after a rotation.
	var backups int
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		entries, _ := os.ReadDir(dir)
		backups = 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "web-1-") {
				backups++
			}
		}
		if backups == 2 || time.Now().After(deadline) {
			break
		}
	}
	if backups != 2 {
		t.Errorf("%d rotated web-1 files kept; want max_files = 2", backups)
	}
	if cur := read("web-1.log"); !strings.HasPrefix(cur, today+": ") {
		t.Errorf("web-1.log starts %q; want the date prefix %s", cur[:min(len(cur), 40)], today)
	}
}

func TestGoLayout(t *testing.T) {
	for in, want := range map[string]string{
		"YYYY-MM-DD HH:mm:ss Z": "2006-01-02 15:04:05 -07:00",
		"2006-01-02T15:04:05":   "2006-01-02T15:04:05",
		"":                      "",
	} {
		if got := GoLayout(in); got != want {
			t.Errorf("GoLayout(%q) = %q; want %q", in, got, want)
		}
	}
}
