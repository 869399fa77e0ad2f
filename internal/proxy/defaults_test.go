package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
)

// The proxy takes its options as given; herd's config fills in the
// defaults. The tests run with the same values, filled in by testNew where
// a test leaves a field zero, and TestDefaultsAreConfigs keeps them equal
// to what internal/config sets.
var (
	testTransport    = registeredTransport // config's ProxyOptions defaults, see below
	testRetry        = RetryPolicy{Tries: 2, OnError: true, OnTimeout: true}
	testQueueTimeout = 5 * time.Second
	testMaxBody      = int64(10 << 20)
)

// testNew is New with config's defaults in the zero fields of each route,
// as herd's config would have filled them.
func testNew(opts Options) (*Handler, error) {
	opts.Routes = slices.Clone(opts.Routes)
	for i := range opts.Routes {
		withTestDefaults(&opts.Routes[i])
	}
	return New(opts)
}

func withTestDefaults(r *Route) {
	o, d := &r.Transport, testTransport
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = d.ConnectTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = d.ReadTimeout
	}
	if o.SendTimeout == 0 {
		o.SendTimeout = d.SendTimeout
	}
	if o.Keepalive == 0 {
		o.Keepalive = d.Keepalive
	}
	if o.KeepaliveTimeout == 0 {
		o.KeepaliveTimeout = d.KeepaliveTimeout
	}
	if r.Retry.Tries == 0 {
		r.Retry.Tries = testRetry.Tries
		if !r.Retry.OnError && !r.Retry.OnTimeout && r.Retry.OnStatus == nil {
			r.Retry.OnError, r.Retry.OnTimeout = testRetry.OnError, testRetry.OnTimeout
		}
	}
	if r.QueueTimeout == 0 {
		r.QueueTimeout = testQueueTimeout
	}
	if r.MaxBody == 0 {
		r.MaxBody = testMaxBody
	}
	if r.Gateway != nil {
		gw := make(map[string]Route, len(r.Gateway))
		for name, svc := range r.Gateway {
			withTestDefaults(&svc)
			gw[name] = svc
		}
		r.Gateway = gw
	}
}

func TestDefaultsAreConfigs(t *testing.T) {
	cfg, err := config.Parse("herd.yaml", []byte("apps:\n  web:\n    command: /bin/true\nroutes:\n  - path: /\n    to: web\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, r := cfg.Apps[0].Proxy, cfg.Routes[0]
	got := TransportOptions{
		ConnectTimeout: time.Duration(p.ConnectTimeout), ReadTimeout: time.Duration(p.ReadTimeout),
		SendTimeout: time.Duration(p.SendTimeout), Keepalive: p.Keepalive, KeepaliveTimeout: time.Duration(p.KeepaliveTimeout),
	}
	if got != testTransport {
		t.Errorf("config's transport defaults %+v; the tests use %+v", got, testTransport)
	}
	if r.Retry.Tries != testRetry.Tries || !slices.Equal(r.Retry.On, []string{"error", "timeout"}) {
		t.Errorf("config's retry defaults %+v; the tests use %+v", r.Retry, testRetry)
	}
	if time.Duration(r.QueueTimeout) != testQueueTimeout || int64(r.MaxBody) != testMaxBody {
		t.Errorf("config's queue_timeout %s, max_body %d; the tests use %s, %d", time.Duration(r.QueueTimeout), r.MaxBody, testQueueTimeout, testMaxBody)
	}
}

type oneService struct{ pool *balance.Pool }

func (d oneService) Pool(name string) *balance.Pool {
	if name == "svc" {
		return d.pool
	}
	return nil
}

func (d oneService) Names() []string { return []string{"svc"} }

// A registered service's route has no Transport from herd's config (see
// registeredTransport): its connections are still kept alive.
func TestRegisteredServiceKeepsConnections(t *testing.T) {
	var conns atomic.Int64
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	app.Start()
	t.Cleanup(app.Close)
	pool := balance.NewPool("svc", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://"), App: "svc"})
	h, err := New(Options{Routes: []Route{{Path: "/api", App: "gateway", Gateway: map[string]Route{}, Directory: oneService{pool},
		Policy: &balance.RoundRobin{}, StripPrefix: true, QueueTimeout: time.Second, Retry: testRetry}}})
	if err != nil {
		t.Fatal(err)
	}
	front := newFront(t, h, nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 3 {
		res, err := client.Get(front.URL + "/api/svc/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "/x" {
			t.Fatalf("request %d: %d %q; want 200 /x", i, res.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the instance saw %d connections for 3 requests; want 1, kept alive", n)
	}
}
