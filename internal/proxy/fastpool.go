package proxy

import (
	"context"
	"net"
	"sync"
	"time"
)

// upstreamPool keeps the fast path's idle connections to the instances of
// one pool, by address: at most Keepalive per instance, each closed once
// idle for KeepaliveTimeout, as NGINX's upstream keepalive (none when
// either is zero; see TransportOptions). The most
// recently used connection goes out first, so the others age out when
// traffic drops.
type upstreamPool struct {
	opts   TransportOptions
	dialer *net.Dialer

	mu       sync.Mutex
	idle     map[string][]*upstreamConn
	sweeping bool
}

// upstreamConn is one connection to an instance.
type upstreamConn struct {
	net.Conn
	wr        *waitReader // nil when the connection has no file descriptor
	addr      string
	uses      int       // requests sent on it
	readBy    time.Time // the read deadline, see extendReadDeadline
	writeBy   time.Time // the write deadline
	idleSince time.Time // when it was put back
}

func newUpstreamPool(o TransportOptions) *upstreamPool {
	return &upstreamPool{
		opts:   o,
		dialer: o.dialer(),
		idle:   map[string][]*upstreamConn{},
	}
}

// get returns an idle connection to addr, or nil.
func (p *upstreamPool) get(addr string) *upstreamConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[addr]
	for len(list) > 0 {
		c := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if time.Since(c.idleSince) < p.opts.KeepaliveTimeout {
			p.idle[addr] = list
			return c
		}
		c.Close()
	}
	p.idle[addr] = list
	return nil
}

// dial opens a new connection to addr.
func (p *upstreamPool) dial(ctx context.Context, addr string) (*upstreamConn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &upstreamConn{Conn: nc, addr: addr, wr: newWaitReader(nc, nil)}, nil
}

// put keeps c for reuse, or closes it when the instance has enough idle
// connections or c has carried keepalive_requests.
func (p *upstreamPool) put(c *upstreamConn) {
	if !p.opts.keepsIdle() || p.opts.KeepaliveRequests > 0 && c.uses >= p.opts.KeepaliveRequests {
		c.Close()
		return
	}
	c.idleSince = time.Now()
	p.mu.Lock()
	if len(p.idle[c.addr]) >= p.opts.Keepalive {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle[c.addr] = append(p.idle[c.addr], c)
	if !p.sweeping {
		p.sweeping = true
		time.AfterFunc(p.opts.KeepaliveTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes the connections idle for KeepaliveTimeout, and runs again
// while any are left, so a pool nobody uses any more (replaced by a
// reload) ends up holding nothing.
func (p *upstreamPool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	left := 0
	for addr, list := range p.idle {
		keep := list[:0]
		for _, c := range list {
			if now.Sub(c.idleSince) >= p.opts.KeepaliveTimeout {
				c.Close()
			} else {
				keep = append(keep, c)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = keep
		}
		left += len(keep)
	}
	if left == 0 {
		p.sweeping = false
		return
	}
	time.AfterFunc(p.opts.KeepaliveTimeout/2, p.sweep)
}

// extendReadDeadline makes sure the connection's read deadline is at least
// timeout after now. It moves the deadline only when it is nearer than
// that, and then past it by a slack (see extendDeadline), so that a
// connection carrying quick exchanges moves its timer once per slack, not
// per read: a read times out between timeout and timeout plus the slack
// after it began.
func (c *upstreamConn) extendReadDeadline(now time.Time, timeout time.Duration) {
	if at, ok := extendDeadline(now, c.readBy, timeout); ok {
		c.readBy = at
		_ = c.SetReadDeadline(at)
	}
}

// extendWriteDeadline is extendReadDeadline for writes.
func (c *upstreamConn) extendWriteDeadline(now time.Time, timeout time.Duration) {
	if at, ok := extendDeadline(now, c.writeBy, timeout); ok {
		c.writeBy = at
		_ = c.SetWriteDeadline(at)
	}
}

// extendDeadline returns the deadline to set in place of by, if by is less
// than timeout away: timeout plus an eighth, at most a second, from now.
func extendDeadline(now, by time.Time, timeout time.Duration) (time.Time, bool) {
	if by.Sub(now) >= timeout {
		return by, false
	}
	return now.Add(timeout + min(timeout/8, time.Second)), true
}
