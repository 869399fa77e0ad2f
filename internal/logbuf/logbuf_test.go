package logbuf

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

func TestTailKeepsLastLinesPerApp(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, 3)
	for i := range 5 {
		fmt.Fprintf(b.Writer("web"), "web[0] line %d\n", i)
	}
	fmt.Fprintf(b.Writer("api"), "api[0] hello\n")
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
	fmt.Fprintf(b.Writer("api"), "api[0] not this\n")
	fmt.Fprintf(b.Writer("web"), "web[1] this\n")
	select {
	case l := <-got:
		if l != "web[1] this" {
			t.Errorf("followed %q; want web's line only", l)
		}
	case <-ctx.Done():
		t.Fatal("no line followed")
	}
}
