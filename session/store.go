package session

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is what a Store returns for an id it holds no live record
// for: never created, destroyed, renewed away, or past its deadline by the
// clock the caller passed. Manager.Commit returns it (wrapped) when the
// session ended elsewhere before its changes could be saved.
var ErrNotFound = errors.New("session: not found")

// ErrNoSession is returned by Get, Put and Remove when the context carries
// no session (the handler is not behind Manager.LoadAndSave, nor was the
// context made by NewContext).
var ErrNoSession = errors.New("session: no session in the context")

// Store keeps session records by id. An id is the hex SHA-256 of a token,
// never the token itself: a Store (and whoever reads its dump) sees no token
// a client could present. Stores are safe for concurrent use by many
// Managers in many processes; every method is atomic with respect to the
// others on the same id.
//
// Time is always the caller's (the Manager's clock), passed in: a record is
// live while now is before its Deadline. A store may also expire records on
// its own clock (Redis TTLs, SQL cleanup), as garbage collection.
type Store interface {
	// Load returns the live record with id, or ErrNotFound.
	Load(ctx context.Context, id string, now time.Time) (Record, error)
	// Save applies c to the record with id. With c.New it creates the
	// record (an error if id exists); otherwise it changes only what c
	// names (the keys in c.Set and c.Delete, the deadline if c.Deadline
	// is set, the user if c.User is set) and leaves every other key as it
	// is in the store, so two instances saving different keys of one
	// session both keep theirs. It returns ErrNotFound, changing nothing,
	// if the record is not live at c.Now.
	Save(ctx context.Context, id string, c Change) error
	// Renew moves the live record oldID to newID, values, deadline and
	// user included, so that oldID is dead as Renew returns. ErrNotFound
	// if oldID is not live at now.
	Renew(ctx context.Context, oldID, newID string, now time.Time) error
	// Destroy removes the record with id; a missing id is not an error.
	Destroy(ctx context.Context, id string) error
	// DestroyUser removes every record whose user is userID (non-empty)
	// and returns how many it removed.
	DestroyUser(ctx context.Context, userID string) (int, error)
}

// Record is a stored session as Load returns it.
type Record struct {
	UserID   string // "" for an anonymous session
	Created  time.Time
	Deadline time.Time // the session is dead from this instant on
	Values   map[string][]byte
}

// Change is what Store.Save applies.
type Change struct {
	// New creates the record, with Created, Deadline and User (nil: "").
	New bool
	// Now is the caller's clock: Save refuses a record not live at Now.
	Now     time.Time
	Created time.Time // New only
	// Deadline, if not zero, is the record's new deadline (Redis: and its
	// key's PEXPIRE). Zero leaves the deadline as it is.
	Deadline time.Time
	// User, if not nil, is the record's new user (and moves it between
	// the per-user indexes).
	User *string
	// Set holds keys to write, Delete keys to remove; keys in neither are
	// not touched.
	Set    map[string][]byte
	Delete []string
}

// ms is t in Unix milliseconds, the unit every store keeps times in.
func ms(t time.Time) int64 { return t.UnixMilli() }

// errIDExists is Save(New) or Renew meeting an id already taken. With
// 256-bit random tokens it does not happen by chance.
var errIDExists = errors.New("session: id exists")

func errIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
