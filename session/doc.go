// Package session keeps HTTP sessions in a store shared by every instance
// of an app: Redis (RedisStore), the app's own SQLite or PostgreSQL
// database (SQLStore, the embedded default when there is no Redis), or
// memory (MemoryStore, one process only).
//
// A Manager is the configuration and the middleware:
//
//	m := session.New(store)            // idle 30 min, lifetime 24 h
//	http.ListenAndServe(addr, m.LoadAndSave(mux))
//
// and handlers use the session in the request's context:
//
//	session.Put(r.Context(), "cart", cart)
//	cart, ok, err := session.Get[Cart](r.Context(), "cart")
//	session.FromContext(r.Context()).SetUser(r.Context(), userID) // on login: renews the token
//	session.FromContext(r.Context()).Destroy(r.Context())         // on logout
//	m.DestroyUser(ctx, userID)                                    // log out everywhere
//
// # Tokens and what they protect against
//
// A token is 256 bits from crypto/rand, sent as 43 characters of base64url
// in a cookie that is HttpOnly, SameSite=Lax, Path=/, and Secure when the
// request came over TLS (Cookie.Secure; use SecureAlways behind a proxy
// that terminates TLS). What the package defends against:
//
//   - Guessing a token: 2^256 tokens, so none.
//   - A leaked store (a dump, a backup, a read-only foothold in Redis or
//     the database): stores key sessions by the SHA-256 of the token, never
//     the token; a key cannot be turned back into a cookie. No salt or
//     secret is needed because the token is already full-entropy.
//   - Session fixation: Renew (and SetUser, which renews) moves the session
//     to a fresh token and kills the old one in the store before it
//     returns, so a token planted or seen before a login is worthless
//     after it.
//   - A stolen cookie, in time: a session ends IdleTimeout after its last
//     use or Lifetime after it was created, whichever is first (deadline =
//     min(last use + IdleTimeout, created + Lifetime)); Destroy and
//     DestroyUser end sessions at once, in every instance, since every
//     instance reads the shared store.
//   - Script in the page reading the cookie (HttpOnly), the cookie on plain
//     HTTP (Secure), and most cross-site requests carrying it (SameSite=Lax:
//     still do CSRF protection for state-changing GETs, and do not rely on
//     Lax alone for POSTs from other sites' top-level navigations).
//   - Store traffic from junk cookies: a value that is not a well-formed
//     token is never looked up.
//
// Not in scope: a token stolen from the client while it is valid (TLS and
// HttpOnly are the defence), and an attacker who can write to the store.
//
// # Expiry and touching
//
// Every decision uses the Manager's clock (Manager.Now, injectable), which
// also writes each session's deadline into the store; a store may drop
// dead sessions on its own clock too (Redis TTLs, SQLStore.Cleanup). A use
// moves the deadline only when that moves it by at least TouchInterval
// (default IdleTimeout/10): one store write per interval instead of one
// per request, at the price of a session ending up to TouchInterval before
// IdleTimeout after its last use. In Redis a touch is an HSET of the
// deadline field and a PEXPIRE of the key; the values are not rewritten. A
// request that only reads a session writes neither the store nor a cookie.
//
// # Concurrent requests: per-key merge
//
// Two requests of one client often run at once, on different instances.
// If each wrote back the whole session it loaded, the later write would
// erase the keys the earlier one set (the seed's updateSession has this
// lost update). Here a session is a map of keys to encoded values, stored
// key by key (Redis: one hash field per key; SQL: one row per key), and a
// commit writes only the keys this request Put or Removed, atomically with
// the check that the session is still alive (a Lua script in Redis, a
// transaction that first locks the session's row in SQL). So:
//
//   - requests that change different keys never lose each other's changes;
//   - for one key changed by two requests, the last commit wins;
//   - a key's value is written whole: a read-modify-write of one key (a
//     counter, a cart appended to) by two concurrent requests can lose one
//     of them, as with any last-writer-wins store; keep such values in
//     separate keys, or in the app's database;
//   - a request whose session was destroyed or renewed meanwhile (logout,
//     DestroyUser, a concurrent login) has its changes dropped, never
//     resurrecting the session; the drop is logged, and the client's cookie
//     is left alone, since the concurrent request may just have sent the
//     new token.
//
// # The middleware
//
// LoadAndSave loads the session before the handler and commits it just
// before the response's headers are written (the handler's first
// WriteHeader, Write or Flush, or its return), so the cookie can still be
// set while the body is streamed, never buffered. Create, renew and
// destroy sessions before writing the response; a value Put afterwards is
// still saved if the session already exists. Saves run with the request's
// context values but not its cancellation: a client that hangs up does not
// undo its request's changes. A store error while loading, or while saving
// before the headers, goes to Manager.ErrorFunc (default 500).
//
// # Stores
//
// RedisStore needs a single Redis (with replicas or Sentinel), not Redis
// Cluster: its scripts touch a session's key and its user's index
// together. SQLStore runs on SQLite (modernc.org/sqlite) and PostgreSQL
// (pgx's database/sql driver) with the same SQL, creates its two tables
// itself, and deletes expired rows in a janitor goroutine stopped by Close.
// Both implement DestroyUser with an index of a user's sessions (a Redis
// set, an SQL index on user_id).
package session
