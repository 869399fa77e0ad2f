package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults of the Manager's fields.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultLifetime    = 24 * time.Hour
	DefaultCookieName  = "session"
)

// Manager loads, saves, renews and destroys sessions in a Store, and is the
// HTTP middleware (LoadAndSave). Its fields are configuration: set them
// before first use and do not change them after; a zero field means its
// documented default. A Manager is safe for concurrent use; any number of
// Managers, in any number of processes, may share one Store.
type Manager struct {
	// Store keeps the sessions. Required.
	Store Store

	// IdleTimeout ends a session that has not been used for this long.
	// Zero means DefaultIdleTimeout (30 minutes); negative means no idle
	// timeout (the session lives its whole Lifetime unless destroyed).
	IdleTimeout time.Duration
	// Lifetime ends a session this long after it was created, however
	// much it is used. Zero means DefaultLifetime (24 hours). A session's
	// deadline is min(last use + IdleTimeout, created + Lifetime).
	Lifetime time.Duration
	// TouchInterval is how far a use must move a session's deadline
	// before the Manager writes the new deadline (and, for a persistent
	// cookie, sends the cookie again). It saves a store write per request:
	// a session used every second is touched once per TouchInterval, not
	// once per request. The cost is that a session may end up to
	// TouchInterval sooner than IdleTimeout after its last use. Zero
	// means IdleTimeout/10 (3 minutes for the default); negative means
	// every use that moves the deadline at all. It must be below
	// IdleTimeout.
	TouchInterval time.Duration

	// Cookie says how the session cookie is made.
	Cookie Cookie

	// Codec encodes the values of Put and decodes those of Get. Nil means
	// JSON.
	Codec Codec

	// Now is the clock for every expiry decision. Nil means time.Now.
	// Tests set it to step through idle and absolute timeouts.
	Now func() time.Time

	// ErrorFunc answers a request whose session could not be loaded or
	// saved. Nil logs the error and answers 500 Internal Server Error.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives what the Manager cannot return: a save after the
	// response's headers were sent that failed, or changes dropped
	// because the session ended elsewhere. Nil means slog.Default().
	Logger *slog.Logger
}

// New returns a Manager on store with every other field at its default.
func New(store Store) *Manager { return &Manager{Store: store} }

// SecureMode says when the session cookie carries the Secure attribute.
type SecureMode int

const (
	// SecureOnTLS (the default) marks the cookie Secure when the request
	// came over TLS. Behind a proxy that terminates TLS, use SecureAlways.
	SecureOnTLS SecureMode = iota
	// SecureAlways always marks the cookie Secure.
	SecureAlways
	// SecureNever never does (plain-HTTP development only).
	SecureNever
)

// Cookie configures the session cookie. It is always HttpOnly: script in
// the page has no business with the token.
type Cookie struct {
	// Name is the cookie's name. Empty means DefaultCookieName ("session").
	Name string
	// Domain is the cookie's Domain attribute. Empty means none (the
	// cookie goes back to the host that set it only, the safest choice).
	Domain string
	// Path is the cookie's Path. Empty means "/".
	Path string
	// Secure says when the cookie is marked Secure; default SecureOnTLS.
	Secure SecureMode
	// SameSite is the cookie's SameSite attribute. Zero means
	// http.SameSiteLaxMode.
	SameSite http.SameSite
	// SessionOnly, if true, sends a cookie with no Expires or Max-Age,
	// which the browser drops when it closes. The default (false) is a
	// persistent cookie that expires with the session's deadline, sent
	// again each time the deadline moves.
	SessionOnly bool
}

