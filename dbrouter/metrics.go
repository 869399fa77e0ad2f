package dbrouter

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions, per server (label "server": primary, replica0...).
var (
	descConns = prometheus.NewDesc("dbrouter_pool_connections",
		"Connections of the server's pool, by state: idle, acquired (in use), constructing.", []string{"server", "state"}, nil)
	descMax = prometheus.NewDesc("dbrouter_pool_max_connections",
		"The pool's MaxConns.", []string{"server"}, nil)
	descWaiting = prometheus.NewDesc("dbrouter_pool_waiting",
		"Callers waiting for a connection now.", []string{"server"}, nil)
	descAcquires = prometheus.NewDesc("dbrouter_pool_acquires_total",
		"Connections handed out.", []string{"server"}, nil)
	descEmptyAcquires = prometheus.NewDesc("dbrouter_pool_empty_acquires_total",
		"Acquires that had to wait for a connection.", []string{"server"}, nil)
	descAcquireWait = prometheus.NewDesc("dbrouter_pool_acquire_wait_seconds_total",
		"Time spent waiting for a connection.", []string{"server"}, nil)
	descNewConns = prometheus.NewDesc("dbrouter_pool_opened_total",
		"Connections opened.", []string{"server"}, nil)
	descClosed = prometheus.NewDesc("dbrouter_pool_closed_total",
		"Connections closed by the pool, by reason: max_uses, max_lifetime, idle.", []string{"server", "reason"}, nil)
	descSlow = prometheus.NewDesc("dbrouter_slow_queries_total",
		"Statements that took at least the slow-query threshold.", []string{"server"}, nil)
	descLagBytes = prometheus.NewDesc("dbrouter_replica_lag_bytes",
		"WAL bytes the replica's replay is behind the primary, at the last poll.", []string{"server"}, nil)
	descLagSeconds = prometheus.NewDesc("dbrouter_replica_lag_seconds",
		"Time since the replica's last replayed commit while it is behind, at the last poll; 0 when caught up.", []string{"server"}, nil)
	descState = prometheus.NewDesc("dbrouter_replica_state",
		"1 for the replica's state (up, lagging, down), 0 for the others.", []string{"server", "state"}, nil)
	descInFlight = prometheus.NewDesc("dbrouter_replica_reads_in_flight",
		"Reads running on the replica now.", []string{"server"}, nil)
	descDecisions = prometheus.NewDesc("dbrouter_route_decisions_total",
		"Statements routed, by the server that took them and why: write, selected (a replica), or on the primary: no_replica, lagging, down, token (no replica had replayed the read's token), fallback (the replica failed, or the sticky store did).", []string{"server", "reason"}, nil)
	descSticky = prometheus.NewDesc("dbrouter_sticky_errors_total",
		"Failures of the sticky store (reads went to the primary; writes were not recorded).", nil, nil)
)

// Describe implements prometheus.Collector: register a Router to export
// its pools, replicas and routing decisions.
func (r *Router) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descMax, descWaiting, descAcquires, descEmptyAcquires,
		descAcquireWait, descNewConns, descClosed, descSlow, descLagBytes, descLagSeconds, descState, descInFlight, descSticky, descDecisions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *Router) Collect(ch chan<- prometheus.Metric) {
	s := r.Stat()
	collectPool(ch, s.Primary)
	for _, rs := range s.Replicas {
		collectPool(ch, rs.PoolStats)
		n := rs.Name
		ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(rs.LagBytes), n)
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, rs.LagTime.Seconds(), n)
		for _, st := range []ReplicaState{Up, Lagging, Down} {
			v := 0.0
			if rs.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, n, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(rs.InFlight), n)
	}
	ch <- prometheus.MustNewConstMetric(descSticky, prometheus.CounterValue, float64(s.StickyErrors))
	for srv := range r.decisions {
		name := "primary"
		if srv > 0 {
			name = r.replicas[srv-1].pool.name
		}
		for reason := range r.decisions[srv] {
			if reason == reasonSelected && srv == 0 || reason != reasonSelected && srv > 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(r.decisions[srv][reason].Load()), name, reasonNames[reason])
		}
	}
}

func collectPool(ch chan<- prometheus.Metric, s PoolStats) {
	n := s.Name
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Idle), n, "idle")
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Acquired), n, "acquired")
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Constructing), n, "constructing")
	ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(s.Max), n)
	ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(s.Waiting), n)
	ch <- prometheus.MustNewConstMetric(descAcquires, prometheus.CounterValue, float64(s.Acquires), n)
	ch <- prometheus.MustNewConstMetric(descEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquires), n)
	ch <- prometheus.MustNewConstMetric(descAcquireWait, prometheus.CounterValue, s.AcquireWait.Seconds(), n)
	ch <- prometheus.MustNewConstMetric(descNewConns, prometheus.CounterValue, float64(s.NewConns), n)
	ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(s.ClosedMaxUses), n, "max_uses")
	ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(s.ClosedLifetime), n, "max_lifetime")
	ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(s.ClosedIdle), n, "idle")
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(s.SlowQueries), n)
}

// Decisions returns how many statements were routed to server (primary,
// replica0...) for reason (write, selected, no_replica, lagging, down,
// token, fallback).
func (r *Router) Decisions(server, reason string) int64 {
	rs := slices.Index(reasonNames[:], reason)
	if rs < 0 {
		return 0
	}
	if server == "primary" {
		return r.decisions[0][rs].Load()
	}
	for i, rep := range r.replicas {
		if rep.pool.name == server {
			return r.decisions[i+1][rs].Load()
		}
	}
	return 0
}

// Reasons of a routing decision.
const (
	reasonWrite = iota
	reasonSelected
	reasonNoReplica
	reasonLagging
	reasonDown
	reasonToken
	reasonFallback
	numReasons
)

var reasonNames = [numReasons]string{"write", "selected", "no_replica", "lagging", "down", "token", "fallback"}

// decide counts a decision for server srv (0 the primary, i+1 replica i).
func (r *Router) decide(srv, reason int) { r.decisions[srv][reason].Add(1) }

// Interface guards.
var _ prometheus.Collector = (*Router)(nil)
