package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herdhq/herd/dbrouter"
	"github.com/herdhq/herd/shard"
)

// orderRepo is where orders keeps its data. Three kinds:
//
//   - sqlRepo: the service's own database (SQLite, or PostgreSQL with
//     DATABASE_URL), as the shop has always run;
//   - routerRepo: a dbrouter.Router over DATABASE_URL (the primary) and
//     DATABASE_REPLICA_URLS: writes on the primary, reads on replicas that
//     have replayed what the reader wrote;
//   - shardRepo: orders spread by user id over SHOP_ORDER_SHARDS with
//     package shard.
type orderRepo interface {
	// insert stores an order and its items in one transaction.
	insert(ctx context.Context, o order) error
	// find reads one order with its items; a 404 *apiError if there is
	// none. fresh asks for the latest committed state (the primary), for
	// the idempotency check of a POST.
	find(ctx context.Context, id string, fresh bool) (order, error)
	// byUser reads a user's orders, newest first.
	byUser(ctx context.Context, userID string, limit int) ([]order, error)
	// all reads every user's orders, newest first. A non-nil
	// *shard.PartialError names the shards whose orders are missing.
	all(ctx context.Context, limit int) ([]order, *shard.PartialError, error)
	ping(ctx context.Context) error
	describe() string // for the start-up log, without passwords
	close()
}

// rowScanner is what the readers below need of *sql.Rows and pgx.Rows.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// dbConn is one place to run statements: a *sql.DB or *sql.Tx, a pgx.Tx,
// a dbrouter Reader. The same SQL (and so the same code) serves all.
type dbConn interface {
	exec(ctx context.Context, q string, args ...any) error
	query(ctx context.Context, q string, args ...any) (rowScanner, func(), error)
}

type sqlConn struct {
	c interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	}
}

func (c sqlConn) exec(ctx context.Context, q string, args ...any) error {
	_, err := c.c.ExecContext(ctx, q, args...)
	return err
}

func (c sqlConn) query(ctx context.Context, q string, args ...any) (rowScanner, func(), error) {
	rows, err := c.c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, func() { rows.Close() }, nil
}

// pgxConn runs statements on anything with pgx's Query (and Exec, for
// writes): a pgx.Tx, a dbrouter.Router, its Reader, a Pool.
type pgxConn struct {
	q interface {
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	}
}

func (c pgxConn) exec(ctx context.Context, q string, args ...any) error {
	ex, ok := c.q.(interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	})
	if !ok {
		return errors.New("orders: a write on a read-only connection")
	}
	_, err := ex.Exec(ctx, q, args...)
	return err
}

func (c pgxConn) query(ctx context.Context, q string, args ...any) (rowScanner, func(), error) {
	rows, err := c.q.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, rows.Close, nil
}

// insertOrder stores o with c, in the caller's transaction. bucket, when
// not nil, fills the shard_bucket column of the sharded tables.
func insertOrder(ctx context.Context, c dbConn, o order, bucket *int) error {
	cols, marks := "", ""
	var extra []any
	if bucket != nil {
		cols, marks, extra = ", shard_bucket", ", $7", []any{*bucket}
	}
	err := c.exec(ctx,
		`INSERT INTO orders (id, user_id, status, payment_id, total_cents, created_at`+cols+`) VALUES ($1, $2, $3, $4, $5, $6`+marks+`)`,
		append([]any{o.ID, o.UserID, o.Status, o.PaymentID, o.TotalCents, o.CreatedAt}, extra...)...)
	if err != nil {
		return fmt.Errorf("storing order %s: %w", o.ID, err)
	}
	if bucket != nil {
		marks = ", $6"
	}
	for i, it := range o.Items {
		err := c.exec(ctx,
			`INSERT INTO order_items (order_id, position, product_id, quantity, price_cents`+cols+`) VALUES ($1, $2, $3, $4, $5`+marks+`)`,
			append([]any{o.ID, i, it.ProductID, it.Quantity, it.PriceCents}, extra...)...)
		if err != nil {
			return fmt.Errorf("storing item %d of order %s: %w", i, o.ID, err)
		}
	}
	return nil
}

// orderSelect reads orders with their items in one statement (so one
// snapshot, also on a replica: an order is never seen without its items),
// the items as a JSON array in a text column. where filters orders o;
// the caller adds ORDER BY and LIMIT.
func orderSelect(postgres bool, where string) string {
	items := `json_group_array(json_object('product_id', i.product_id, 'quantity', i.quantity, 'price_cents', i.price_cents) ORDER BY i.position)`
	if postgres {
		items = `coalesce(json_agg(json_build_object('product_id', i.product_id, 'quantity', i.quantity, 'price_cents', i.price_cents) ORDER BY i.position), '[]'::json)`
	}
	return `SELECT o.id, o.user_id, o.status, o.payment_id, o.total_cents, o.created_at,
		CAST((SELECT ` + items + ` FROM order_items i WHERE i.order_id = o.id) AS TEXT) AS items
		FROM orders o WHERE ` + where
}