// Validate reports a configuration that cannot work.
func (m *Manager) Validate() error {
	var errs []error
	if m.Store == nil {
		errs = append(errs, errors.New("session: Manager.Store is nil"))
	}
	if m.Lifetime < 0 {
		errs = append(errs, fmt.Errorf("session: Manager.Lifetime %v is negative", m.Lifetime))
	}
	if idle := m.idle(); idle > 0 && m.touchInterval() >= idle {
		errs = append(errs, fmt.Errorf("session: Manager.TouchInterval %v is not below IdleTimeout %v", m.touchInterval(), idle))
	}
	if n := m.cookieName(); !validCookieName(n) {
		errs = append(errs, fmt.Errorf("session: Cookie.Name %q is not a valid cookie name", n))
	}
	return errors.Join(errs...)
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || contains(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}

func contains(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// now is the Manager's clock in whole milliseconds, the stores' unit, so
// that a time read back from any store equals the one written.
func (m *Manager) now() time.Time {
	t := time.Now()
	if m.Now != nil {
		t = m.Now()
	}
	return time.UnixMilli(t.UnixMilli())
}

func (m *Manager) idle() time.Duration {
	switch {
	case m.IdleTimeout == 0:
		return DefaultIdleTimeout
	case m.IdleTimeout < 0:
		return -1
	}
	return m.IdleTimeout
}

func (m *Manager) lifetime() time.Duration {
	if m.Lifetime <= 0 {
		return DefaultLifetime
	}
	return m.Lifetime
}

func (m *Manager) touchInterval() time.Duration {
	switch {
	case m.TouchInterval < 0:
		return time.Millisecond
	case m.TouchInterval > 0:
		return m.TouchInterval
	}
	if idle := m.idle(); idle > 0 {
		return idle / 10
	}
	// No idle timeout: the deadline is created + Lifetime and never moves.
	return m.lifetime()
}

func (m *Manager) codec() Codec {
	if m.Codec == nil {
		return JSON{}
	}
	return m.Codec
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

// deadline is min(now + IdleTimeout, created + Lifetime).
func (m *Manager) deadline(created, now time.Time) time.Time {
	d := created.Add(m.lifetime())
	if idle := m.idle(); idle > 0 {
		if t := now.Add(idle); t.Before(d) {
			d = t
		}
	}
	return d
}

// tokenLen is the length of a token: 32 random bytes in unpadded base64url.
const tokenLen = 43

// newToken returns a fresh token (256 bits from crypto/rand) and its id.
func newToken() (token, id string) {
	var b [32]byte
	rand.Read(b[:]) // never fails: crypto/rand.Read crashes the program rather than return short
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, idOf(token)
}

// idOf is the store key of token: hex SHA-256. A preimage of SHA-256 is out
// of reach, so a copy of the store yields no token to present; and the
// token's 256 bits leave nothing to guess, so no salt or key is needed.
func idOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether token could be one of ours; others are not
// looked up, so garbage in cookies costs no store round trip.
func wellFormed(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

// Load returns the session of token: the stored one if token is live, else
// a new, empty session (for a token that is empty, malformed, unknown,
// expired or destroyed), which is stored only once something is put in it.
// It returns an error only when the store fails; ctx bounds the store call.
func (m *Manager) Load(ctx context.Context, token string) (*Session, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	s := &Session{m: m, values: map[string][]byte{}}
	if !wellFormed(token) {
		return s, nil
	}
	now := m.now()
	id := idOf(token)
	rec, err := m.Store.Load(ctx, id, now)
	if errors.Is(err, ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session: loading: %w", err)
	}
	// The stored deadline was capped by the Lifetime of its day; a
	// Lifetime shortened since applies at once.
	if !now.Before(rec.Created.Add(m.lifetime())) || !now.Before(rec.Deadline) {
		return s, nil
	}
	s.token, s.id = token, id
	s.created, s.deadline, s.userID = rec.Created, rec.Deadline, rec.UserID
	if rec.Values != nil {
		s.values = rec.Values
	}
	return s, nil
}

// Commit saves what changed in s and returns its token, which is new if s
// was new (or renewed): the caller hands it to the client. Only changed and
// removed keys are written (see the package doc on merging). A session
// with nothing to save and no deadline to move costs no store call, and a
// new session with nothing in it is not stored at all (token ""). If the
// session ended elsewhere (expired, destroyed, renewed by another request)
// Commit drops the changes and returns an error wrapping ErrNotFound. ctx
// bounds the store call.
func (m *Manager) Commit(ctx context.Context, s *Session) (string, error) {
	if _, err := m.commit(ctx, s, false); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token, nil
}

// DestroyUser ends every session of userID, in every process, and returns
// how many there were: for "log out everywhere" and password changes.
func (m *Manager) DestroyUser(ctx context.Context, userID string) (int, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	if userID == "" {
		return 0, errors.New("session: DestroyUser of an empty user id")
	}
	n, err := m.Store.DestroyUser(ctx, userID)
	if err != nil {
		return n, fmt.Errorf("session: destroying the sessions of user %q: %w", userID, err)
	}
	return n, nil
}

// cookieAction is what a commit asks of the session cookie.
type cookieAction int

const (
	cookieKeep   cookieAction = iota // nothing to send
	cookieWrite                      // send token with the new deadline
	cookieDelete                     // expire the cookie
)

// errHeadersSent is a commit after the response's headers left that would
// need a cookie the client can no longer get.
var errHeadersSent = errors.New("session: the session needs a new cookie but the response's headers were already sent (create, renew or destroy sessions before writing the response)")

// commit saves s and says what the cookie needs. afterHeaders is a second
// commit once the headers are gone: it saves changed keys of an existing
// session but neither creates one nor moves its deadline (the cookie's
// Expires could not follow).
func (m *Manager) commit(ctx context.Context, s *Session, afterHeaders bool) (cookieAction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now()
	modified := len(s.set) > 0 || len(s.del) > 0 || s.userSet
	if s.id == "" {
		if !modified {
			if s.destroyed {
				s.destroyed = false
				if afterHeaders {
					return cookieKeep, errHeadersSent
				}
				return cookieDelete, nil
			}
			return cookieKeep, nil
		}
		if afterHeaders {
			s.clearPending()
			return cookieKeep, errHeadersSent
		}
		token, id := newToken()
		user := s.userID
		c := Change{New: true, Now: now, Created: now, Deadline: m.deadline(now, now), User: &user, Set: s.set}
		if err := m.Store.Save(ctx, id, c); err != nil {
			return cookieKeep, fmt.Errorf("session: creating: %w", err)
		}
		s.token, s.id, s.created, s.deadline = token, id, now, c.Deadline
		s.clearPending()
		s.destroyed, s.renewed = false, false
		return cookieWrite, nil
	}
	deadline := m.deadline(s.created, now)
	touch := !afterHeaders && deadline.Sub(s.deadline) >= m.touchInterval()
	if modified || touch {
		c := Change{Now: now, Set: s.set, Delete: s.deleted()}
		if touch {
			c.Deadline = deadline
		}
		if s.userSet {
			user := s.userID
			c.User = &user
		}
		err := m.Store.Save(ctx, s.id, c)
		if errors.Is(err, ErrNotFound) {
			// Gone for good: later changes start a new session rather
			// than retry a dead one.
			s.reset()
			return cookieKeep, fmt.Errorf("session: saving: the session ended before its changes were saved: %w", err)
		}
		if err != nil {
			return cookieKeep, fmt.Errorf("session: saving: %w", err)
		}
		s.clearPending()
		if touch {
			s.deadline = deadline
		}
	}
	switch {
	case s.renewed && afterHeaders:
		s.renewed = false
		return cookieKeep, errHeadersSent
	case s.renewed || touch && !m.Cookie.SessionOnly:
		s.renewed = false
		return cookieWrite, nil
	}
	return cookieKeep, nil
}
