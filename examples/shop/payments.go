package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
)

// cardLimitCents stands in for a card network: larger amounts are declined.
const cardLimitCents = 500_000

// UNIQUE(order_id) is what makes taking a payment idempotent: however many
// times and on whichever instance orders retries, one order is charged once.
var paymentsSchema = schema{
	ddl: []string{
		`CREATE TABLE IF NOT EXISTS payments (
			id           TEXT PRIMARY KEY,
			order_id     TEXT NOT NULL UNIQUE,
			user_id      TEXT NOT NULL,
			amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
			status       TEXT NOT NULL,
			created_at   TEXT NOT NULL,
			refunded_at  TEXT
		)`,
	},
}

type payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id"`
	UserID      string `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"` // captured or refunded
	CreatedAt   string `json:"created_at"`
	RefundedAt  string `json:"refunded_at,omitempty"`
}

// paymentRequest is the body of POST /payments, which orders sends.
type paymentRequest struct {
	OrderID     string `json:"order_id"`
	UserID      string `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
}

type paymentsService struct{ store *Store }

func (s *paymentsService) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /{$}", handle(s.create))
	mux.HandleFunc("GET /{id}", handle(s.get))
	mux.HandleFunc("POST /{id}/refund", handle(s.refund))
	mux.HandleFunc("POST /by-order/{order_id}/refund", handle(s.refundOrder))
}

// create captures a payment for an order. Repeating it for the same order
// answers 200 with the payment already taken, so callers may retry it after
// a timeout without charging twice.
func (s *paymentsService) create(w http.ResponseWriter, r *http.Request) error {
	var in paymentRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	switch {
	case !validID(in.OrderID):
		return badRequest("order_id", "order_id must be an id (1 to 64 letters, digits, _ or -), not %q", in.OrderID)
	case !validID(in.UserID):
		return badRequest("user_id", "user_id must be an id (1 to 64 letters, digits, _ or -), not %q", in.UserID)
	case in.AmountCents <= 0:
		return badRequest("amount_cents", "amount_cents must be more than 0, not %d", in.AmountCents)
	case in.AmountCents > cardLimitCents:
		return errorf(http.StatusPaymentRequired, "amount_cents",
			"declined: %d cents is over the card limit of %d cents", in.AmountCents, cardLimitCents)
	}
	p := payment{ID: newID("pay"), OrderID: in.OrderID, UserID: in.UserID, AmountCents: in.AmountCents, Status: "captured", CreatedAt: now()}
	res, err := s.store.DB.ExecContext(r.Context(),
		`INSERT INTO payments (id, order_id, user_id, amount_cents, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING`,
		p.ID, p.OrderID, p.UserID, p.AmountCents, p.Status, p.CreatedAt)
	if err != nil {
		return fmt.Errorf("storing the payment for order %s: %w", in.OrderID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storing the payment for order %s: %w", in.OrderID, err)
	} else if n == 1 {
		w.Header().Set("Location", "/payments/"+p.ID)
		writeJSON(w, http.StatusCreated, p)
		return nil
	}

	// The order was paid before: a retry, unless it asks for something else.
	existing, err := s.find(r.Context(), "order_id", in.OrderID)
	if err != nil {
		return err
	}
	if existing.UserID != in.UserID || existing.AmountCents != in.AmountCents {
		return errorf(http.StatusConflict, "order_id",
			"order %s was already paid by %s for %d cents", in.OrderID, existing.UserID, existing.AmountCents)
	}
	writeJSON(w, http.StatusOK, existing)
	return nil
}

func (s *paymentsService) get(w http.ResponseWriter, r *http.Request) error {
	p, err := s.find(r.Context(), "id", r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// refund is idempotent: refunding a refunded payment answers it unchanged,
// so orders can repeat a compensation whose answer it did not get.
func (s *paymentsService) refund(w http.ResponseWriter, r *http.Request) error {
	return s.refundWhere(w, r, "id", r.PathValue("id"))
}

// refundOrder refunds the payment of an order, if there is one (404 if
// not): orders calls it when it cannot tell whether a payment went through.
func (s *paymentsService) refundOrder(w http.ResponseWriter, r *http.Request) error {
	return s.refundWhere(w, r, "order_id", r.PathValue("order_id"))
}

// refundWhere refunds the payment whose column (id or order_id) is value.
func (s *paymentsService) refundWhere(w http.ResponseWriter, r *http.Request, column, value string) error {
	_, err := s.store.DB.ExecContext(r.Context(),
		`UPDATE payments SET status = 'refunded', refunded_at = $1 WHERE `+column+` = $2 AND status <> 'refunded'`, now(), value)
	if err != nil {
		return fmt.Errorf("refunding the payment with %s %s: %w", column, value, err)
	}
	p, err := s.find(r.Context(), column, value)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// find reads the payment whose column (id or order_id) is value.
func (s *paymentsService) find(ctx context.Context, column, value string) (payment, error) {
	var (
		p          payment
		refundedAt sql.NullString
	)
	// column is one of two constants from this file, never input.
	err := s.store.DB.QueryRowContext(ctx,
		`SELECT id, order_id, user_id, amount_cents, status, created_at, refunded_at FROM payments WHERE `+column+` = $1`, value).
		Scan(&p.ID, &p.OrderID, &p.UserID, &p.AmountCents, &p.Status, &p.CreatedAt, &refundedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound("no payment with %s %q", column, value)
	}
	if err != nil {
		return p, fmt.Errorf("reading the payment with %s %s: %w", column, value, err)
	}
	p.RefundedAt = refundedAt.String
	return p, nil
}
