package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/herdhq/herd/svcclient"
)

// Orders is the one service that calls the others. Its data is only its own:
// it keeps the price each item had when ordered, not a reference into
// products, because the other services' tables may live in other databases.
var ordersSchema = schema{
	ddl: []string{
		`CREATE TABLE IF NOT EXISTS orders (
			id          TEXT PRIMARY KEY,
			user_id     TEXT NOT NULL,
			status      TEXT NOT NULL,
			payment_id  TEXT NOT NULL,
			total_cents BIGINT NOT NULL,
			created_at  TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS orders_user_created ON orders (user_id, created_at)`,
		`CREATE TABLE IF NOT EXISTS order_items (
			order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
			position    BIGINT NOT NULL,
			product_id  TEXT NOT NULL,
			quantity    BIGINT NOT NULL CHECK (quantity > 0),
			price_cents BIGINT NOT NULL,
			PRIMARY KEY (order_id, position)
		)`,
	},
}

const (
	maxItems    = 100
	maxQuantity = 1000
	// paymentTimeout bounds storing a paid order, and each refund. That
	// work is detached from the client's request: a client hanging up after
	// the card was charged must not leave the charge without its order or
	// refund. (svcclient bounds each call to another service by itself.)
	paymentTimeout = 15 * time.Second
	// productLookups is how many product calls one order makes at once.
	productLookups = 8
)

type orderItem struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

type order struct {
	ID         string      `json:"id"`
	UserID     string      `json:"user_id"`
	Items      []orderItem `json:"items"`
	TotalCents int64       `json:"total_cents"`
	Status     string      `json:"status"`
	PaymentID  string      `json:"payment_id"`
	CreatedAt  string      `json:"created_at"`
}

type ordersService struct {
	store *Store
	peers *svcclient.Client // users, products and payments, through herd's gateway
}

func (s *ordersService) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{$}", handle(s.list))
	mux.HandleFunc("GET /{id}", handle(s.get))
}

