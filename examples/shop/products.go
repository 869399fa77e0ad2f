package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/herdhq/herd/cache"
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
		// A reservation is the stock an order took, kept so that a retry
		// of the same order takes nothing more and a release gives back
		// exactly what was taken.
		`CREATE TABLE IF NOT EXISTS reservations (
			order_id    TEXT PRIMARY KEY,
			status      TEXT NOT NULL,
			created_at  TEXT NOT NULL,
			released_at TEXT
		)`,
		`CREATE TABLE IF NOT EXISTS reservation_items (
			order_id    TEXT NOT NULL REFERENCES reservations (order_id),
			product_id  TEXT NOT NULL,
			quantity    BIGINT NOT NULL CHECK (quantity > 0),
			price_cents BIGINT NOT NULL,
			PRIMARY KEY (order_id, product_id)
		)`,
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

// Without Redis each instance's L1 is its own and hears of no other
// instance's writes, so it keeps values briefly: after a PATCH on one
// instance, another serves the old value for at most this long. With
// Redis every write evicts the key from every instance's L1 at once, and
// L1 keeps values for the cache's default minute.
const localOnlyTTL = 2 * time.Second

type productsService struct {
	store *Store
	// byID caches GET /products/{id}, "not found" included (negative
	// caching: a flood of requests for a missing id reaches the database
	// once per NotFoundTTL). lists caches GET /products by page size and is
	// dropped whole (InvalidateAll, O(1)) on any write.
	byID  *cache.Cache[product]
	lists *cache.Cache[[]product]
}

func newProducts(d deps) (service, func(), error) {
	opts := cache.Options{Redis: d.redis, LocalTTL: d.localTTL}
	if d.redis == nil && opts.LocalTTL == 0 {
		opts.LocalTTL, opts.NotFoundTTL = localOnlyTTL, localOnlyTTL
	}
	opts.Name = "shop:products"
	byID, err := cache.New[product](opts)
	if err != nil {
		return nil, nil, err
	}
	opts.Name = "shop:product-lists"
	lists, err := cache.New[[]product](opts)
	if err != nil {
		byID.Close()
		return nil, nil, err
	}
	s := &productsService{store: d.store, byID: byID, lists: lists}
	return s, func() { byID.Close(); lists.Close() }, nil
}

func (s *productsService) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", handle(s.list))
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{id}", handle(s.get))
	mux.HandleFunc("PATCH /{id}", handle(s.patch))
	mux.HandleFunc("POST /reservations", handle(s.reserve))
	mux.HandleFunc("POST /reservations/{order_id}/release", handle(s.release))
}

func (s *productsService) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	products, err := s.lists.Get(r.Context(), "limit:"+strconv.Itoa(limit), func(ctx context.Context, _ string) ([]product, error) {
		return s.loadList(ctx, limit)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, products)
	return nil
}

