package session

import (
	"context"
	"maps"
	"sync"
	"time"
)

// MemoryStore is a Store in this process's memory: for tests, examples and
// single-process apps. Sessions are lost on restart and not shared between
// processes; use RedisStore or SQLStore for that. Expired records are
// dropped by Cleanup, and by a sweep every 1024 new sessions. The zero value is not ready: use
// NewMemoryStore. It is safe for concurrent use.
type MemoryStore struct {
	mu    sync.Mutex
	recs  map[string]*Record
	users map[string]map[string]struct{} // user → ids
	made  int                            // sessions created, for the sweep
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: map[string]*Record{}, users: map[string]map[string]struct{}{}}
}

// Interface guard.
var _ Store = (*MemoryStore)(nil)

// live returns the record with id if it is live at now. s.mu is held.
func (s *MemoryStore) live(id string, now time.Time) *Record {
	if r := s.recs[id]; r != nil && now.Before(r.Deadline) {
		return r
	}
	return nil
}

func (s *MemoryStore) drop(id string) bool {
	r := s.recs[id]
	if r == nil {
		return false
	}
	delete(s.recs, id)
	s.unindex(r.UserID, id)
	return true
}

func (s *MemoryStore) index(user, id string) {
	if user == "" {
		return
	}
	if s.users[user] == nil {
		s.users[user] = map[string]struct{}{}
	}
	s.users[user][id] = struct{}{}
}

func (s *MemoryStore) unindex(user, id string) {
	if ids := s.users[user]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(s.users, user)
		}
	}
}

// Load implements Store.
func (s *MemoryStore) Load(_ context.Context, id string, now time.Time) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.live(id, now)
	if r == nil {
		return Record{}, ErrNotFound
	}
	out := *r
	out.Values = maps.Clone(r.Values)
	if out.Values == nil {
		out.Values = map[string][]byte{}
	}
	return out, nil
}

// Save implements Store.
func (s *MemoryStore) Save(_ context.Context, id string, c Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r *Record
	if c.New {
		if s.recs[id] != nil {
			return errIDExists
		}
		if s.made++; s.made%1024 == 0 {
			s.sweep(c.Now)
		}
		r = &Record{Created: c.Created, Deadline: c.Deadline, Values: map[string][]byte{}}
		s.recs[id] = r
	} else if r = s.live(id, c.Now); r == nil {
		return ErrNotFound
	}
	if !c.Deadline.IsZero() {
		r.Deadline = c.Deadline
	}
	if c.User != nil && *c.User != r.UserID {
		s.unindex(r.UserID, id)
		r.UserID = *c.User
	}
	s.index(r.UserID, id)
	for k, v := range c.Set {
		r.Values[k] = append([]byte(nil), v...)
	}
	for _, k := range c.Delete {
		delete(r.Values, k)
	}
	return nil
}

// Renew implements Store.
func (s *MemoryStore) Renew(_ context.Context, oldID, newID string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.live(oldID, now)
	if r == nil {
		return ErrNotFound
	}
	if s.recs[newID] != nil {
		return errIDExists
	}
	s.drop(oldID)
	s.recs[newID] = r
	s.index(r.UserID, newID)
	return nil
}

// Destroy implements Store.
func (s *MemoryStore) Destroy(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(id)
	return nil
}

// DestroyUser implements Store.
func (s *MemoryStore) DestroyUser(_ context.Context, userID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.users[userID] {
		if s.drop(id) {
			n++
		}
	}
	return n, nil
}

// Cleanup drops every record not live at now and returns how many.
func (s *MemoryStore) Cleanup(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweep(now), nil
}

func (s *MemoryStore) sweep(now time.Time) int {
	n := 0
	for id, r := range s.recs {
		if !now.Before(r.Deadline) {
			s.drop(id)
			n++
		}
	}
	return n
}

// Len returns how many records the store holds, live or not yet dropped.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}