const newestFirst = ` ORDER BY o.created_at DESC, o.id DESC`

// readOrders runs an orderSelect and decodes its rows.
func readOrders(ctx context.Context, c dbConn, q string, args ...any) ([]order, error) {
	rows, done, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer done()
	orders := []order{}
	for rows.Next() {
		var (
			o     order
			items string
		)
		if err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.PaymentID, &o.TotalCents, &o.CreatedAt, &items); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
			return nil, fmt.Errorf("decoding the items of order %s: %w", o.ID, err)
		}
		orders = append(orders, o)
	}
	return orders, rows.Err()
}

func oneOrder(orders []order, err error, id string) (order, error) {
	if err != nil {
		return order{}, fmt.Errorf("reading order %s: %w", id, err)
	}
	if len(orders) == 0 {
		return order{}, notFound("no order %q", id)
	}
	return orders[0], nil
}

// sqlRepo keeps orders in the service's own database.
type sqlRepo struct{ store *Store }

func (r *sqlRepo) insert(ctx context.Context, o order) error {
	return r.store.inTx(ctx, func(tx *sql.Tx) error { return insertOrder(ctx, sqlConn{tx}, o, nil) })
}

func (r *sqlRepo) find(ctx context.Context, id string, _ bool) (order, error) {
	orders, err := readOrders(ctx, sqlConn{r.store.DB}, orderSelect(r.store.Postgres, `o.id = $1`), id)
	return oneOrder(orders, err, id)
}

func (r *sqlRepo) byUser(ctx context.Context, userID string, limit int) ([]order, error) {
	orders, err := readOrders(ctx, sqlConn{r.store.DB}, orderSelect(r.store.Postgres, `o.user_id = $1`)+newestFirst+` LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing the orders of %s: %w", userID, err)
	}
	return orders, nil
}

func (r *sqlRepo) all(ctx context.Context, limit int) ([]order, *shard.PartialError, error) {
	orders, err := readOrders(ctx, sqlConn{r.store.DB}, orderSelect(r.store.Postgres, `true`)+newestFirst+` LIMIT $1`, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("listing all orders: %w", err)
	}
	return orders, nil, nil
}

func (r *sqlRepo) ping(ctx context.Context) error { return r.store.DB.PingContext(ctx) }
func (r *sqlRepo) describe() string               { return "the service's database" }
func (r *sqlRepo) close()                         {}

// routerRepo reads from replicas and writes to the primary. Three things
// keep a reader from missing its own order on a lagging replica:
//
//   - the token: a write under a request records the primary's LSN after
//     COMMIT in the request's token (dbrouter.Middleware sends it back in
//     Herd-Consistency-Token); a request that brings it back reads from a
//     replica only once it has replayed that far, else from the primary;
//   - the user's scope: orders are written and listed under the scope
//     "user:ID", so a user's listing is never older than the user's last
//     order, token or not (dbrouter's sticky store: this process's memory,
//     or Redis shared by every orders instance when REDIS_URL is set);
//   - a miss is asked of the primary: GET /orders/ID that a replica does
//     not have yet is read again on the primary before it is a 404.
type routerRepo struct {
	r       *dbrouter.Router
	primary string
	nrep    int
}

// openRouterRepo makes the router. sticky nil is dbrouter's in-memory
// store. A replica that is down now starts quarantined and joins when it
// answers.
func openRouterRepo(ctx context.Context, primary string, replicas []string, sticky dbrouter.StickyStore) (*routerRepo, error) {
	r, err := dbrouter.New(ctx, dbrouter.Config{
		Primary:  primary,
		Replicas: replicas,
		// 4 services × several instances share the server's connections.
		Pool:   dbrouter.PoolConfig{MaxConns: 5, MinConns: 1},
		Sticky: sticky,
		// A read whose token no replica has replayed waits this long for
		// one, then reads on the primary.
		TokenWait: 100 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("orders: connecting the primary and %d replicas: %w", len(replicas), err)
	}
	return &routerRepo{r: r, primary: redactURL(primary), nrep: len(replicas)}, nil
}

func userScope(ctx context.Context, userID string) context.Context {
	return dbrouter.WithScope(ctx, "user:"+userID)
}

func (r *routerRepo) insert(ctx context.Context, o order) error {
	return r.r.Tx(userScope(ctx, o.UserID), func(tx pgx.Tx) error { return insertOrder(ctx, pgxConn{tx}, o, nil) })
}

func (r *routerRepo) find(ctx context.Context, id string, fresh bool) (order, error) {
	q := orderSelect(true, `o.id = $1`)
	if !fresh {
		orders, err := readOrders(ctx, pgxConn{r.r.Read()}, q, id)
		if err != nil || len(orders) > 0 {
			return oneOrder(orders, err, id)
		}
	}
	orders, err := readOrders(ctx, pgxConn{r.r.Primary()}, q, id)
	return oneOrder(orders, err, id)
}

func (r *routerRepo) byUser(ctx context.Context, userID string, limit int) ([]order, error) {
	orders, err := readOrders(userScope(ctx, userID), pgxConn{r.r.Read()}, orderSelect(true, `o.user_id = $1`)+newestFirst+` LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing the orders of %s: %w", userID, err)
	}
	return orders, nil
}

