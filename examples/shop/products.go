package main

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
)

// maxPriceCents keeps every order total far from int64 overflow: 100 items
// of 1000 units at this price are 10^14 cents.
const maxPriceCents = 1_000_000_000 // $10 million

var productsSchema = schema{
	ddl: []string{
		`CREATE TABLE IF NOT EXISTS products (
			id          TEXT PRIMARY KEY,
			name        TEXT NOT NULL,
			price_cents BIGINT NOT NULL CHECK (price_cents > 0),
			stock       BIGINT NOT NULL CHECK (stock >= 0),
			created_at  TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS products_created_at ON products (created_at)`,
	},
	seed: []string{
		`INSERT INTO products (id, name, price_cents, stock, created_at) VALUES
			('prd_keyboard', 'Mechanical keyboard', 4999, 100, '2024-01-01T00:00:00.000000Z'),
			('prd_mouse', 'Wireless mouse', 2499, 250, '2024-01-01T00:00:01.000000Z'),
			('prd_monitor', '27-inch monitor', 27999, 40, '2024-01-01T00:00:02.000000Z'),
			('prd_cable', 'USB-C cable', 999, 1000, '2024-01-01T00:00:03.000000Z')
		ON CONFLICT DO NOTHING`,
	},
}

type product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
	CreatedAt  string `json:"created_at"`
}

type productsService struct{ store *Store }

func (s *productsService) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", handle(s.list))
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{id}", handle(s.get))
}

func (s *productsService) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	rows, err := s.store.DB.QueryContext(r.Context(),
		`SELECT id, name, price_cents, stock, created_at FROM products ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return fmt.Errorf("listing products: %w", err)
	}
	defer rows.Close()
	products := []product{}
	for rows.Next() {
		var p product
		if err := rows.Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock, &p.CreatedAt); err != nil {
			return fmt.Errorf("listing products: %w", err)
		}
		products = append(products, p)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing products: %w", err)
	}
	writeJSON(w, http.StatusOK, products)
	return nil
}

func (s *productsService) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name       string `json:"name"`
		PriceCents int64  `json:"price_cents"`
		Stock      int64  `json:"stock"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	name, err := validName(in.Name)
	if err != nil {
		return err
	}
	if in.PriceCents <= 0 || in.PriceCents > maxPriceCents {
		return badRequest("price_cents", "price_cents must be from 1 to %d, not %d", maxPriceCents, in.PriceCents)
	}
	if in.Stock < 0 {
		return badRequest("stock", "stock must be 0 or more, not %d", in.Stock)
	}
	p := product{ID: newID("prd"), Name: name, PriceCents: in.PriceCents, Stock: in.Stock, CreatedAt: now()}
	_, err = s.store.DB.ExecContext(r.Context(),
		`INSERT INTO products (id, name, price_cents, stock, created_at) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.Name, p.PriceCents, p.Stock, p.CreatedAt)
	if err != nil {
		return fmt.Errorf("creating a product: %w", err)
	}
	w.Header().Set("Location", "/products/"+p.ID)
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *productsService) get(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var p product
	err := s.store.DB.QueryRowContext(r.Context(),
		`SELECT id, name, price_cents, stock, created_at FROM products WHERE id = $1`, id).
		Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("no product %q", id)
	}
	if err != nil {
		return fmt.Errorf("reading product %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
