package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herdhq/herd/cache"
)

type Product struct {
	ID    string
	Price int
}

// The zero Options give an in-process cache: one load per key, then hits.
func Example() {
	products, err := cache.New[Product](cache.Options{Name: "products"})
	if err != nil {
		panic(err)
	}
	defer products.Close()
	load := func(ctx context.Context, id string) (Product, error) {
		fmt.Println("load", id)
		return Product{ID: id, Price: 100}, nil
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		p, _ := products.Get(ctx, "42", load)
		fmt.Println(p.ID, p.Price)
	}
	// Output:
	// load 42
	// 42 100
	// 42 100
	// 42 100
}

// A loader says "no such row" with ErrNotFound; the answer is cached too.
func Example_notFound() {
	c, _ := cache.New[Product](cache.Options{})
	defer c.Close()
	load := func(ctx context.Context, id string) (Product, error) {
		fmt.Println("query", id)
		return Product{}, fmt.Errorf("product %s: %w", id, cache.ErrNotFound)
	}
	for i := 0; i < 2; i++ {
		_, err := c.Get(context.Background(), "404", load)
		fmt.Println(errors.Is(err, cache.ErrNotFound))
	}
	// Output:
	// query 404
	// true
	// true
}

// WriteThrough stores first; a failed store leaves the cache as it was.
func ExampleCache_WriteThrough() {
	c, _ := cache.New[Product](cache.Options{})
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, "1", Product{ID: "1", Price: 10})
	err := c.WriteThrough(ctx, "1", Product{ID: "1", Price: 20}, func(ctx context.Context, p Product) error {
		return errors.New("db: deadlock")
	})
	p, _ := c.Get(ctx, "1", nil)
	fmt.Println(err, p.Price)
	err = c.WriteThrough(ctx, "1", Product{ID: "1", Price: 20}, func(ctx context.Context, p Product) error {
		return nil // UPDATE products SET price = ... succeeded
	})
	p, _ = c.Get(ctx, "1", nil)
	fmt.Println(err, p.Price)
	// Output:
	// db: deadlock 10
	// <nil> 20
}

// With Redis, the same calls share values, invalidations and leases across
// every process that uses the same Name.
func ExampleNew_redis() {
	// rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	// products, _ := cache.New[Product](cache.Options{Name: "products", Redis: rdb})
	// defer products.Close()
	// prometheus.MustRegister(products.Collector())
	// products.Delete(ctx, "42") // every process's L1 forgets it
}

// InvalidatePattern drops keys by glob, with SCAN and UNLINK.
func ExampleCache_InvalidatePattern() {
	c, _ := cache.New[int](cache.Options{})
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, "user:1", 1)
	c.Set(ctx, "user:2", 2)
	c.Set(ctx, "order:1", 3)
	c.InvalidatePattern(ctx, "user:*")
	_, err := c.Get(ctx, "user:1", func(context.Context, string) (int, error) { return 0, cache.ErrNotFound })
	o, _ := c.Get(ctx, "order:1", nil)
	fmt.Println(errors.Is(err, cache.ErrNotFound), o)
	// Output: true 3
}

// With StaleFor, an expired value is still returned when its load fails,
// with an error that says so: test ErrStale before giving up.
func ExampleStaleError() {
	c, _ := cache.New[Product](cache.Options{LocalTTL: 10 * time.Millisecond, Jitter: -1, StaleFor: time.Minute})
	defer c.Close()
	ctx := context.Background()
	c.Get(ctx, "1", func(context.Context, string) (Product, error) { return Product{ID: "1", Price: 10}, nil })
	time.Sleep(20 * time.Millisecond) // the value expires
	p, err := c.Get(ctx, "1", func(context.Context, string) (Product, error) {
		return Product{}, errors.New("db: connection refused")
	})
	if err != nil && !errors.Is(err, cache.ErrStale) {
		fmt.Println("failed:", err)
		return
	}
	fmt.Println(p.Price, errors.Is(err, cache.ErrStale))
	// Output: 10 true
}