// all may be as old as the replica it reads (within dbrouter's MaxLag),
// plus the request's token: an admin listing needs no more.
func (r *routerRepo) all(ctx context.Context, limit int) ([]order, *shard.PartialError, error) {
	orders, err := readOrders(ctx, pgxConn{r.r.Read()}, orderSelect(true, `true`)+newestFirst+` LIMIT $1`, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("listing all orders: %w", err)
	}
	return orders, nil, nil
}

func (r *routerRepo) ping(ctx context.Context) error { return r.r.Primary().Ping(ctx) }
func (r *routerRepo) describe() string {
	return fmt.Sprintf("%s with %d replicas (dbrouter)", r.primary, r.nrep)
}
func (r *routerRepo) close() { r.r.Close() }

// The sharded tables: orders' own, plus the bucket of its user in every
// row (package shard routes by it and moves buckets between shards). No
// foreign key from items to orders: a bucket move copies table by table.
var shardSchema = []string{
	`CREATE TABLE IF NOT EXISTS orders (
		id           TEXT PRIMARY KEY,
		user_id      TEXT NOT NULL,
		status       TEXT NOT NULL,
		payment_id   TEXT NOT NULL,
		total_cents  BIGINT NOT NULL,
		created_at   TEXT NOT NULL,
		shard_bucket INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS orders_user_created ON orders (user_id, created_at)`,
	`CREATE INDEX IF NOT EXISTS orders_bucket ON orders (shard_bucket)`,
	`CREATE TABLE IF NOT EXISTS order_items (
		order_id     TEXT NOT NULL,
		position     BIGINT NOT NULL,
		product_id   TEXT NOT NULL,
		quantity     BIGINT NOT NULL CHECK (quantity > 0),
		price_cents  BIGINT NOT NULL,
		shard_bucket INTEGER NOT NULL,
		PRIMARY KEY (order_id, position)
	)`,
	`CREATE INDEX IF NOT EXISTS order_items_bucket ON order_items (shard_bucket)`,
}

var shardTables = []shard.Table{
	{Name: "orders", Key: []string{"id"}},
	{Name: "order_items", Key: []string{"order_id", "position"}},
}

// shardRepo spreads orders over shards by user id: a user's orders live
// on one shard, so placing and listing them touches that shard alone;
// GET /orders/ID (an id does not say its user) and the admin listing ask
// every shard at once.
type shardRepo struct {
	db    *shard.DB
	pools []*dbrouter.Pool
	names []string
}

// shardName is the name of the i-th database of SHOP_ORDER_SHARDS. The map
// lives in the first.
func shardName(i int) string { return "orders-" + strconv.Itoa(i) }

// openShardRepo creates the tables on every shard and opens the map,
// creating it (1024 buckets spread evenly) on first start. Instances
// starting together take turns under an advisory lock on the map database.
func openShardRepo(ctx context.Context, urls []string) (_ *shardRepo, err error) {
	r := &shardRepo{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	conns := map[string]shard.Conn{}
	for i, u := range urls {
		p, err := dbrouter.NewPool(ctx, shardName(i), u, dbrouter.PoolConfig{MaxConns: 5, MinConns: 1})
		if err != nil {
			return nil, fmt.Errorf("orders: shard %s (%s): %w", shardName(i), redactURL(u), err)
		}
		r.pools = append(r.pools, p)
		r.names = append(r.names, shardName(i)+"="+redactURL(u))
		conns[shardName(i)] = p.Pgx()
	}
	lock, err := r.pools[0].Pgx().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("orders: shard map database: %w", err)
	}
	defer lock.Release()
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return nil, fmt.Errorf("orders: taking the shard migration lock: %w", err)
	}
	defer lock.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey)
	for i, p := range r.pools {
		for _, q := range shardSchema {
			if _, err := p.Exec(ctx, q); err != nil {
				return nil, fmt.Errorf("orders: shard %s: %s: %w", shardName(i), firstLine(q), err)
			}
		}
	}
	cfg := shard.Config{Map: conns[shardName(0)], Shards: conns, Tables: shardTables}
	r.db, err = shard.Open(ctx, cfg)
	if errors.Is(err, shard.ErrNoMap) {
		r.db, err = shard.Create(ctx, cfg, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("orders: opening the shard map: %w", err)
	}
	return r, nil
}

