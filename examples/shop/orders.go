package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	// paymentTimeout bounds an order's work after its user was checked
	// (reserving, paying, storing), and each refund and release. That
	// work is detached from the client's request: a client hanging up after
	// the card was charged must not leave the charge without its order or
	// refund. (svcclient bounds each call to another service by itself.)
	paymentTimeout = 15 * time.Second
)

type orderItem struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// itemRequest is one line of an order as a client sends it to orders, and
// orders to products.
type itemRequest struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
}

// validItems checks the lines of an order: 1 to maxItems, each a product's
// id and a quantity from 1 to maxQuantity.
func validItems(items []itemRequest) error {
	if len(items) == 0 || len(items) > maxItems {
		return badRequest("items", "items must list 1 to %d products, not %d", maxItems, len(items))
	}
	for i, it := range items {
		if !validID(it.ProductID) {
			return badRequest(fmt.Sprintf("items[%d].product_id", i), "items[%d].product_id must be a product's id, not %q", i, it.ProductID)
		}
		if it.Quantity < 1 || it.Quantity > maxQuantity {
			return badRequest(fmt.Sprintf("items[%d].quantity", i), "items[%d].quantity must be from 1 to %d, not %d", i, maxQuantity, it.Quantity)
		}
	}
	return nil
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
	repo  orderRepo         // the orders database: plain, primary + replicas, or shards
	peers *svcclient.Client // users, products and payments, through herd's gateway
}

func newOrders(d deps) (service, func(), error) {
	repo := d.orders
	if repo == nil {
		repo = &sqlRepo{store: d.store}
	}
	return &ordersService{repo: repo, peers: d.peers}, nil, nil
}

func (s *ordersService) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{$}", handle(s.list))
	mux.HandleFunc("GET /{id}", handle(s.get))
	mux.HandleFunc("GET /users/{user_id}", handle(s.list))
	mux.HandleFunc("GET /admin/orders", handle(s.listAll))
}