// create places an order: it checks the user and the products with their
// services, takes the payment, then stores the order. Nothing is stored
// unless the payment was taken, and a payment whose order could not be
// stored is refunded.
func (s *ordersService) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		UserID string `json:"user_id"`
		Items  []struct {
			ProductID string `json:"product_id"`
			Quantity  int64  `json:"quantity"`
		} `json:"items"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if !validID(in.UserID) {
		return badRequest("user_id", "user_id must be a user's id, not %q", in.UserID)
	}
	if len(in.Items) == 0 || len(in.Items) > maxItems {
		return badRequest("items", "items must list 1 to %d products, not %d", maxItems, len(in.Items))
	}
	id, err := orderID(r, in.UserID)
	if err != nil {
		return err
	}
	done, err := s.find(r.Context(), id)
	var missing *apiError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, done) // a repeat: the order is placed already
		return nil
	case !errors.As(err, &missing) || missing.Status != http.StatusNotFound:
		return err
	}
	o := order{ID: id, UserID: in.UserID, Status: "paid", Items: make([]orderItem, len(in.Items))}
	for i, it := range in.Items {
		if !validID(it.ProductID) {
			return badRequest(fmt.Sprintf("items[%d].product_id", i), "items[%d].product_id must be a product's id, not %q", i, it.ProductID)
		}
		if it.Quantity < 1 || it.Quantity > maxQuantity {
			return badRequest(fmt.Sprintf("items[%d].quantity", i), "items[%d].quantity must be from 1 to %d, not %d", i, maxQuantity, it.Quantity)
		}
		o.Items[i] = orderItem{ProductID: it.ProductID, Quantity: it.Quantity}
	}

	ctx := r.Context()
	var u user
	if err := s.peers.Get(ctx, "users", "/"+o.UserID, &u); err != nil {
		return peerError("users", err, "user_id", fmt.Sprintf("no user %q", o.UserID))
	}
	if err := s.price(ctx, o.Items); err != nil {
		return err
	}
	for _, it := range o.Items {
		o.TotalCents += it.PriceCents * it.Quantity
	}

	// The order id is the idempotency key: svcclient may then retry the POST
	// after a lost answer, and payments charges the order once however often
	// it arrives.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), paymentTimeout)
	defer cancel()
	ctx = svcclient.WithIdempotencyKey(ctx, o.ID)
	var pay payment
	req := paymentRequest{OrderID: o.ID, UserID: o.UserID, AmountCents: o.TotalCents}
	if err := s.peers.Post(ctx, "payments", "/", req, &pay); err != nil {
		var declined *svcclient.Error
		if errors.As(err, &declined) && declined.Status == http.StatusPaymentRequired {
			return errorf(http.StatusPaymentRequired, "", "%s", declined.Reason)
		}
		// Without an answer (a timeout, a 5xx, a lost connection) the
		// payment may have been captured: refund whatever this order paid.
		// (An open circuit sent nothing.)
		if status := svcclient.StatusOf(err); (status == 0 || status >= 500) && !errors.Is(err, svcclient.ErrCircuitOpen) {
			s.refundUnknown(ctx, o.ID)
		}
		return peerError("payments", err, "", "")
	}
	o.PaymentID = pay.ID
	o.CreatedAt = now()

	if err := s.insert(ctx, o); err != nil {
		// A failed COMMIT may still have committed: refund only an order
		// that is not there.
		if !s.stored(ctx, o.ID) {
			return s.compensate(ctx, o, err)
		}
	}
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
	return nil
}

// price fills in each item's price from products. Distinct products are
// looked up concurrently; the error reported is the first item's in order, so
// the answer does not depend on which call finished first.
func (s *ordersService) price(ctx context.Context, items []orderItem) error {
	type lookup struct {
		price int64
		err   error
	}
	found := map[string]*lookup{}
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, productLookups)
	)
	for _, it := range items {
		if found[it.ProductID] != nil {
			continue
		}
		l := &lookup{}
		found[it.ProductID] = l
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			var p product
			l.err = s.peers.Get(ctx, "products", "/"+it.ProductID, &p)
			l.price = p.PriceCents
		})
	}
	wg.Wait()
	for i := range items {
		l := found[items[i].ProductID]
		if l.err != nil {
			return peerError("products", l.err, fmt.Sprintf("items[%d].product_id", i), fmt.Sprintf("no product %q", items[i].ProductID))
		}
		items[i].PriceCents = l.price
	}
	return nil
}

// insert stores the order and its items in one transaction: an order is
// never seen without its items.
func (s *ordersService) insert(ctx context.Context, o order) error {
	return s.store.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO orders (id, user_id, status, payment_id, total_cents, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			o.ID, o.UserID, o.Status, o.PaymentID, o.TotalCents, o.CreatedAt)
		if err != nil {
			return fmt.Errorf("storing order %s: %w", o.ID, err)
		}
		for i, it := range o.Items {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO order_items (order_id, position, product_id, quantity, price_cents) VALUES ($1, $2, $3, $4, $5)`,
				o.ID, i, it.ProductID, it.Quantity, it.PriceCents)
			if err != nil {
				return fmt.Errorf("storing item %d of order %s: %w", i, o.ID, err)
			}
		}
		return nil
	})
}