func (r *shardRepo) insert(ctx context.Context, o order) error {
	b := r.db.Bucket(o.UserID)
	return r.db.Tx(ctx, o.UserID, func(tx pgx.Tx) error { return insertOrder(ctx, pgxConn{tx}, o, &b) })
}

// find asks every shard. An order found is the answer even if another
// shard failed (an id is on one shard only); not found while a shard
// failed is a 503 naming it, never a 404 for an order that may be there.
func (r *shardRepo) find(ctx context.Context, id string, _ bool) (order, error) {
	res, err := r.db.QueryAll(ctx, shard.Query{
		SQL:          orderSelect(true, `o.shard_bucket = ANY($1) AND o.id = $2`),
		Args:         []any{id},
		ShardTimeout: 5 * time.Second,
		AllowPartial: true,
	})
	var pe *shard.PartialError
	if err != nil && !errors.As(err, &pe) {
		return order{}, fmt.Errorf("reading order %s: %w", id, err)
	}
	var rows [][]any
	if res != nil {
		rows = res.Rows
	}
	orders, err := ordersOf(rows)
	if err == nil && len(orders) == 0 && pe != nil {
		return order{}, errorf(http.StatusServiceUnavailable, "", "order %s may be on a shard that did not answer: %v", id, pe)
	}
	return oneOrder(orders, err, id)
}

func (r *shardRepo) byUser(ctx context.Context, userID string, limit int) ([]order, error) {
	var orders []order
	err := r.db.Read(ctx, userID, func(tx pgx.Tx) error {
		var err error
		orders, err = readOrders(ctx, pgxConn{tx}, orderSelect(true, `o.user_id = $1`)+newestFirst+` LIMIT $2`, userID, limit)
		return err
	})
	if err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "", "the shard of user %s did not answer: %v", userID, err)
	}
	return orders, nil
}

func (r *shardRepo) all(ctx context.Context, limit int) ([]order, *shard.PartialError, error) {
	res, err := r.db.QueryAll(ctx, shard.Query{
		SQL: orderSelect(true, `o.shard_bucket = ANY($1)`),
		// created_at, then id, both descending: newest first, as unsharded.
		OrderBy:      []shard.Order{{Column: 5, Desc: true}, {Column: 0, Desc: true}},
		Limit:        limit,
		ShardTimeout: 5 * time.Second,
		AllowPartial: true,
	})
	var pe *shard.PartialError
	if err != nil && !errors.As(err, &pe) {
		return nil, nil, fmt.Errorf("listing all orders: %w", err)
	}
	var rows [][]any
	if res != nil {
		rows = res.Rows
	}
	orders, derr := ordersOf(rows)
	if derr != nil {
		return nil, nil, fmt.Errorf("listing all orders: %w", derr)
	}
	return orders, pe, nil
}

// ordersOf decodes QueryAll's rows of an orderSelect.
func ordersOf(rows [][]any) ([]order, error) {
	orders := make([]order, 0, len(rows))
	for _, v := range rows {
		if len(v) != 7 {
			return nil, fmt.Errorf("a row of %d columns; want 7", len(v))
		}
		var o order
		var items string
		var ok [7]bool
		o.ID, ok[0] = v[0].(string)
		o.UserID, ok[1] = v[1].(string)
		o.Status, ok[2] = v[2].(string)
		o.PaymentID, ok[3] = v[3].(string)
		o.TotalCents, ok[4] = v[4].(int64)
		o.CreatedAt, ok[5] = v[5].(string)
		items, ok[6] = v[6].(string)
		for i, good := range ok {
			if !good {
				return nil, fmt.Errorf("column %d of an order is %T", i, v[i])
			}
		}
		if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
			return nil, fmt.Errorf("decoding the items of order %s: %w", o.ID, err)
		}
		orders = append(orders, o)
	}
	return orders, nil
}

func (r *shardRepo) ping(ctx context.Context) error { return r.pools[0].Ping(ctx) }
func (r *shardRepo) describe() string {
	return "shards " + strings.Join(r.names, ", ")
}
func (r *shardRepo) close() {
	for _, p := range r.pools {
		p.Close()
	}
}
