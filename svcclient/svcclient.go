// Package svcclient is the client one service uses to call another, either
// through herd's gateway or straight to an instance found in herd's service
// registry.
//
// A Client takes care of what every such call needs and is easy to get
// wrong by hand: a per-call timeout that travels with the request (as
// X-Request-Timeout-Ms), a request id that follows a request from service to
// service (X-Request-Id), retries with exponential backoff for calls that are
// safe to repeat, a circuit breaker per service so that a dead service fails
// fast instead of tying up every caller, and herd's JSON error bodies decoded
// into *Error.
//
// On the calling side:
//
//	peers := svcclient.New(svcclient.Gateway("http://127.0.0.1:8080/api"))
//	var u User
//	err := peers.Get(ctx, "users", "/"+id, &u)
//	if svcclient.StatusOf(err) == http.StatusNotFound { ... }
//
// A read-your-writes token in the call's context (package
// dbrouter/consistency) goes out as Herd-Consistency-Token, and one an
// answer brings back is added to the context's token holder, so that a
// write in one service and a read in another, made under one request,
// are consistent.
//
// On the serving side, wrap the handler in Middleware so that RequestID(ctx)
// names the request in logs, calls made with r.Context() pass the id on, and
// the caller's deadline bounds the work done for it:
//
//	http.ListenAndServe(addr, svcclient.Middleware(mux))
//
// POST and PATCH are not retried, since the first attempt may have done its
// work before its answer was lost. Give the call an idempotency key with
// WithIdempotencyKey, which the service must honour, to make them retryable.
package svcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/herdhq/herd/dbrouter/consistency"
)

// Defaults of the options.
const (
	defaultTimeout  = 5 * time.Second
	defaultAttempts = 3
	defaultFailures = 5
	defaultOpenFor  = 10 * time.Second
)

const (
	// maxErrorBody bounds what is read of a non-2xx body.
	maxErrorBody = 1 << 20
	// maxDrain bounds what is thrown away of a body to reuse its connection;
	// past it, closing the connection is cheaper than reading on.
	maxDrain = 256 << 10
	// maxRetryAfter is the longest Retry-After a 429 is retried after; a
	// longer one is the service asking callers to go away for a while.
	maxRetryAfter = 2 * time.Second
)

// ErrCircuitOpen is wrapped by the error of a call that was not sent because
// the service's circuit breaker is open: it failed too often lately.
var ErrCircuitOpen = errors.New("circuit breaker open")

