package session

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Session is one client's session during one request (or any unit of work
// between Manager.Load and Manager.Commit). Reads see the values as loaded
// plus this Session's own changes; Commit writes only the changes. A
// Session is safe for concurrent use by the goroutines of one request.
type Session struct {
	m  *Manager
	mu sync.Mutex

	token, id         string // "" until stored
	created, deadline time.Time
	userID            string
	values            map[string][]byte

	set       map[string][]byte   // keys Put since the last commit
	del       map[string]struct{} // keys Removed since the last commit
	userSet   bool                // userID changed since the last commit
	renewed   bool                // the token changed: the cookie must follow
	destroyed bool                // destroyed: the cookie must go, unless a new session replaces it
}

// Bytes returns the encoded value of key, and whether there is one.
func (s *Session) Bytes(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	return v, ok
}

// SetBytes sets key to the encoded value v.
func (s *Session) SetBytes(key string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v = slices.Clone(v)
	if v == nil {
		v = []byte{}
	}
	s.values[key] = v
	if s.set == nil {
		s.set = map[string][]byte{}
	}
	s.set[key] = v
	delete(s.del, key)
}

// Remove removes key. The removal is saved even if this Session never saw
// the key (another instance may have set it since the load).
func (s *Session) Remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, key)
	delete(s.set, key)
	if s.del == nil {
		s.del = map[string]struct{}{}
	}
	s.del[key] = struct{}{}
}

// Keys returns the session's keys, sorted.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.values))
}

// UserID returns the user the session belongs to ("" for anonymous).
func (s *Session) UserID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userID
}

// IsNew reports whether the session is not (yet) stored.
func (s *Session) IsNew() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id == ""
}

// Deadline returns when the stored session ends unless used again: the
// zero time for a new session.
func (s *Session) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// Renew gives the session a new token and kills the old one in the store
// before it returns, so that a token an attacker planted or saw before a
// privilege change (login, sudo) is worth nothing after it. The new token
// goes to the client with the response (call Renew before writing it). A
// new session has no token yet and needs no renewal. If the session ended
// elsewhere meanwhile, Renew returns an error wrapping ErrNotFound and the
// session is new and empty. ctx bounds the store call.
func (s *Session) Renew(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewLocked(ctx)
}

func (s *Session) renewLocked(ctx context.Context) error {
	if s.id == "" {
		return nil
	}
	token, id := newToken()
	err := s.m.Store.Renew(ctx, s.id, id, s.m.now())
	if err != nil {
		if errIsNotFound(err) {
			s.reset()
		}
		return fmt.Errorf("session: renewing: %w", err)
	}
	s.token, s.id, s.renewed = token, id, true
	return nil
}

// SetUser ties the session to userID, so that Manager.DestroyUser(userID)
// ends it, and renews its token (see Renew): a change of user is a change
// of privilege. Setting the user it already has does nothing. The user is
// saved with the response.
func (s *Session) SetUser(ctx context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if userID == s.userID {
		return nil
	}
	if err := s.renewLocked(ctx); err != nil {
		return err
	}
	s.userID, s.userSet = userID, true
	return nil
}

// Destroy ends the session in the store before it returns; the response
// deletes the client's cookie. The Session is then new and empty: if
// something is put in it, it is stored under a fresh token. ctx bounds the
// store call.
func (s *Session) Destroy(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id != "" {
		if err := s.m.Store.Destroy(ctx, s.id); err != nil {
			return fmt.Errorf("session: destroying: %w", err)
		}
	}
	s.reset()
	s.destroyed = true
	return nil
}

// reset makes s new and empty. s.mu is held.
func (s *Session) reset() {
	s.token, s.id, s.userID = "", "", ""
	s.created, s.deadline = time.Time{}, time.Time{}
	s.values = map[string][]byte{}
	s.clearPending()
	s.renewed = false
}

func (s *Session) clearPending() { s.set, s.del, s.userSet = nil, nil, false }

func (s *Session) deleted() []string {
	if len(s.del) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(s.del))
}

type ctxKey struct{}

// NewContext returns ctx carrying s, for Get, Put, Remove and FromContext.
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the session ctx carries, or nil.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// Get decodes the value of key in ctx's session into a T. ok is false if
// there is no such key; err is ErrNoSession without a session, or the
// codec's error.
func Get[T any](ctx context.Context, key string) (v T, ok bool, err error) {
	s := FromContext(ctx)
	if s == nil {
		return v, false, ErrNoSession
	}
	b, ok := s.Bytes(key)
	if !ok {
		return v, false, nil
	}
	if err := s.m.codec().Unmarshal(b, &v); err != nil {
		return v, false, fmt.Errorf("session: decoding %q: %w", key, err)
	}
	return v, true, nil
}

// Put encodes v with the Manager's codec and sets key to it in ctx's
// session.
func Put(ctx context.Context, key string, v any) error {
	s := FromContext(ctx)
	if s == nil {
		return ErrNoSession
	}
	b, err := s.m.codec().Marshal(v)
	if err != nil {
		return fmt.Errorf("session: encoding %q: %w", key, err)
	}
	s.SetBytes(key, b)
	return nil
}

// Remove removes key from ctx's session.
func Remove(ctx context.Context, key string) error {
	s := FromContext(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.Remove(key)
	return nil
}

// Codec encodes and decodes session values. Implementations must be safe
// for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec: encoding/json.
type JSON struct{}

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
