package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/supervisor"
)

// Client calls a running herd's control API over its unix socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// Status returns every app's instances.
func (c *Client) Status(ctx context.Context) ([]supervisor.AppStatus, error) {
	var out []supervisor.AppStatus
	return out, c.do(ctx, "GET", "/v1/status", &out)
}

// Describe returns one app's config and instances as JSON.
func (c *Client) Describe(ctx context.Context, app string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, "GET", "/v1/apps/"+url.PathEscape(app), &out)
}

// Action runs reload, restart, stop or start on app ("all" for every app).
func (c *Client) Action(ctx context.Context, action, app string) error {
	return c.do(ctx, "POST", "/v1/apps/"+url.PathEscape(app)+"/"+action, nil)
}

// Scale sets app's instances from spec ("N", "+N", "-N") and returns the new count.
func (c *Client) Scale(ctx context.Context, app, spec string) (int, error) {
	var out struct {
		Instances int `json:"instances"`
	}
	err := c.do(ctx, "POST", "/v1/apps/"+url.PathEscape(app)+"/scale?to="+url.QueryEscape(spec), &out)
	return out.Instances, err
}

// Signal sends sig (e.g. "SIGUSR2") to every instance of app.
func (c *Client) Signal(ctx context.Context, app, sig string) error {
	return c.do(ctx, "POST", "/v1/apps/"+url.PathEscape(app)+"/signal?sig="+url.QueryEscape(sig), nil)
}

// Logs calls fn with the last lines of app ("" for all), then, if follow,
// with every new line until ctx ends.
func (c *Client) Logs(ctx context.Context, app string, lines int, follow bool, fn func(logbuf.Line)) error {
	q := url.Values{"app": {app}, "lines": {strconv.Itoa(lines)}}
	if follow {
		q.Set("follow", "1")
	}
	res, err := c.request(ctx, "GET", "/v1/logs?"+q.Encode())
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l logbuf.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("control: decoding a log line: %w", err)
		}
		fn(l)
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	res, err := c.request(ctx, method, path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("control: decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// request sends a request and turns an error answer into a Go error.
func (c *Client) request(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://herd"+path, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no herd is running with this config (cannot reach %s): start it with `herd up`, or pass --socket", c.path)
	}
	if res.StatusCode >= 300 {
		defer res.Body.Close()
		var e errorBody
		_ = json.NewDecoder(res.Body).Decode(&e)
		if e.Error == "" {
			e.Error = res.Status
		}
		return nil, &Error{Status: res.StatusCode, Msg: e.Error}
	}
	return res, nil
}

// Error is an error answered by herd.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }
