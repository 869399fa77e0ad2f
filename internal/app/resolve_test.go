package app

import (
	"context"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/testenv"
)

func TestLookup(t *testing.T) {
	dns := testenv.StartDNS(t)
	dns.SetA("api.herd.test", "127.0.0.2", "127.0.0.1")
	dns.SetA("a.herd.test", "127.0.0.3")
	dns.SetSRV("_http._tcp.api.herd.test", testenv.SRV{Target: "a.herd.test", Port: 9001}, testenv.SRV{Target: "api.herd.test", Port: 9002})
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	tests := []struct {
		name string
		rs   config.Resolve
		want []string
		err  bool
	}{
		{"A records at a port", config.Resolve{Name: "api.herd.test", Port: 8080}, []string{"127.0.0.1:8080", "127.0.0.2:8080"}, false},
		{"SRV targets and their ports", config.Resolve{SRV: "_http._tcp.api.herd.test"},
			[]string{"127.0.0.1:9002", "127.0.0.2:9002", "127.0.0.3:9001"}, false},
		{"an unknown name", config.Resolve{Name: "nope.herd.test", Port: 80}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := lookup(ctx, r, &tc.rs)
			if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lookup = %v, %v; want %v (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
