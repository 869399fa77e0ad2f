package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
)

// followDNS keeps the servers of an upstream's resolve: in its pool until
// ctx ends: it looks the name up at once and then every resolve.every,
// adds the addresses that appeared and removes those that went (requests
// already sent to them finish). A lookup that fails or finds nothing keeps
// the servers of the last one that answered, as NGINX does, and is logged
// once until lookups answer again.
func followDNS(ctx context.Context, u *config.Upstream, pool *balance.Pool, log *slog.Logger) {
	rs := u.Resolve
	log = log.With("upstream", u.Name, "resolve", cmp.Or(rs.Name, rs.SRV))
	r := &net.Resolver{PreferGo: true}
	if rs.Resolver != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, rs.Resolver)
		}
	}
	static := map[string]bool{}
	for _, sv := range u.Servers {
		if sv != nil {
			static[u.Name+"/"+sv.HostPort()] = true
		}
	}
	// The pool may hold servers an earlier follower found (a reload that
	// kept the pool); take them over rather than add them twice.
	resolved := map[string]*balance.Backend{}
	for _, b := range pool.Backends() {
		if !static[b.ID] {
			resolved[b.Addr] = b
		}
	}
	failing := false
	next := len(u.Servers)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, max(time.Duration(rs.Every), 2*time.Second))
		addrs, err := lookup(lctx, r, rs)
		cancel()
		t.Reset(time.Duration(rs.Every))
		if ctx.Err() != nil {
			return
		}
		if err == nil && len(addrs) == 0 {
			err = fmt.Errorf("no records")
		}
		if err != nil {
			if !failing {
				log.Warn("DNS lookup failed; keeping the servers of the last answer", "servers", len(resolved), "err", err)
				failing = true
			}
			continue
		}
		if failing {
			log.Info("DNS lookups answer again", "servers", len(addrs))
			failing = false
		}
		var added, removed []string
		for _, addr := range addrs {
			if resolved[addr] != nil || static[u.Name+"/"+addr] {
				continue
			}
			b := &balance.Backend{Addr: addr, App: u.Name, Index: next, ID: u.Name + "/" + addr, Weight: 1}
			next++
			resolved[addr] = b
			pool.Add(b)
			added = append(added, addr)
		}
		for addr, b := range resolved {
			if !slices.Contains(addrs, addr) {
				pool.Remove(b)
				delete(resolved, addr)
				removed = append(removed, addr)
			}
		}
		if len(added)+len(removed) > 0 {
			log.Info("servers from DNS", "added", added, "removed", removed, "now", len(resolved))
		}
	}
}

// lookup returns the host:port addresses rs names, sorted.
func lookup(ctx context.Context, r *net.Resolver, rs *config.Resolve) ([]string, error) {
	var out []string
	if rs.Name != "" {
		ips, err := r.LookupIPAddr(ctx, rs.Name)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip.IP.String(), strconv.Itoa(rs.Port)))
		}
	} else {
		_, srvs, err := r.LookupSRV(ctx, "", "", rs.SRV)
		if err != nil {
			return nil, err
		}
		for _, s := range srvs {
			ips, err := r.LookupIPAddr(ctx, s.Target)
			if err != nil {
				return nil, fmt.Errorf("SRV target %s: %w", s.Target, err)
			}
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip.IP.String(), strconv.Itoa(int(s.Port))))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