// create places an order: it checks the user, reserves the stock (and
// learns the prices) with products, takes the payment, then stores the
// order. Nothing is stored unless the payment was taken; the stock of an
// order that is not stored is given back, and its payment refunded.
func (s *ordersService) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		UserID string        `json:"user_id"`
		Items  []itemRequest `json:"items"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if !validID(in.UserID) {
		return badRequest("user_id", "user_id must be a user's id, not %q", in.UserID)
	}
	if err := validItems(in.Items); err != nil {
		return err
	}
	id, err := orderID(r, in.UserID)
	if err != nil {
		return err
	}
	done, err := s.repo.find(r.Context(), id, true)
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
		o.Items[i] = orderItem{ProductID: it.ProductID, Quantity: it.Quantity}
	}

	ctx := r.Context()
	var u user
	if err := s.peers.Get(ctx, "users", "/"+o.UserID, &u); err != nil {
		return peerError("users", err, "user_id", fmt.Sprintf("no user %q", o.UserID))
	}

	// From here on the work is detached from the client's request: a
	// client hanging up after its stock was taken or its card charged must
	// not leave them so without an order. The order id is the idempotency
	// key of every call: svcclient may then retry a POST after a lost
	// answer, and products and payments act on the order once however
	// often it arrives.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), paymentTimeout)
	defer cancel()
	if err := s.reserve(ctx, &o); err != nil {
		return err
	}
	for _, it := range o.Items {
		o.TotalCents += it.PriceCents * it.Quantity
	}

	var pay payment
	req := paymentRequest{OrderID: o.ID, UserID: o.UserID, AmountCents: o.TotalCents}
	if err := s.peers.Post(svcclient.WithIdempotencyKey(ctx, o.ID), "payments", "/", req, &pay); err != nil {
		var declined *svcclient.Error
		if errors.As(err, &declined) && declined.Status == http.StatusPaymentRequired {
			s.release(ctx, o.ID)
			return errorf(http.StatusPaymentRequired, "", "%s", declined.Reason)
		}
		// Without an answer (a timeout, a 5xx, a lost connection) the
		// payment may have been captured: refund whatever this order paid.
		// (An open circuit sent nothing.)
		if status := svcclient.StatusOf(err); (status == 0 || status >= 500) && !errors.Is(err, svcclient.ErrCircuitOpen) {
			s.refundUnknown(ctx, o.ID)
		}
		s.release(ctx, o.ID)
		return peerError("payments", err, "", "")
	}
	o.PaymentID = pay.ID
	o.CreatedAt = now()

	if err := s.repo.insert(ctx, o); err != nil {
		// A failed COMMIT may still have committed: refund only an order
		// that is not there.
		if !s.stored(ctx, o.ID) {
			s.release(ctx, o.ID)
			return s.compensate(ctx, o, err)
		}
	}
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
	return nil
}

// reserve takes the order's stock from products, which answers each
// item's price as its database has it (not a cached price). A product
// that does not exist is a 400 on the item's product_id, too little in
// stock a 409 on its quantity; a reservation whose outcome is unknown is
// released.
func (s *ordersService) reserve(ctx context.Context, o *order) error {
	in := struct {
		OrderID string        `json:"order_id"`
		Items   []itemRequest `json:"items"`
	}{OrderID: o.ID, Items: make([]itemRequest, len(o.Items))}
	for i, it := range o.Items {
		in.Items[i] = itemRequest{it.ProductID, it.Quantity}
	}
	var rv reservation
	err := s.peers.Post(svcclient.WithIdempotencyKey(ctx, "reserve-"+o.ID), "products", "/reservations", in, &rv)
	var pe *svcclient.Error
	switch {
	case err == nil:
	case errors.As(err, &pe) && pe.Status == http.StatusNotFound && pe.Field != "":
		return badRequest(pe.Field, "%s", pe.Reason)
	case errors.As(err, &pe) && pe.Status == http.StatusConflict && pe.Field != "":
		return errorf(http.StatusConflict, pe.Field, "%s", pe.Reason)
	default:
		if status := svcclient.StatusOf(err); (status == 0 || status >= 500) && !errors.Is(err, svcclient.ErrCircuitOpen) {
			s.release(ctx, o.ID)
		}
		return peerError("products", err, "", "")
	}
	if len(rv.Items) != len(o.Items) {
		s.release(ctx, o.ID)
		return errorf(http.StatusBadGateway, "", "products answered %d items for an order of %d", len(rv.Items), len(o.Items))
	}
	for i := range o.Items {
		o.Items[i].PriceCents = rv.Items[i].PriceCents
	}
	return nil
}

// release gives an order's stock back to products, for an order that was
// not placed. It is best effort: when products cannot be reached, the log
// names the order whose stock stays held.
func (s *ordersService) release(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), paymentTimeout)
	defer cancel()
	var rv reservation
	err := s.peers.Post(svcclient.WithIdempotencyKey(ctx, "release-"+id), "products", "/reservations/"+id+"/release", nil, &rv)
	if err != nil && svcclient.StatusOf(err) != http.StatusNotFound {
		slog.ErrorContext(ctx, "releasing the stock of an order that was not placed failed; release it by hand", "order_id", id, "err", err)
	}
}

// stored reports whether order id is in the database, read with a fresh
// deadline; when that fails too, it says no, and the payment is refunded.
func (s *ordersService) stored(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := s.repo.find(ctx, id, true)
	return err == nil
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
	o, err := s.repo.find(r.Context(), r.PathValue("id"), false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
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

// list answers a user's orders, newest first: GET /orders?user_id=ID or
// GET /orders/users/ID. With shards it reads the user's shard alone.
func (s *ordersService) list(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("user_id")
	if userID == "" {
		userID = r.URL.Query().Get("user_id")
	}
	if userID == "" {
		return badRequest("user_id", "user_id is required, as in /orders?user_id=usr_alice")
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	orders, err := s.repo.byUser(r.Context(), userID, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, orders)
	return nil
}

// allOrders is the answer of GET /orders/admin/orders.
type allOrders struct {
	Orders []order `json:"orders"`
	// FailedShards names the shards that did not answer, with why; their
	// orders are missing from Orders. Empty unless sharded.
	FailedShards []failedShard `json:"failed_shards"`
}

type failedShard struct {
	Shard string `json:"shard"`
	Error string `json:"error"`
}

// listAll answers every user's orders, newest first (?limit=, default 50),
// for an admin. Sharded, it asks every shard at once (shard.QueryAll,
// LIMIT pushed down, merged in order) and tells the truth about shards
// that failed: 200 when all answered; 206 Partial Content with the other
// shards' orders and failed_shards when some did not; 503 with
// failed_shards when none did.
func (s *ordersService) listAll(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	orders, failed, err := s.repo.all(r.Context(), limit)
	if err != nil {
		return err
	}
	out := allOrders{Orders: orders, FailedShards: []failedShard{}}
	status := http.StatusOK
	if failed != nil {
		for _, name := range failed.Failed() {
			out.FailedShards = append(out.FailedShards, failedShard{Shard: name, Error: failed.Errors[name].Error()})
		}
		status = http.StatusPartialContent
		if len(out.FailedShards) == failed.Shards {
			writeJSON(w, http.StatusServiceUnavailable, struct {
				errorBody
				FailedShards []failedShard `json:"failed_shards"`
			}{errorBody{Error: http.StatusText(http.StatusServiceUnavailable), Reason: failed.Error(), RequestID: svcclient.RequestID(r.Context())}, out.FailedShards})
			return nil
		}
	}
	writeJSON(w, status, out)
	return nil
}
