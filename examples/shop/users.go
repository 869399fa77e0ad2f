package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/herdhq/herd/session"
)

// Emails are stored lowercased, so the plain UNIQUE constraint is the
// case-insensitive one, identical on both databases (lower() differs
// between them beyond ASCII).
var usersSchema = schema{
	ddl: []string{
		`CREATE TABLE IF NOT EXISTS users (
			id         TEXT PRIMARY KEY,
			name       TEXT NOT NULL,
			email      TEXT NOT NULL UNIQUE,
			created_at TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS users_created_at ON users (created_at)`,
		// A table of its own, not a column: CREATE TABLE IF NOT EXISTS is
		// the one migration every instance can rerun on both databases, and
		// databases made before logins existed get it too.
		`CREATE TABLE IF NOT EXISTS user_passwords (
			user_id TEXT PRIMARY KEY REFERENCES users (id),
			hash    TEXT NOT NULL
		)`,
	},
	seed: []string{
		`INSERT INTO users (id, name, email, created_at) VALUES
			('usr_alice', 'Alice Liddell', 'alice@example.com', '2024-01-01T00:00:00.000000Z'),
			('usr_bob', 'Bob Builder', 'bob@example.com', '2024-01-01T00:00:01.000000Z'),
			('usr_carol', 'Carol Danvers', 'carol@example.com', '2024-01-01T00:00:02.000000Z')
		ON CONFLICT DO NOTHING`,
		// The demo passwords, bcrypt at cost 10: wonderland, canwefixit and
		// higherfurther. A demo, so they are written here; real users set
		// theirs with POST /users.
		`INSERT INTO user_passwords (user_id, hash) VALUES
			('usr_alice', '$2a$10$VgXg.MRrh5KppMrljKIkcOnF1.GnyrP5xVUInoobOVg2nj44Ri8iS'),
			('usr_bob', '$2a$10$EkzJztKMKS8zfQQAVpzLVu1LxkzWhTGPDYXDI.UM3nOTn749SWtSC'),
			('usr_carol', '$2a$10$PdX.5Tt.OwY6dzBow1BtoeDxIoTPM6sC3/Wr37U9B3dqXi0vmdry6')
		ON CONFLICT DO NOTHING`,
	},
}

type user struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

type usersService struct {
	d        deps
	store    *Store
	sessions *session.Manager
	// dummyHash is compared against when the email is unknown or has no
	// password, so that a wrong email takes as long as a wrong password
	// and the answer's timing does not tell which emails have accounts.
	dummyHash []byte
}

// newUsers keeps sessions in Redis when there is one, else in the users
// database (session.SQLStore), which every users instance shares: a login
// on one instance is seen by all.
func newUsers(d deps) (service, func(), error) {
	var (
		store   session.Store
		closeFn = func() {}
	)
	if d.redis != nil {
		store = session.NewRedisStore(d.redis, session.RedisOptions{Prefix: "shop:session:"})
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dialect := "sqlite"
		if d.store.Postgres {
			dialect = "postgres"
		}
		ss, err := session.NewSQLStore(ctx, d.store.DB, session.SQLOptions{Dialect: dialect})
		if err != nil {
			return nil, nil, err
		}
		store, closeFn = ss, func() { ss.Close() }
	}
	m := session.New(store)
	m.ErrorFunc = sessionError
	if d.secureCookies {
		m.Cookie.Secure = session.SecureAlways
	}
	dummy, err := d.hashPassword("not anyone's password")
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return &usersService{d: d, store: d.store, sessions: m, dummyHash: []byte(dummy)}, closeFn, nil
}

func (s *usersService) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", handle(s.list))
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{id}", handle(s.get))
	// Only these three load a session: the others never touch the store.
	mux.Handle("POST /login", s.sessions.LoadAndSave(handle(s.login)))
	mux.Handle("GET /me", s.sessions.LoadAndSave(handle(s.me)))
	mux.Handle("POST /logout", s.sessions.LoadAndSave(handle(s.logout)))
}