// defaultTransport is shared by every Client without WithHTTPClient so that
// they share one pool of connections, as http.DefaultTransport would.
var defaultTransport = sync.OnceValue(func() *http.Transport {
	return &http.Transport{
		// No Proxy: calls between services stay inside the deployment even
		// where HTTP_PROXY is set for the outside world.
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64, // services call few hosts, often concurrently
		IdleConnTimeout:       4 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
	// IdleConnTimeout is below Node's default keepAliveTimeout (5s): the
	// client must give up an idle connection before the server does, or a
	// request sent as the server closes it fails with a reset.
})

// Client calls services. It is safe for concurrent use; make one per
// process and share it.
type Client struct {
	resolver Resolver
	hc       *http.Client
	timeout  time.Duration
	attempts int
	failures uint32
	openFor  time.Duration

	breakers sync.Map // service name -> *gobreaker.CircuitBreaker[struct{}]
}

// Option configures a Client.
type Option func(*Client)

// New returns a Client that finds services with r.
func New(r Resolver, opts ...Option) *Client {
	c := &Client{
		resolver: r,
		hc:       &http.Client{Transport: defaultTransport()},
		timeout:  defaultTimeout,
		attempts: defaultAttempts,
		failures: defaultFailures,
		openFor:  defaultOpenFor,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithHTTPClient makes the Client send its requests with hc. By default it
// uses a transport tuned for many concurrent calls to few hosts, which keeps
// idle connections 4s, less than Node's 5s keep-alive.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds each call, all its attempts included, by d unless the
// context has an earlier deadline. The default is 5s; d <= 0 leaves calls
// bounded by their context only.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithRetries sets how many attempts a retryable call gets in all; the
// default is 3, and 1 disables retries.
func WithRetries(attempts int) Option {
	return func(c *Client) { c.attempts = max(attempts, 1) }
}

// WithBreaker configures the circuit breaker kept for each service: it opens
// after failures consecutive failed attempts (default 5), fails calls fast
// while open, and lets one attempt through after openFor (default 10s) to
// see whether the service is back. A failure is a transport error or a 5xx
// answer; a 4xx is the service working as it should, and a call its caller
// cancelled does not count.
func WithBreaker(failures uint32, openFor time.Duration) Option {
	return func(c *Client) {
		if failures > 0 {
			c.failures = failures
		}
		if openFor > 0 {
			c.openFor = openFor
		}
	}
}

// Get calls GET path on service and decodes the JSON answer into out.
func (c *Client) Get(ctx context.Context, service, path string, out any) error {
	return c.Do(ctx, http.MethodGet, service, path, nil, out)
}

// Post calls POST path on service with in as its JSON body and decodes the
// JSON answer into out. It is retried only when ctx has an idempotency key.
func (c *Client) Post(ctx context.Context, service, path string, in, out any) error {
	return c.Do(ctx, http.MethodPost, service, path, in, out)
}

// Do calls method path on service. A non-nil in is sent as a JSON body; a
// non-nil out receives the JSON body of a 2xx answer, and is left alone when
// that body is empty. path starts with "/" and may have a query string.
//
// GET, HEAD, PUT, DELETE and OPTIONS calls, and calls of any method whose
// ctx has an idempotency key, are retried with exponential backoff after a
// connection error and after a 502, 503, 504 or 429 answer, within the
// call's attempts and deadline.
//
// An answer other than 2xx is returned as an error wrapping *Error; use
// errors.As or StatusOf to look at it.
func (c *Client) Do(ctx context.Context, method, service, path string, in, out any) error {
	if err := c.do(ctx, method, service, path, in, out); err != nil {
		return fmt.Errorf("svcclient: %s %s %s: %w", method, service, path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, service, path string, in, out any) error {
	if service == "" || strings.ContainsAny(service, "/?#") {
		return fmt.Errorf("invalid service name %q", service)
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("path %q does not start with /", path)
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encoding the request body: %w", err)
		}
	}
	callerCtx := ctx // before our own timeout, to tell whose deadline ended a call
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	// One id for all attempts, so the service's logs show them as one call.
	id := RequestID(ctx)
	if id == "" {
		id = newRequestID()
	}
	key := idempotencyKey(ctx)
	retryable := c.attempts > 1 && (idempotent(method) || key != "")
	cb := c.breaker(service)

	var last error // the last attempt's own error, the one worth reporting
	attempt := func() (struct{}, error) {
		base, err := c.resolver.Resolve(ctx, service)
		if err != nil {
			last = fmt.Errorf("resolving %s: %w", service, err)
			return struct{}{}, backoff.Permanent(last)
		}
		req, err := newRequest(ctx, method, base+path, body, id, key)
		if err != nil {
			last = err
			return struct{}{}, backoff.Permanent(err)
		}
		_, err = cb.Execute(func() (struct{}, error) {
			err := c.send(req, service, id, out)
			if err != nil && callerCtx.Err() != nil {
				err = callerEnded{err}
			}
			return struct{}{}, err
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			err = fmt.Errorf("%w for %s", ErrCircuitOpen, service)
		}
		last = err
		if err == nil {
			return struct{}{}, nil
		}
		wait, again := retryAfter(ctx, err)
		if !retryable || !again {
			return struct{}{}, backoff.Permanent(err)
		}
		if wait > 0 {
			return struct{}{}, errors.Join(err, &backoff.RetryAfterError{Duration: wait})
		}
		return struct{}{}, err
	}

	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	bo.MaxInterval = time.Second
	bo.Multiplier = 2
	bo.RandomizationFactor = 0.5
	_, err := backoff.Retry(ctx, attempt,
		backoff.WithBackOff(&deadlineBackOff{BackOff: bo, ctx: ctx}),
		backoff.WithMaxTries(uint(c.attempts)),
		backoff.WithMaxElapsedTime(0)) // the context's deadline is the limit
	switch {
	case err == nil:
		return nil
	case last == nil || errors.Is(err, last):
		return last
	case errors.Is(last, err):
		return last // the attempt failed for the context's reason already
	default:
		// The context ended while waiting to retry: say so, and why the
		// attempt before failed.
		return fmt.Errorf("%w; last attempt: %w", err, last)
	}
}

// newRequest builds one attempt's request; each has its own body reader.
func newRequest(ctx context.Context, method, url string, body []byte, id, key string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	h := req.Header
	h.Set("Accept", "application/json")
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Request-Id", id)
	if key != "" {
		// net/http also takes this header as leave to resend the request on
		// a kept-alive connection the server closed.
		h.Set("Idempotency-Key", key)
	}
	if t := consistency.TokenFrom(ctx); !t.IsZero() {
		// What the caller has written: the service's reads must see it.
		h.Set(consistency.Header, t.String())
	}
	if dl, ok := ctx.Deadline(); ok {
		h.Set("X-Request-Timeout-Ms", strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10))
	}
	return req, nil
}

// decodeError is a 2xx answer whose body did not decode: the service
// answered, so the breaker counts it a success, and a retry would not help.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "decoding the response body: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// send makes one attempt.
func (c *Client) send(req *http.Request, service, id string, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if v := resp.Header.Get(consistency.Header); v != "" {
		// The service wrote for us: later reads and calls under the
		// caller's context must see that too.
		if t, err := consistency.Parse(v); err == nil {
			consistency.Observe(req.Context(), t)
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(service, id, resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil && err != io.EOF {
		return &decodeError{err}
	}
	return nil
}

// drainClose reads what is left of a body, within reason, so that its
// connection can carry the next request, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	_ = body.Close()
}

// retryAfter says whether a failed attempt is worth another, and after how
// long when the service said so (0 leaves the wait to the backoff).
func retryAfter(ctx context.Context, err error) (time.Duration, bool) {
	if ctx.Err() != nil || errors.Is(err, ErrCircuitOpen) {
		return 0, false
	}
	var de *decodeError
	if errors.As(err, &de) {
		return 0, false
	}
	var e *Error
	if !errors.As(err, &e) {
		return 0, true // the request or its answer got lost on the way
	}
	switch e.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return 0, true
	case http.StatusTooManyRequests:
		if !e.hasRetryAfter {
			return 0, true
		}
		if e.retryAfter > maxRetryAfter {
			return 0, false
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= e.retryAfter {
			return 0, false
		}
		return e.retryAfter, true
	}
	return 0, false
}

// deadlineBackOff stops retrying when the next wait would outlast the
// context: better the last attempt's error now than a timeout later.
type deadlineBackOff struct {
	backoff.BackOff
	ctx context.Context
}

func (b *deadlineBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	if dl, ok := b.ctx.Deadline(); ok && d != backoff.Stop && time.Until(dl) <= d {
		return backoff.Stop
	}
	return d
}

// idempotent reports whether HTTP defines repeating method as harmless.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// breaker returns the circuit breaker of service, made on first use.
func (c *Client) breaker(service string) *gobreaker.CircuitBreaker[struct{}] {
	if cb, ok := c.breakers.Load(service); ok {
		return cb.(*gobreaker.CircuitBreaker[struct{}])
	}
	failures := c.failures
	cb, _ := c.breakers.LoadOrStore(service, gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        service,
		MaxRequests: 1,
		Timeout:     c.openFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			var e *Error
			var de *decodeError
			return err == nil || (errors.As(err, &e) && e.Status < 500) || errors.As(err, &de)
		},
		// A caller that gave up, or whose own deadline ran out (a tight
		// budget passed down with X-Request-Timeout-Ms), says nothing about
		// the service; the client's own timeout does.
		IsExcluded: func(err error) bool {
			var ended callerEnded
			return errors.As(err, &ended) || errors.Is(err, context.Canceled)
		},
	}))
	return cb.(*gobreaker.CircuitBreaker[struct{}])
}

// callerEnded marks an attempt that failed because the caller's context
// ended, not the service.
type callerEnded struct{ err error }

func (e callerEnded) Error() string { return e.err.Error() }
func (e callerEnded) Unwrap() error { return e.err }
