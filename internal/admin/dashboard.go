package admin

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/herdhq/herd/internal/control"
	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/supervisor"
)

// The dashboard: a page at / (embedded, no outside assets), a stream of
// events at /api/events (events.go) and the actions under /api/apps/.
//
//	GET  /                                 the page
//	GET  /ui/{file}                        its script and style
//	GET  /api/events                       text/event-stream: history, status, sample, logs
//	POST /api/apps/{app}/{action}          reload, restart, stop, start ({app} may be "all")
//	POST /api/apps/{app}/scale?to=N|+N|-N

// Actions carries out what the dashboard's buttons ask; internal/app's
// manager (the one the control socket drives) implements it. Both methods
// block until the change is done; ctx ends with herd, not with the page.
type Actions interface {
	// Action runs "reload", "restart", "stop" or "start" on app ("all": every app).
	Action(ctx context.Context, action, app string) error
	// Scale sets app's instance count from spec, "N", "+N" or "-N", and
	// returns the new count.
	Scale(ctx context.Context, app, spec string) (int, error)
}

// LogSource is where the dashboard reads instance output; *logbuf.Buffer
// is one.
type LogSource interface {
	// Tail returns the last n lines of app.
	Tail(app string, n int) []logbuf.Line
	// Follow calls fn with each new line of app ("": every app) until ctx
	// ends or fn returns an error.
	Follow(ctx context.Context, app string, fn func(logbuf.Line) error) error
}

//go:embed ui
var uiFiles embed.FS

// asset is one embedded file, with the ETag its content gives it.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

var assets = func() map[string]asset {
	out := map[string]asset{}
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	_ = fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "ui/")] = asset{body: body, contentType: types[path.Ext(p)],
			etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out
}()

// dashboard serves the page, its events and its actions.
type dashboard struct {
	opts    Options
	started time.Time
	hist    *history
	// life ends when herd stops (Options.Context), ending every stream
	// and bounding every action.
	life context.Context
	// sampling says the sampler runs (Options.Context is set), so streams
	// wake on its points; without it they tick on their own.
	sampling bool
	interval time.Duration
}

func newDashboard(opts Options, started time.Time) *dashboard {
	d := &dashboard{opts: opts, started: started, life: opts.Context, interval: opts.SampleEvery}
	if d.life == nil {
		d.life = context.Background()
	}
	if d.interval <= 0 {
		d.interval = time.Second
	}
	var read func() (map[string]*totals, []float64)
	if opts.Requests != nil {
		read = opts.Requests.readTotals
	}
	d.hist = newHistory(read)
	return d
}

func (d *dashboard) routes(mux *http.ServeMux, guarded func(http.HandlerFunc) http.Handler) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { d.serveAsset(w, r, "index.html") })
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) { d.serveAsset(w, r, r.PathValue("file")) })
	mux.HandleFunc("GET /api/events", d.events)
	mux.Handle("POST /api/apps/{app}/{action}", guarded(d.action))
}

// serveAsset answers an embedded file: revalidated on every load (the
// ETag makes that a 304), never framed, scripts only from here.
func (d *dashboard) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := assets[name]
	if !ok || name == "index.html" && r.URL.Path != "/" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Not Found", Reason: "the dashboard has no file " + name})
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page's buttons change herd: no other site may frame it
	// (clickjacking), and it runs no script but its own.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// actionResult is the answer to an action that was carried out.
type actionResult struct {
	OK        bool    `json:"ok"`
	App       string  `json:"app"`
	Action    string  `json:"action"`
	Instances *int    `json:"instances,omitempty"` // scale: the new count
	Seconds   float64 `json:"seconds"`
}

// action carries out POST /api/apps/{app}/{action}. It runs in herd's
// lifetime rather than the request's: closing the tab does not cut a
// rolling reload in half.
func (d *dashboard) action(w http.ResponseWriter, r *http.Request) {
	app, action := r.PathValue("app"), r.PathValue("action")
	if d.opts.Actions == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "Service Unavailable", Reason: "this admin listener has no manager to carry out actions"})
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	stop := context.AfterFunc(d.life, cancel)
	defer stop()
	start := time.Now()
	res := actionResult{OK: true, App: app, Action: action}
	var err error
	switch action {
	case "reload", "restart", "stop", "start":
		err = d.opts.Actions.Action(ctx, action, app)
	case "scale":
		spec := r.URL.Query().Get("to")
		if spec == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "Bad Request", Field: "to",
				Reason: "scale needs ?to=N, ?to=+N or ?to=-N"})
			return
		}
		var n int
		n, err = d.opts.Actions.Scale(ctx, app, spec)
		res.Instances = &n
	default:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Not Found",
			Reason: "unknown action " + `"` + action + `"` + "; use reload, restart, stop, start or scale"})
		return
	}
	if err != nil {
		status, text := actionStatus(err)
		writeJSON(w, status, errorBody{Error: text, Reason: action + " " + app + ": " + err.Error()})
		return
	}
	res.Seconds = time.Since(start).Round(time.Millisecond).Seconds()
	writeJSON(w, http.StatusOK, res)
}

// actionStatus maps a manager's error to what the control socket answers
// it with: its own status when it says one, 404 for an unknown app, 503
// while herd stops, else 409 (it could not be done).
func actionStatus(err error) (int, string) {
	status := http.StatusConflict
	var se *control.StatusError
	switch {
	case errors.As(err, &se):
		status = se.Status
	case errors.Is(err, supervisor.ErrUnknownApp):
		status = http.StatusNotFound
	case errors.Is(err, supervisor.ErrStopping), errors.Is(err, context.Canceled):
		status = http.StatusServiceUnavailable
	}
	return status, http.StatusText(status)
}
