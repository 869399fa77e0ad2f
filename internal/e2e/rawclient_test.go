package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// rawClient is an HTTP/1.1 client over one keep-alive connection that never
// resends a request: Go's Transport silently retries an idempotent request
// whose reused connection was closed under it, which hides exactly the
// failures the load tests count. A failed request is reported, and the
// next one opens a new connection.
type rawClient struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func newRawClient(addr string) *rawClient { return &rawClient{addr: addr} }

// do sends one request and reads the whole response.
func (c *rawClient) do(method, path, body string) (status int, respBody []byte, err error) {
	if c.conn == nil {
		if c.conn, err = net.DialTimeout("tcp", c.addr, 2*time.Second); err != nil {
			return 0, nil, err
		}
		c.br = bufio.NewReader(c.conn)
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	_ = c.conn.SetDeadline(time.Now().Add(15 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, c.addr)
	if body != "" || method == http.MethodPost {
		fmt.Fprintf(&req, "Content-Type: text/plain\r\nContent-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n")
	req.WriteString(body)
	if _, err = io.WriteString(c.conn, req.String()); err != nil {
		return 0, nil, fmt.Errorf("%s %s: writing: %w", method, path, err)
	}
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the response: %w", method, path, err)
	}
	respBody, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	if res.Close {
		c.close() // the server said so; the next request opens a new one
	}
	return res.StatusCode, respBody, nil
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
