package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/herdhq/herd/internal/control"
	"github.com/herdhq/herd/internal/supervisor"
)

// recorder is the manager's side of the actions: it records each call and
// answers what the test says.
type recorder struct {
	mu    sync.Mutex
	calls []string
	err   error
	count int
}

func (r *recorder) Action(ctx context.Context, action, app string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, action+" "+app)
	return r.err
}

func (r *recorder) Scale(ctx context.Context, app, spec string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "scale "+app+" "+spec)
	return r.count, r.err
}

func (r *recorder) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, "; ")
}

// The actions reach the manager, through the guard: CSRF always, the token
// when there is one; every failure is JSON with a reason.
func TestActions(t *testing.T) {
	const token = "0123456789abcdef0123"
	status := func() []supervisor.AppStatus { return nil }
	tests := []struct {
		name      string
		token     string // admin_auth's
		noManager bool
		err       error // the manager's answer
		method    string
		path      string
		headers   map[string]string
		wantCode  int
		wantBody  []string
		wantCalls string
	}{
		{name: "reload", path: "/api/apps/web/reload", wantCode: 200,
			wantBody: []string{`"ok": true`, `"action": "reload"`, `"app": "web"`}, wantCalls: "reload web"},
		{name: "restart every app", path: "/api/apps/all/restart", wantCode: 200, wantCalls: "restart all"},
		{name: "stop", path: "/api/apps/web/stop", wantCode: 200, wantCalls: "stop web"},
		{name: "start", path: "/api/apps/web/start", wantCode: 200, wantCalls: "start web"},
		{name: "scale up", path: "/api/apps/web/scale?to=%2B1", wantCode: 200,
			wantBody: []string{`"instances": 4`}, wantCalls: "scale web +1"},
		{name: "scale down", path: "/api/apps/web/scale?to=-1", wantCode: 200, wantCalls: "scale web -1"},
		{name: "scale without a count", path: "/api/apps/web/scale", wantCode: 400,
			wantBody: []string{`"field": "to"`, `?to=+N`}},
		{name: "an unknown action", path: "/api/apps/web/explode", wantCode: 404,
			wantBody: []string{`unknown action \"explode\"; use reload, restart, stop, start or scale`}},
		{name: "an unknown app", path: "/api/apps/nope/reload", err: control.Errorf(404, "no app named %q", "nope"), wantCode: 404,
			wantBody: []string{`"reason": "reload nope: no app named \"nope\""`}, wantCalls: "reload nope"},
		{name: "the supervisor's unknown app", path: "/api/apps/nope/stop", err: fmt.Errorf("stopping: %w", supervisor.ErrUnknownApp),
			wantCode: 404, wantCalls: "stop nope"},
		{name: "herd stopping", path: "/api/apps/web/start", err: supervisor.ErrStopping, wantCode: 503, wantCalls: "start web"},
		{name: "a failed reload", path: "/api/apps/web/reload", err: errors.New("instance 0 never became ready"), wantCode: 409,
			wantBody: []string{`"error": "Conflict"`, `"reason": "reload web: instance 0 never became ready"`}, wantCalls: "reload web"},
		{name: "a bad config", path: "/api/apps/web/reload", err: control.Errorf(400, "herd.yaml has problems"), wantCode: 400,
			wantBody: []string{`herd.yaml has problems`}, wantCalls: "reload web"},
		{name: "no manager", noManager: true, path: "/api/apps/web/reload", wantCode: 503,
			wantBody: []string{`no manager to carry out actions`}},
		{name: "a GET is not an action", method: "GET", path: "/api/apps/web/reload", wantCode: 405,
			wantBody: []string{`"reason": "GET is not served here; use POST"`}},
		{name: "cross-origin from a browser", path: "/api/apps/web/reload",
			headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, wantCode: 403,
			wantBody: []string{"cross-origin"}},
		{name: "cross-origin by Origin alone", path: "/api/apps/web/stop",
			headers: map[string]string{"Origin": "https://evil.example"}, wantCode: 403},
		{name: "same-origin from the page", path: "/api/apps/web/reload",
			headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:9090"}, wantCode: 200, wantCalls: "reload web"},
		{name: "no token: at a name, as a rebound DNS name would", path: "/api/apps/web/stop",
			headers: map[string]string{"Host": "attacker.example", "Sec-Fetch-Site": "same-origin"}, wantCode: 403,
			wantBody: []string{"not at the name attacker.example"}},
		{name: "token: without it", token: token, path: "/api/apps/web/reload", wantCode: 401,
			wantBody: []string{"Authorization: Bearer TOKEN"}},
		{name: "token: a wrong one", token: token, path: "/api/apps/web/scale?to=3",
			headers: map[string]string{"Authorization": "Bearer nope"}, wantCode: 401},
		{name: "token: the right one", token: token, path: "/api/apps/web/scale?to=3",
			headers: map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "same-origin"}, wantCode: 200, wantCalls: "scale web 3"},
		{name: "token: the right one cross-origin", token: token, path: "/api/apps/web/reload",
			headers: map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "cross-site"}, wantCode: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{err: tc.err, count: 4}
			opts := Options{Status: status, Gatherer: NewMetrics(status).Registry, Token: tc.token, Actions: rec}
			if tc.noManager {
				opts.Actions = nil
			}
			method := tc.method
			if method == "" {
				method = "POST"
			}
			req := httptest.NewRequest(method, "http://127.0.0.1:9090"+tc.path, nil)
			setHeaders(req, tc.headers)
			w := httptest.NewRecorder()
			Handler(opts).ServeHTTP(w, req)
			if w.Code != tc.wantCode {
				t.Errorf("%s %s = %d %s; want %d", method, tc.path, w.Code, w.Body, tc.wantCode)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, w.Body)
			}
			if w.Code != 200 && body["reason"] == "" {
				t.Errorf("a %d without a reason: %s", w.Code, w.Body)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("body lacks %s:\n%s", want, w.Body)
				}
			}
			if got := rec.got(); got != tc.wantCalls {
				t.Errorf("manager calls = %q; want %q", got, tc.wantCalls)
			}
		})
	}
}

// The manager's ctx outlives the request (closing the tab does not cut a
// reload in half) and ends with herd.
func TestActionContext(t *testing.T) {
	life, stop := context.WithCancel(context.Background())
	defer stop()
	entered := make(chan context.Context, 1)
	h := Handler(Options{Context: life, Actions: blockingActions(entered)})
	reqCtx, leave := context.WithCancel(context.Background())
	req := httptest.NewRequest("POST", "http://127.0.0.1:9090/api/apps/web/reload", nil).WithContext(reqCtx)
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		done <- w
	}()
	var ctx context.Context
	select {
	case ctx = <-entered:
	case w := <-done:
		t.Fatalf("the action never reached the manager: %d %s", w.Code, w.Body)
	}
	leave()
	if ctx.Err() != nil {
		t.Fatal("the action's ctx ended with the request")
	}
	stop()
	w := <-done
	if w.Code != 503 || !strings.Contains(w.Body.String(), "context canceled") {
		t.Errorf("action cut by herd stopping = %d %s; want 503 saying so", w.Code, w.Body)
	}
}

type blockingActions chan context.Context

func (b blockingActions) Action(ctx context.Context, action, app string) error {
	b <- ctx
	<-ctx.Done()
	return ctx.Err()
}

func (b blockingActions) Scale(ctx context.Context, app, spec string) (int, error) { return 0, nil }

// The page and its files are embedded, revalidated by ETag, unframeable,
// and small.
func TestPage(t *testing.T) {
	h := Handler(Options{})
	get := func(path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	page := get("/")
	if page.Code != 200 || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(page.Body.String(), `<script src="/ui/app.js" defer>`) {
		t.Fatalf("GET / = %d %s %.200s; want the page", page.Code, page.Header().Get("Content-Type"), page.Body)
	}
	csp := page.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	if etag := page.Header().Get("ETag"); etag == "" {
		t.Error("the page has no ETag")
	} else if again := get("/", "If-None-Match", etag); again.Code != 304 || again.Body.Len() != 0 {
		t.Errorf("GET / If-None-Match its ETag = %d with %d bytes; want 304, empty", again.Code, again.Body.Len())
	}
	for _, tc := range []struct{ path, ctype string }{{"/ui/app.js", "text/javascript"}, {"/ui/app.css", "text/css"}} {
		if w := get(tc.path); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s = %d %s; want 200 %s", tc.path, w.Code, w.Header().Get("Content-Type"), tc.ctype)
		}
	}
	if w := get("/ui/nope.js"); w.Code != 404 || !strings.Contains(w.Body.String(), `"reason": "the dashboard has no file nope.js"`) {
		t.Errorf("GET /ui/nope.js = %d %s; want a JSON 404", w.Code, w.Body)
	}
	if w := get("/ui/index.html"); w.Code != 404 {
		t.Errorf("GET /ui/index.html = %d; want 404 (the page is at /)", w.Code)
	}
	// The budget: every asset together under 150 KB.
	total := 0
	for name, a := range assets {
		total += len(a.body)
		t.Logf("%s: %d bytes", name, len(a.body))
	}
	if total == 0 || total > 150<<10 {
		t.Errorf("the dashboard's assets are %d bytes; the budget is 150 KB", total)
	}
	// Every file the page names is served.
	for _, ref := range []string{"/ui/app.js", "/ui/app.css"} {
		if !strings.Contains(page.Body.String(), ref) {
			t.Errorf("the page does not load %s", ref)
		}
	}
}