func (s *usersService) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	rows, err := s.store.DB.QueryContext(r.Context(),
		`SELECT id, name, email, created_at FROM users ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return fmt.Errorf("listing users: %w", err)
	}
	defer rows.Close()
	users := []user{}
	for rows.Next() {
		var u user
		if err := rows.Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt); err != nil {
			return fmt.Errorf("listing users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing users: %w", err)
	}
	writeJSON(w, http.StatusOK, users)
	return nil
}

func (s *usersService) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Password string `json:"password"` // optional: without one, the user cannot log in
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	name, err := validName(in.Name)
	if err != nil {
		return err
	}
	email, err := validEmail(in.Email)
	if err != nil {
		return err
	}
	var hash string
	if in.Password != "" {
		if err := validPassword(in.Password); err != nil {
			return err
		}
		if hash, err = s.d.hashPassword(in.Password); err != nil {
			return fmt.Errorf("hashing a password: %w", err)
		}
	}
	u := user{ID: newID("usr"), Name: name, Email: email, CreatedAt: now()}
	err = s.store.inTx(r.Context(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(r.Context(),
			`INSERT INTO users (id, name, email, created_at) VALUES ($1, $2, $3, $4)`,
			u.ID, u.Name, u.Email, u.CreatedAt); err != nil {
			return err
		}
		if hash == "" {
			return nil
		}
		_, err := tx.ExecContext(r.Context(), `INSERT INTO user_passwords (user_id, hash) VALUES ($1, $2)`, u.ID, hash)
		return err
	})
	if isUniqueViolation(err) {
		return errorf(http.StatusConflict, "email", "a user with email %s already exists", email)
	}
	if err != nil {
		return fmt.Errorf("creating a user: %w", err)
	}
	w.Header().Set("Location", "/users/"+u.ID)
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *usersService) get(w http.ResponseWriter, r *http.Request) error {
	u, err := s.find(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *usersService) find(ctx context.Context, id string) (user, error) {
	var u user
	err := s.store.DB.QueryRowContext(ctx,
		`SELECT id, name, email, created_at FROM users WHERE id = $1`, id).
		Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return u, notFound("no user %q", id)
	}
	if err != nil {
		return u, fmt.Errorf("reading user %s: %w", id, err)
	}
	return u, nil
}

// errBadLogin is the one answer to a failed login, whatever was wrong.
var errBadLogin = errorf(http.StatusUnauthorized, "", "the email or the password is wrong")

// login checks the email and password and ties the session to the user,
// which renews its token (no session fixation: a token from before the
// login is dead after it).
func (s *usersService) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Email) == "" {
		return badRequest("email", "email is required")
	}
	if in.Password == "" {
		return badRequest("password", "password is required")
	}
	var id, hash string
	err := s.store.DB.QueryRowContext(r.Context(),
		`SELECT u.id, p.hash FROM users u JOIN user_passwords p ON p.user_id = u.id WHERE u.email = $1`,
		strings.ToLower(strings.TrimSpace(in.Email))).Scan(&id, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(in.Password))
		return errBadLogin
	case err != nil:
		return fmt.Errorf("reading the password of %s: %w", in.Email, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(in.Password)) != nil {
		return errBadLogin
	}
	u, err := s.find(r.Context(), id)
	if err != nil {
		return err
	}
	if err := session.FromContext(r.Context()).SetUser(r.Context(), u.ID); err != nil {
		return fmt.Errorf("logging in %s: %w", u.ID, err)
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// me answers the logged-in user, 401 without a session.
func (s *usersService) me(w http.ResponseWriter, r *http.Request) error {
	id := session.FromContext(r.Context()).UserID()
	if id == "" {
		return errorf(http.StatusUnauthorized, "", "not logged in: POST /users/login first")
	}
	u, err := s.find(r.Context(), id)
	var missing *apiError
	if errors.As(err, &missing) && missing.Status == http.StatusNotFound {
		return errorf(http.StatusUnauthorized, "", "the session's user %s no longer exists", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// logout ends the session in the store (for every instance) and deletes
// the cookie; 401 when there is no session.
func (s *usersService) logout(w http.ResponseWriter, r *http.Request) error {
	sess := session.FromContext(r.Context())
	id := sess.UserID()
	if id == "" {
		return errorf(http.StatusUnauthorized, "", "not logged in")
	}
	if err := sess.Destroy(r.Context()); err != nil {
		return fmt.Errorf("logging out %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out", "user_id": id})
	return nil
}

// validPassword: 8 to 72 bytes (bcrypt reads no more than 72).
func validPassword(pw string) error {
	switch n := len(pw); {
	case n < 8:
		return badRequest("password", "password must be at least 8 characters long")
	case n > 72:
		return badRequest("password", "password is %d bytes long; at most 72 are allowed", n)
	}
	return nil
}

// validName trims s and checks it is 1 to 100 characters, the rule for user
// and product names alike.
func validName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", badRequest("name", "name is required")
	case n > 100:
		return "", badRequest("name", "name is %d characters long; at most 100 are allowed", n)
	}
	return s, nil
}

// validEmail accepts a bare address (net/mail would also take
// "Alice <alice@example.com>", which is not an email field's value) and
// returns it lowercased.
func validEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", badRequest("email", "email is required")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || !strings.Contains(s, "@") || len(s) > 254 {
		return "", badRequest("email", "%q is not a valid email address", s)
	}
	return strings.ToLower(s), nil
}