// stored reports whether order id is in the database, read with a fresh
// deadline; when that fails too, it says no, and the payment is refunded.
func (s *ordersService) stored(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var n int
	err := s.store.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE id = $1`, id).Scan(&n)
	return err == nil && n == 1
}

// compensate refunds the payment of an order that could not be stored, so
// the customer is not charged for an order that does not exist. The refund
// is idempotent, which lets svcclient retry it.
func (s *ordersService) compensate(ctx context.Context, o order, cause error) error {
	log := slog.With("order_id", o.ID, "payment_id", o.PaymentID, "request_id", svcclient.RequestID(ctx))
	log.ErrorContext(ctx, "storing a paid order failed; refunding its payment", "err", cause)
	// A fresh deadline: the insert may have failed by using up the old one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), paymentTimeout)
	defer cancel()
	ctx = svcclient.WithIdempotencyKey(ctx, "refund-"+o.PaymentID)
	var refunded payment
	if err := s.peers.Post(ctx, "payments", "/"+o.PaymentID+"/refund", nil, &refunded); err != nil {
		log.ErrorContext(ctx, "refund failed: the payment is captured without an order", "err", err)
		return errorf(http.StatusInternalServerError, "",
			"the order could not be stored and refunding its payment %s failed; it needs a manual refund", o.PaymentID)
	}
	return errorf(http.StatusInternalServerError, "",
		"the order could not be stored; its payment %s was refunded", o.PaymentID)
}

// refundUnknown refunds the payment of order id, if payments took one, for
// a payment call whose outcome is unknown. It is best effort: if payments
// cannot be reached now, the log names the order to reconcile.
func (s *ordersService) refundUnknown(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), paymentTimeout)
	defer cancel()
	ctx = svcclient.WithIdempotencyKey(ctx, "refund-"+id)
	var refunded payment
	err := s.peers.Post(ctx, "payments", "/by-order/"+id+"/refund", nil, &refunded)
	switch {
	case err == nil:
		slog.WarnContext(ctx, "refunded a payment whose answer was lost", "order_id", id, "payment_id", refunded.ID)
	case svcclient.StatusOf(err) != http.StatusNotFound:
		slog.ErrorContext(ctx, "a payment's outcome is unknown and refunding it failed; reconcile this order", "order_id", id, "err", err)
	}
}

// peerError turns a failed call to another service into this service's
// answer: the service's 404 becomes a 400 on the input field that named the
// missing thing, a service that cannot be reached (connection refused, 502,
// 503, 504, open circuit) a 503 naming it, and anything else a 502.
func peerError(service string, err error, field, missing string) error {
	status := svcclient.StatusOf(err)
	switch {
	case status == http.StatusNotFound && field != "":
		return badRequest(field, "%s", missing)
	case status == 0 && errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "", "%s did not answer in time: %v", service, err)
	case errors.Is(err, svcclient.ErrCircuitOpen), status == 0,
		status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return errorf(http.StatusServiceUnavailable, "", "%s is unavailable: %v", service, err)
	default:
		return errorf(http.StatusBadGateway, "", "%s failed: %v", service, err)
	}
}

func (s *ordersService) get(w http.ResponseWriter, r *http.Request) error {
	o, err := s.find(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// find reads order id with its items; a 404 error if there is none.
func (s *ordersService) find(ctx context.Context, id string) (order, error) {
	var o order
	err := s.store.DB.QueryRowContext(ctx,
		`SELECT id, user_id, status, payment_id, total_cents, created_at FROM orders WHERE id = $1`, id).
		Scan(&o.ID, &o.UserID, &o.Status, &o.PaymentID, &o.TotalCents, &o.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return o, notFound("no order %q", id)
	}
	if err != nil {
		return o, fmt.Errorf("reading order %s: %w", id, err)
	}
	orders := []order{o}
	if err := s.loadItems(ctx, orders); err != nil {
		return o, err
	}
	return orders[0], nil
}

// orderID is a new order's id: random, or with an Idempotency-Key derived
// from it and the user, so that a client repeating a POST whose answer it
// lost gets the same order back instead of a second one.
func orderID(r *http.Request, userID string) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return newID("ord"), nil
	}
	if len(key) > 200 {
		return "", badRequest("", "the Idempotency-Key header is longer than 200 characters")
	}
	sum := sha256.Sum256([]byte(userID + "\x00" + key))
	return "ord_" + hex.EncodeToString(sum[:8]), nil
}

// list answers a user's orders, newest first. user_id is required: orders
// across all users is not something a client of this API needs.
func (s *ordersService) list(w http.ResponseWriter, r *http.Request) error {
	userID := r.URL.Query().Get("user_id")
	if userID == "" {
		return badRequest("user_id", "user_id is required, as in /orders?user_id=usr_alice")
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	rows, err := s.store.DB.QueryContext(r.Context(),
		`SELECT id, user_id, status, payment_id, total_cents, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return fmt.Errorf("listing the orders of %s: %w", userID, err)
	}
	defer rows.Close()
	orders := []order{}
	for rows.Next() {
		var o order
		if err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.PaymentID, &o.TotalCents, &o.CreatedAt); err != nil {
			return fmt.Errorf("listing the orders of %s: %w", userID, err)
		}
		orders = append(orders, o)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing the orders of %s: %w", userID, err)
	}
	if err := s.loadItems(r.Context(), orders); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, orders)
	return nil
}

// loadItems fills in the items of orders with one query.
func (s *ordersService) loadItems(ctx context.Context, orders []order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := make(map[string]*order, len(orders))
	marks := make([]string, len(orders))
	args := make([]any, len(orders))
	for i := range orders {
		orders[i].Items = []orderItem{}
		byID[orders[i].ID] = &orders[i]
		marks[i] = fmt.Sprintf("$%d", i+1)
		args[i] = orders[i].ID
	}
	rows, err := s.store.DB.QueryContext(ctx,
		`SELECT order_id, product_id, quantity, price_cents FROM order_items
		WHERE order_id IN (`+strings.Join(marks, ", ")+`) ORDER BY order_id, position`, args...)
	if err != nil {
		return fmt.Errorf("reading order items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			orderID string
			it      orderItem
		)
		if err := rows.Scan(&orderID, &it.ProductID, &it.Quantity, &it.PriceCents); err != nil {
			return fmt.Errorf("reading order items: %w", err)
		}
		o := byID[orderID]
		o.Items = append(o.Items, it)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading order items: %w", err)
	}
	return nil
}
