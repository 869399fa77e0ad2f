package dbrouter

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeRouter has replicas with the given states, replay positions and
// reads in flight, and no servers: enough for pick.
func fakeRouter(policy Policy, states []int32, replayed []uint64, inflight []int64) *Router {
	r := &Router{cfg: Config{Policy: policy}}
	for i := range states {
		rep := &replica{pool: &Pool{name: "replica" + string(rune('0'+i))}, idx: i}
		rep.state.Store(states[i])
		rep.replayed.Store(replayed[i])
		rep.inflight.Store(inflight[i])
		r.replicas = append(r.replicas, rep)
	}
	r.decisions = make([][numReasons]atomic.Int64, 1+len(states))
	return r
}

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     Policy
		states     []int32
		replayed   []uint64
		inflight   []int64
		need       LSN
		want       []int // replica picked on successive calls; -1 none
		wantReason int
	}{
		{"least outstanding", LeastOutstanding, []int32{stateUp, stateUp, stateUp}, []uint64{9, 9, 9}, []int64{3, 1, 2}, 0, []int{1, 1, 1}, reasonSelected},
		{"least outstanding ties rotate", LeastOutstanding, []int32{stateUp, stateUp}, []uint64{9, 9}, []int64{0, 0}, 0, []int{1, 0, 1, 0}, reasonSelected},
		{"round robin", RoundRobin, []int32{stateUp, stateUp, stateUp}, []uint64{9, 9, 9}, []int64{5, 0, 0}, 0, []int{1, 2, 0, 1}, reasonSelected},
		{"skips down and lagging", RoundRobin, []int32{stateDown, stateUp, stateLagging}, []uint64{9, 9, 9}, []int64{0, 0, 0}, 0, []int{1, 1, 1}, reasonSelected},
		{"skips behind the token", LeastOutstanding, []int32{stateUp, stateUp}, []uint64{5, 10}, []int64{0, 7}, 10, []int{1, 1}, reasonSelected},
		{"all down", RoundRobin, []int32{stateDown, stateDown}, []uint64{9, 9}, []int64{0, 0}, 0, []int{-1}, reasonDown},
		{"lagging beats down", RoundRobin, []int32{stateDown, stateLagging}, []uint64{9, 9}, []int64{0, 0}, 0, []int{-1}, reasonLagging},
		{"behind the token", LeastOutstanding, []int32{stateUp, stateLagging}, []uint64{5, 50}, []int64{0, 0}, 10, []int{-1}, reasonToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeRouter(tc.policy, tc.states, tc.replayed, tc.inflight)
			for i, want := range tc.want {
				rep, reason := r.pick(tc.need)
				got := -1
				if rep != nil {
					got = rep.idx
				}
				if got != want || reason != tc.wantReason {
					t.Fatalf("pick %d: got replica %d (%s); want %d (%s)", i, got, reasonNames[reason], want, reasonNames[tc.wantReason])
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{Primary: "postgres://x"}, nil},
		{"everything", Config{Replicas: []string{""}, Policy: 7, RejoinFraction: 2, PollInterval: -1, FailThreshold: -1, TokenWait: -1, TxAttempts: -1},
			[]string{"Primary", "Replicas[0]", "policy 7", "rejoin fraction", "poll interval", "fail threshold", "token wait", "tx attempts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.withDefaults().Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil; want errors naming %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	if _, err := New(context.Background(), Config{}); err == nil || !strings.HasPrefix(err.Error(), "dbrouter: config: ") {
		t.Fatalf("New with no primary = %v; want a config error", err)
	}
}

func TestPoolDefaults(t *testing.T) {
	c := PoolConfig{}.withDefaults()
	if c.MaxConns != 20 || c.MinConns != 5 || c.IdleTimeout != DefaultIdleTimeout || c.ConnectTimeout != DefaultConnectTimeout ||
		c.MaxUses != 7500 || c.MaxLifetime != DefaultMaxLifetime || c.SlowQuery != DefaultSlowQuery {
		t.Fatalf("defaults = %+v; want the seed's", c)
	}
	if c := (PoolConfig{MaxConns: 2, MinConns: 9}).withDefaults(); c.MinConns != 2 {
		t.Fatalf("MinConns over MaxConns = %d; want capped at 2", c.MinConns)
	}
	if c := (PoolConfig{MinConns: -1}).withDefaults(); c.MinConns != 0 {
		t.Fatalf("negative MinConns = %d; want 0", c.MinConns)
	}
}

// TestMetrics: a registered Router exports its pools, replicas and
// decisions.
func TestMetrics(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := ctxT(t)
	if _, err := e.r.Exec(ctx, "insert into items values (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	count(t, e.r.Read(), ctx, 1)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e.r)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{} // name{labels} → value
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	for key, want := range map[string]float64{
		"dbrouter_route_decisions_total{reason=selected,server=replica0}": 1,
		"dbrouter_route_decisions_total{reason=write,server=primary}":     1,
		"dbrouter_route_decisions_total{reason=fallback,server=primary}":  0,
		"dbrouter_replica_state{server=replica0,state=up}":                1,
		"dbrouter_replica_state{server=replica0,state=down}":              0,
		"dbrouter_pool_max_connections{server=primary}":                   8,
		"dbrouter_pool_max_connections{server=replica0}":                  8,
		"dbrouter_pool_connections{server=primary,state=acquired}":        0,
		"dbrouter_replica_lag_bytes{server=replica0}":                     got["dbrouter_replica_lag_bytes{server=replica0}"],
	} {
		v, ok := got[key]
		if !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", key, v, ok, want)
		}
	}
	if v := got["dbrouter_pool_acquires_total{server=primary}"]; v < 2 {
		t.Errorf("primary acquires = %v; want at least 2", v)
	}
}
