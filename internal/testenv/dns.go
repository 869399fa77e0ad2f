package testenv

import (
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
)

// DNSServer is a small authoritative DNS server on a loopback UDP port,
// for tests of DNS-discovered upstreams: it answers A and SRV questions
// from records the test sets and changes, NXDOMAIN for names it has none
// of, and SERVFAIL to everything while Failing.
type DNSServer struct {
	Addr string // host:port

	conn    net.PacketConn
	mu      sync.Mutex
	a       map[string][]net.IP
	srv     map[string][]SRV
	failing bool
	done    chan struct{}
}

// SRV is one SRV record's target and port.
type SRV struct {
	Target string
	Port   uint16
}

// StartDNS starts a DNS server that stops at the end of the test.
func StartDNS(t testing.TB) *DNSServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &DNSServer{Addr: conn.LocalAddr().String(), conn: conn, a: map[string][]net.IP{}, srv: map[string][]SRV{}, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		conn.Close()
		<-s.done
	})
	return s
}

// SetA sets the A records of name (no trailing dot); none removes them.
func (s *DNSServer) SetA(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []net.IP
	for _, ip := range ips {
		list = append(list, net.ParseIP(ip).To4())
	}
	s.a[strings.ToLower(name)] = list
}

// SetSRV sets the SRV records of name; none removes them.
func (s *DNSServer) SetSRV(name string, records ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[strings.ToLower(name)] = records
}

// Fail makes every answer SERVFAIL (true) or normal again (false).
func (s *DNSServer) Fail(failing bool) {
	s.mu.Lock()
	s.failing = failing
	s.mu.Unlock()
}

func (s *DNSServer) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			_, _ = s.conn.WriteTo(resp, from)
		}
	}
}

const (
	typeA    = 1
	typeAAAA = 28
	typeSRV  = 33
)

// answer builds the response to one query, or nil for garbage.
func (s *DNSServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) < 1 {
		return nil
	}
	name, end := readName(q, 12)
	if end < 0 || end+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end : end+2])
	question := q[12 : end+4]

	s.mu.Lock()
	failing := s.failing
	ips, hasA := s.a[name]
	srvs, hasSRV := s.srv[name]
	s.mu.Unlock()

	rcode := uint16(0)
	var answers [][]byte
	switch {
	case failing:
		rcode = 2 // SERVFAIL
	case !hasA && !hasSRV:
		rcode = 3 // NXDOMAIN
	case qtype == typeA:
		for _, ip := range ips {
			answers = append(answers, rr(typeA, ip))
		}
	case qtype == typeSRV:
		for _, r := range srvs {
			data := binary.BigEndian.AppendUint16(nil, 0)  // priority
			data = binary.BigEndian.AppendUint16(data, 10) // weight
			data = binary.BigEndian.AppendUint16(data, r.Port)
			data = append(data, encodeName(r.Target)...)
			answers = append(answers, rr(typeSRV, data))
		}
	case qtype == typeAAAA: // none: NOERROR with no answer
	}
	resp := make([]byte, 12, 512)
	copy(resp[0:2], q[0:2])                                                      // id
	flags := uint16(0x8400) | (binary.BigEndian.Uint16(q[2:4]) & 0x0100) | rcode // QR, AA, RD as asked
	binary.BigEndian.PutUint16(resp[2:4], flags|0x0080)                          // RA
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	return resp
}

// rr is a resource record for the question's name (a pointer to offset 12).
func rr(typ uint16, data []byte) []byte {
	b := []byte{0xC0, 12}
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, 1) // IN
	b = binary.BigEndian.AppendUint32(b, 1) // TTL 1 s
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// readName reads an uncompressed name at off: the name, lower-cased and
// without the trailing dot, and the offset after it (-1 if malformed).
func readName(b []byte, off int) (string, int) {
	var labels []string
	for off < len(b) {
		n := int(b[off])
		off++
		if n == 0 {
			return strings.ToLower(strings.Join(labels, ".")), off
		}
		if n&0xC0 != 0 || off+n > len(b) {
			return "", -1
		}
		labels = append(labels, string(b[off:off+n]))
		off += n
	}
	return "", -1
}

func encodeName(name string) []byte {
	var b []byte
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}
