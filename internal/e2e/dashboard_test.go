package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/herdhq/herd/internal/testenv"
)

var updateScreenshot = flag.Bool("update-screenshot", false,
	"write the dashboard's screenshot to internal/admin/testdata/dashboard.png")

// The dashboard in a real browser (Debian's chromium, headless, a fresh
// profile so the cache is cold): the page loads within the 200 ms,
// the instance table shows the pids /status has, and its Reload button
// replaces them, as /status then confirms.
func TestDashboard(t *testing.T) {
	chromium := testenv.Tool(t, "chromium")
	h := startHerd(t, `apps:
  web:
    command: TESTAPP --greeting web
    instances: 2
  api:
    command: TESTAPP --greeting api
routes:
  - path: /api
    to: api
  - path: /
    to: web
`)

	// Some traffic, so that the charts have something to draw.
	trafficCtx, stopTraffic := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	defer traffic.Wait()
	defer stopTraffic()
	for _, path := range []string{"/", "/slow?ms=20", "/api/slow?ms=5"} {
		traffic.Go(func() {
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			for trafficCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(trafficCtx, "GET", "http://"+h.public+path, nil)
				if res, err := client.Do(req); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				select {
				case <-trafficCtx.Done():
				case <-time.After(15 * time.Millisecond):
				}
			}
		})
	}

	ctx := newBrowser(t, chromium)

	problems := watchConsole(t, ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900), chromedp.Navigate("http://"+h.admin+"/")); err != nil {
		t.Fatal(err)
	}
	pagePids := func(app string) []int {
		t.Helper()
		pids, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](
			`[...document.querySelectorAll('article[data-app="`+app+`"] td.pid')].map((td) => +td.textContent).filter((n) => n > 0)`))
		if err != nil {
			t.Fatalf("reading the page's pids: %v", err)
		}
		slices.Sort(pids)
		return pids
	}
	readyPids := func(app string) []int {
		var pids []int
		for _, in := range h.status()[app] {
			if in.State == "ready" {
				pids = append(pids, in.Pid)
			}
		}
		slices.Sort(pids)
		return pids
	}
	// Cold-cache loads: the navigation's load event, and when the first
	// status had filled the tables (the page marks it). The first load of
	// a fresh browser also starts its renderer and network service, so the
	// budget is judged on loads after clearing the cache. The machine's two
	// cores are shared with other tests, which makes a single load a
	// measure of the machine: the budget holds for the best of five (what
	// the page itself costs); the median is logged beside it.
	type timing struct {
		Load, DOM, FirstStatus float64
		Bytes, Transferred     int
		Files                  []string
	}
	measure := func() timing {
		t.Helper()
		tm, err := chromedp.Run(ctx, chromedp.Evaluate[timing](`(() => {
			const nav = performance.getEntriesByType('navigation')[0];
			const res = performance.getEntriesByType('resource').filter((r) => !r.name.includes('/api/'));
			const first = performance.getEntriesByName('herd:first-status')[0];
			return {
				Load: nav.loadEventEnd, DOM: nav.domContentLoadedEventEnd, FirstStatus: first ? first.startTime : -1,
				Bytes: nav.encodedBodySize + res.reduce((n, r) => n + r.encodedBodySize, 0),
				Transferred: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),
				Files: [nav.name, ...res.map((r) => new URL(r.name).pathname)],
			};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	loaded := func() {
		t.Helper()
		waitFor(t, 10*time.Second, "the page to finish loading and show the instances", func() bool {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
				`document.readyState === 'complete' && performance.getEntriesByName('herd:first-status').length > 0`))
			return err == nil && ok
		})
	}
	loaded()
	first := measure()
	t.Logf("first load of a fresh browser: DOMContentLoaded %.0f ms, load %.0f ms, instances shown at %.0f ms; %d bytes in %v",
		first.DOM, first.Load, first.FirstStatus, first.Bytes, first.Files)
	var loads, shown []float64
	for range 5 {
		if err := chromedp.Do(ctx, clearCache, chromedp.Navigate("http://"+h.admin+"/")); err != nil {
			t.Fatal(err)
		}
		loaded()
		tm := measure()
		if tm.Transferred <= tm.Bytes {
			t.Errorf("after clearing the cache %d bytes were transferred for %d of assets; want all of them, with headers", tm.Transferred, tm.Bytes)
		}
		if tm.Bytes <= 0 || tm.Bytes > 150<<10 {
			t.Errorf("the page's assets are %d bytes; the budget is 150 KB", tm.Bytes)
		}
		loads, shown = append(loads, tm.Load), append(shown, tm.FirstStatus)
	}
	slices.Sort(loads)
	slices.Sort(shown)
	t.Logf("cold-cache loads: load event %.0f ms (best %.0f, median %.0f), instances shown %.0f ms (best %.0f, median %.0f)",
		loads, loads[0], loads[2], shown, shown[0], shown[2])
	if loads[0] > 200 {
		t.Errorf("the page's best load of five from a cold cache took %.0f ms; the budget is 200 ms", loads[0])
	}

	before := readyPids("web")
	waitFor(t, 10*time.Second, "the page to show web's pids "+intsString(before), func() bool {
		return slices.Equal(pagePids("web"), before)
	})
	if got, want := pagePids("api"), readyPids("api"); !slices.Equal(got, want) {
		t.Errorf("the page shows api's pids %v; /status has %v", got, want)
	}

	// Reload from the page: the same-origin POST passes the CSRF guard, and
	// /status then shows two new ready instances in place of the old.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`article[data-app="web"] button[data-act="reload"]`))); err != nil {
		t.Fatal(err)
	}
	var after []int
	waitFor(t, 20*time.Second, "/status to show web's pids replaced", func() bool {
		ins := h.status()["web"]
		after = readyPids("web")
		if len(ins) != 2 || len(after) != 2 {
			return false // the old ones are still draining
		}
		for _, p := range after {
			if slices.Contains(before, p) {
				return false
			}
		}
		return true
	})
	for _, p := range before {
		waitFor(t, 10*time.Second, "the old instance to exit", func() bool { return !alive(p) })
	}
	waitFor(t, 10*time.Second, "the page to show the new pids "+intsString(after), func() bool {
		return slices.Equal(pagePids("web"), after)
	})
	toast, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('toast').textContent`))
	if err != nil || !strings.Contains(toast, "reload web: done") {
		t.Errorf("the page says %q (%v); want that the reload was done", toast, err)
	}

	// The charts drew from the samples the stream pushed; a dozen seconds
	// of them make a screenshot worth looking at.
	waitFor(t, 30*time.Second, "the requests chart to draw a dozen seconds", func() bool {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`[...document.querySelectorAll('#chartRps polyline')].reduce((n, l) => n + l.points.numberOfItems, 0)`))
		return err == nil && n >= 12
	})

	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 900 {
		t.Errorf("the screenshot is %v; want 1400x900", b)
	}
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if *updateScreenshot {
		out = filepath.Join("..", "admin", "testdata", "dashboard.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)

	if p := problems(); len(p) > 0 {
		t.Errorf("the page's console:\n%s", strings.Join(p, "\n"))
	}
}

// With admin_auth's token the page shows instances and charts but not the
// logs, and an action is refused, until the operator pastes the token;
// then the page sends it (kept in sessionStorage) and both work.
func TestDashboardToken(t *testing.T) {
	chromium := testenv.Tool(t, "chromium")
	const token = "7c1d9e4b2a6f08d3e5b7c9a1f3e5d7b9"
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHerd(t, "admin_auth: {token_file: "+tokenFile+"}\napps:\n  web:\n    command: TESTAPP\nroutes:\n  - path: /\n    to: web\n")
	ctx := newBrowser(t, chromium)
	problems := watchConsole(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+h.admin+"/")); err != nil {
		t.Fatal(err)
	}
	text := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	pid := h.status()["web"][0].Pid
	waitFor(t, 10*time.Second, "the page to show web's pid and say the logs need the token", func() bool {
		return strings.Contains(text(`document.querySelector('article[data-app="web"] td.pid')?.textContent ?? ''`), fmt.Sprint(pid)) &&
			strings.Contains(text(`document.getElementById('logView').textContent`), "admin token")
	})
	scaleUp := chromedp.Click(chromedp.CSS(`article[data-app="web"] button[data-to="+1"]`))
	if err := chromedp.Do(ctx, scaleUp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the page to say the scale was refused", func() bool {
		return strings.Contains(text(`document.getElementById('toast').textContent`), "failed (401)")
	})
	if n := len(h.status()["web"]); n != 1 {
		t.Fatalf("web has %d instances after a refused scale; want 1", n)
	}

	// The 401 opened the token form.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#tokenInput"), token),
		chromedp.Click(chromedp.CSS(`#tokenForm button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the logs to show the instance's output", func() bool {
		return strings.Contains(text(`document.getElementById('logView').textContent`), "listening on")
	})
	if got := text(`sessionStorage.getItem('herd.adminToken') ?? ''`); got != token {
		t.Errorf("sessionStorage holds %q; want the token", got)
	}
	if err := chromedp.Do(ctx, scaleUp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "/status to show two ready instances", func() bool {
		ins := h.status()["web"]
		return len(ins) == 2 && ins[0].State == "ready" && ins[1].State == "ready"
	})
	// Only the refused POST may have logged an error (the browser logs a
	// failed fetch); nothing else.
	for _, p := range problems() {
		if !strings.Contains(p, "401") {
			t.Errorf("the page's console: %s", p)
		}
	}
}

// newBrowser starts headless chromium with a fresh profile (a cold cache)
// and a 1400x900 window; it is stopped at the end of the test.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 900),
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("force-dark-mode", true))...)
	t.Cleanup(stopAlloc)
	browser, closeBrowser := chromedp.NewContext(alloc)
	t.Cleanup(closeBrowser)
	if err := chromedp.Do(browser); err != nil { // starts the browser, untimed
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// watchConsole collects the page's exceptions and console errors (a
// script the content security policy blocks shows up as one) until the
// test ends; problems returns those so far.
func watchConsole(t *testing.T, ctx context.Context) (problems func() []string) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)
	messages := chromedp.Console(ctx)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || m.Type == "error" {
				mu.Lock()
				seen = append(seen, string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func intsString(v []int) string { return fmt.Sprint(v) }

// clearCache empties the browser's HTTP cache.
func clearCache(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
	_, err := cdp.Call(ctx, t, network.ClearBrowserCache, cdp.Empty{})
	return chromedp.Void{}, err
}
