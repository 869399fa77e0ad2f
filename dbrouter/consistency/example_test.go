package consistency_test

import (
	"context"
	"fmt"

	"github.com/herdhq/herd/dbrouter/consistency"
)

func Example() {
	// A request's context gets a holder with the caller's token...
	ctx := consistency.WithToken(context.Background(), consistency.NewToken(7, 0x1000))
	// ...a write under it adds its own LSN (dbrouter does this)...
	consistency.Observe(ctx, consistency.NewToken(7, 0x2000))
	// ...and calls made under it send the later of the two.
	fmt.Println(consistency.Header+":", consistency.TokenFrom(ctx))
	// Output: Herd-Consistency-Token: 7:0/2000
}