func (s *productsService) loadList(ctx context.Context, limit int) ([]product, error) {
	rows, err := s.store.DB.QueryContext(ctx,
		`SELECT id, name, price_cents, stock, created_at FROM products ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	defer rows.Close()
	products := []product{}
	for rows.Next() {
		var p product
		if err := rows.Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock, &p.CreatedAt); err != nil {
			return nil, fmt.Errorf("listing products: %w", err)
		}
		products = append(products, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	return products, nil
}

func (s *productsService) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name       string `json:"name"`
		PriceCents int64  `json:"price_cents"`
		Stock      int64  `json:"stock"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	name, err := validName(in.Name)
	if err != nil {
		return err
	}
	if err := validPrice(in.PriceCents); err != nil {
		return err
	}
	if err := validStock(in.Stock); err != nil {
		return err
	}
	p := product{ID: newID("prd"), Name: name, PriceCents: in.PriceCents, Stock: in.Stock, CreatedAt: now()}
	_, err = s.store.DB.ExecContext(r.Context(),
		`INSERT INTO products (id, name, price_cents, stock, created_at) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.Name, p.PriceCents, p.Stock, p.CreatedAt)
	if err != nil {
		return fmt.Errorf("creating a product: %w", err)
	}
	s.changed(r.Context(), p.ID) // lists, and a "not found" someone cached
	w.Header().Set("Location", "/products/"+p.ID)
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func validPrice(c int64) error {
	if c <= 0 || c > maxPriceCents {
		return badRequest("price_cents", "price_cents must be from 1 to %d, not %d", maxPriceCents, c)
	}
	return nil
}

func validStock(n int64) error {
	if n < 0 {
		return badRequest("stock", "stock must be 0 or more, not %d", n)
	}
	return nil
}

// get reads through the cache: L1, then Redis (with REDIS_URL), then the
// database, one load per id at a time across the fleet.
func (s *productsService) get(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validID(id) { // never a cache key
		return notFound("no product %q", id)
	}
	p, err := s.byID.Get(r.Context(), id, s.load)
	if errors.Is(err, cache.ErrNotFound) {
		return notFound("no product %q", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// load is the cache's loader: the row, or cache.ErrNotFound.
func (s *productsService) load(ctx context.Context, id string) (product, error) {
	var p product
	err := s.store.DB.QueryRowContext(ctx,
		`SELECT id, name, price_cents, stock, created_at FROM products WHERE id = $1`, id).
		Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("product %s: %w", id, cache.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("reading product %s: %w", id, err)
	}
	return p, nil
}

// patch changes a product's price or stock (or both), then evicts it from
// every instance's cache: the next GET anywhere reads the new row.
func (s *productsService) patch(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var in struct {
		PriceCents *int64 `json:"price_cents"`
		Stock      *int64 `json:"stock"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.PriceCents == nil && in.Stock == nil {
		return badRequest("", "give price_cents, stock or both")
	}
	if in.PriceCents != nil {
		if err := validPrice(*in.PriceCents); err != nil {
			return err
		}
	}
	if in.Stock != nil {
		if err := validStock(*in.Stock); err != nil {
			return err
		}
	}
	var p product
	// COALESCE keeps the column a nil field does not change.
	err := s.store.DB.QueryRowContext(r.Context(),
		`UPDATE products SET price_cents = COALESCE($1, price_cents), stock = COALESCE($2, stock) WHERE id = $3
		RETURNING id, name, price_cents, stock, created_at`, in.PriceCents, in.Stock, id).
		Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("no product %q", id)
	}
	if err != nil {
		return fmt.Errorf("updating product %s: %w", id, err)
	}
	s.changed(r.Context(), id)
	writeJSON(w, http.StatusOK, p)
	return nil
}

// changed evicts products ids and every cached list, in every instance.
// It runs after the database committed: a Redis that cannot be reached
// now gets the invalidation when it is back (package cache remembers it),
// and the answer does not fail for it, since the write is done.
func (s *productsService) changed(ctx context.Context, ids ...string) {
	var errs []error
	for _, id := range ids {
		errs = append(errs, s.byID.Delete(ctx, id))
	}
	errs = append(errs, s.lists.InvalidateAll(ctx))
	if err := errors.Join(errs...); err != nil {
		slog.WarnContext(ctx, "invalidating the products cache", "products", ids, "err", err)
	}
}

// reservation is the stock an order holds: POST /products/reservations.
type reservation struct {
	OrderID string            `json:"order_id"`
	Status  string            `json:"status"` // held or released
	Items   []reservationItem `json:"items"`
}

type reservationItem struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// reserve takes the stock of an order's items, all or nothing, and
// answers each item's price as the database had it then. Taking stock is
// one conditional UPDATE per product (stock = stock - q WHERE stock >= q)
// in one transaction: the row lock (PostgreSQL) or the write lock (SQLite,
// BEGIN IMMEDIATE) orders concurrent orders, and the condition is checked
// against the latest committed stock, so stock never goes below zero and
// N concurrent orders for M < N in stock leave exactly M of them placed.
// Products are updated in id order, so two orders never deadlock.
//
// It is idempotent on order_id: a repeat of a held reservation answers it
// (200) and takes nothing; a repeat of a released one takes the stock
// again.
func (s *productsService) reserve(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		OrderID string        `json:"order_id"`
		Items   []itemRequest `json:"items"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if !validID(in.OrderID) {
		return badRequest("order_id", "order_id must be an id, not %q", in.OrderID)
	}
	if err := validItems(in.Items); err != nil {
		return err
	}
	// The quantity of each product, and the first item that named it (for
	// the field of an error).
	want := map[string]int64{}
	first := map[string]int{}
	for i, it := range in.Items {
		if _, ok := first[it.ProductID]; !ok {
			first[it.ProductID] = i
		}
		want[it.ProductID] += it.Quantity
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	ctx := r.Context()
	prices := map[string]int64{}
	var repeat bool
	err := s.store.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO reservations (order_id, status, created_at) VALUES ($1, 'held', $2) ON CONFLICT (order_id) DO NOTHING`,
			in.OrderID, now())
		if err != nil {
			return fmt.Errorf("reserving for order %s: %w", in.OrderID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("reserving for order %s: %w", in.OrderID, err)
		} else if n == 0 {
			status, err := s.lockReservation(ctx, tx, in.OrderID)
			if err != nil {
				return err
			}
			if status == "held" {
				repeat = true
				return nil
			}
			// Released before (its order failed): this retry takes the stock anew.
			if _, err := tx.ExecContext(ctx, `DELETE FROM reservation_items WHERE order_id = $1`, in.OrderID); err != nil {
				return fmt.Errorf("re-reserving for order %s: %w", in.OrderID, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE reservations SET status = 'held', released_at = NULL WHERE order_id = $1`, in.OrderID); err != nil {
				return fmt.Errorf("re-reserving for order %s: %w", in.OrderID, err)
			}
		}
		for _, id := range ids {
			q := want[id]
			var price int64
			err := tx.QueryRowContext(ctx,
				`UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1 RETURNING price_cents`, q, id).Scan(&price)
			if errors.Is(err, sql.ErrNoRows) {
				return s.shortOf(ctx, tx, id, q, first[id])
			}
			if err != nil {
				return fmt.Errorf("taking %d of product %s: %w", q, id, err)
			}
			prices[id] = price
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO reservation_items (order_id, product_id, quantity, price_cents) VALUES ($1, $2, $3, $4)`,
				in.OrderID, id, q, price); err != nil {
				return fmt.Errorf("reserving product %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if repeat {
		rv, err := s.findReservation(ctx, in.OrderID)
		if err != nil {
			return err
		}
		same := len(rv.Items) == len(want)
		for _, it := range rv.Items {
			prices[it.ProductID] = it.PriceCents
			same = same && want[it.ProductID] == it.Quantity
		}
		if !same {
			// An order id reused for other items (a client's Idempotency-Key
			// sent with another body): the stock held is not this order's.
			return errorf(http.StatusConflict, "order_id", "order %s holds a reservation of other items", in.OrderID)
		}
	} else {
		s.changed(ctx, ids...)
	}
	out := reservation{OrderID: in.OrderID, Status: "held", Items: make([]reservationItem, len(in.Items))}
	for i, it := range in.Items {
		out.Items[i] = reservationItem{ProductID: it.ProductID, Quantity: it.Quantity, PriceCents: prices[it.ProductID]}
	}
	status := http.StatusCreated
	if repeat {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
	return nil
}

// lockReservation reads a reservation's status, locking its row on
// PostgreSQL (SQLite's transaction holds the write lock already).
func (s *productsService) lockReservation(ctx context.Context, tx *sql.Tx, orderID string) (string, error) {
	q := `SELECT status FROM reservations WHERE order_id = $1`
	if s.store.Postgres {
		q += ` FOR UPDATE`
	}
	var status string
	err := tx.QueryRowContext(ctx, q, orderID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("no reservation for order %q", orderID)
	}
	if err != nil {
		return "", fmt.Errorf("reading the reservation of order %s: %w", orderID, err)
	}
	return status, nil
}

// shortOf says why q of product id could not be taken: there is no such
// product (404), or not enough in stock (409).
func (s *productsService) shortOf(ctx context.Context, tx *sql.Tx, id string, q int64, item int) error {
	var stock int64
	err := tx.QueryRowContext(ctx, `SELECT stock FROM products WHERE id = $1`, id).Scan(&stock)
	if errors.Is(err, sql.ErrNoRows) {
		return &apiError{Status: http.StatusNotFound, Field: fmt.Sprintf("items[%d].product_id", item), Reason: fmt.Sprintf("no product %q", id)}
	}
	if err != nil {
		return fmt.Errorf("reading the stock of product %s: %w", id, err)
	}
	return &apiError{Status: http.StatusConflict, Field: fmt.Sprintf("items[%d].quantity", item),
		Reason: fmt.Sprintf("only %d of product %s in stock; the order asks for %d", stock, id, q)}
}

func (s *productsService) findReservation(ctx context.Context, orderID string) (reservation, error) {
	rv := reservation{OrderID: orderID, Items: []reservationItem{}}
	err := s.store.DB.QueryRowContext(ctx, `SELECT status FROM reservations WHERE order_id = $1`, orderID).Scan(&rv.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return rv, notFound("no reservation for order %q", orderID)
	}
	if err != nil {
		return rv, fmt.Errorf("reading the reservation of order %s: %w", orderID, err)
	}
	rows, err := s.store.DB.QueryContext(ctx,
		`SELECT product_id, quantity, price_cents FROM reservation_items WHERE order_id = $1 ORDER BY product_id`, orderID)
	if err != nil {
		return rv, fmt.Errorf("reading the reservation of order %s: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it reservationItem
		if err := rows.Scan(&it.ProductID, &it.Quantity, &it.PriceCents); err != nil {
			return rv, fmt.Errorf("reading the reservation of order %s: %w", orderID, err)
		}
		rv.Items = append(rv.Items, it)
	}
	if err := rows.Err(); err != nil {
		return rv, fmt.Errorf("reading the reservation of order %s: %w", orderID, err)
	}
	return rv, nil
}

// release gives back the stock of an order that was not placed (payment
// declined, the order could not be stored). Releasing a released
// reservation does nothing, so orders may repeat it.
func (s *productsService) release(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	orderID := r.PathValue("order_id")
	var given []string
	err := s.store.inTx(ctx, func(tx *sql.Tx) error {
		given = nil
		status, err := s.lockReservation(ctx, tx, orderID)
		if err != nil || status != "held" {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT product_id, quantity FROM reservation_items WHERE order_id = $1 ORDER BY product_id`, orderID)
		if err != nil {
			return fmt.Errorf("releasing order %s: %w", orderID, err)
		}
		back := map[string]int64{}
		for rows.Next() {
			var id string
			var q int64
			if err := rows.Scan(&id, &q); err != nil {
				rows.Close()
				return fmt.Errorf("releasing order %s: %w", orderID, err)
			}
			back[id] = q
			given = append(given, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("releasing order %s: %w", orderID, err)
		}
		for _, id := range given {
			if _, err := tx.ExecContext(ctx, `UPDATE products SET stock = stock + $1 WHERE id = $2`, back[id], id); err != nil {
				return fmt.Errorf("giving back product %s: %w", id, err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE reservations SET status = 'released', released_at = $1 WHERE order_id = $2`, now(), orderID)
		if err != nil {
			return fmt.Errorf("releasing order %s: %w", orderID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(given) > 0 {
		s.changed(ctx, given...)
	}
	rv, err := s.findReservation(ctx, orderID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rv)
	return nil
}
