package main

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"unicode/utf8"
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
	},
	seed: []string{
		`INSERT INTO users (id, name, email, created_at) VALUES
			('usr_alice', 'Alice Liddell', 'alice@example.com', '2024-01-01T00:00:00.000000Z'),
			('usr_bob', 'Bob Builder', 'bob@example.com', '2024-01-01T00:00:01.000000Z'),
			('usr_carol', 'Carol Danvers', 'carol@example.com', '2024-01-01T00:00:02.000000Z')
		ON CONFLICT DO NOTHING`,
	},
}

type user struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

type usersService struct{ store *Store }

func (s *usersService) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", handle(s.list))
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{id}", handle(s.get))
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
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
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
	u := user{ID: newID("usr"), Name: name, Email: email, CreatedAt: now()}
	_, err = s.store.DB.ExecContext(r.Context(),
		`INSERT INTO users (id, name, email, created_at) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Name, u.Email, u.CreatedAt)
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
	id := r.PathValue("id")
	var u user
	err := s.store.DB.QueryRowContext(r.Context(),
		`SELECT id, name, email, created_at FROM users WHERE id = $1`, id).
		Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("no user %q", id)
	}
	if err != nil {
		return fmt.Errorf("reading user %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, u)
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
