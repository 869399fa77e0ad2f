// Package config reads herd.yaml into structs, applies defaults in one
// place, and validates the result.
//
// # What herd.yaml looks like
//
//	listen: :8080                # the public listener (default :8080)
//	admin: 127.0.0.1:9090        # /health, /status, /metrics (default 127.0.0.1:9090)
//	apps:                        # name → app, kept in file order
//	  web:
//	    command: ./bin/web --greeting "hi there"   # split like a shell, run without one
//	    instances: 3             # or max, one per CPU
//	    ready: {http: /health}   # or tcp (the default), notify, ipc (process.send('ready'))
//	  worker:
//	    command: node worker.js  # a missing worker.js is a problem, as in PM2
//	    ready: none              # serves no port: ready after min_uptime, needs no route
//	    env: {NODE_ENV: production}
//	    kill_timeout: 5s         # durations: 1.5s, 300ms, 2m, or bare milliseconds
//	  api:
//	    command: [node, server.js]   # a list of words works too
//	routes:                      # longest path prefix wins
//	  - path: /api
//	    to: api
//	    balance: least_conn      # round_robin (default), least_conn, random_two
//	  - path: /
//	    to: web
//
// Every key and its default is documented on the field of Config, App,
// Route or Ready that it fills. Zero means default; the few keys for which
// a written 0 would be a mistake (max_fails, reload.parallel) report it.
// Relative cwd: paths, and the default cwd, are the config file's folder.
//
// Settings shared by several apps can be written once with YAML anchors and
// merge keys; keys starting with x- are ignored, to hold them:
//
//	x-node: &node {instances: max, env: {NODE_ENV: production}}
//	apps:
//	  web: {<<: *node, command: node web.js}
//	  api: {<<: *node, command: node api.js, instances: 2}
//
// # How problems read
//
// Load and Parse return either a *Config or an Errors listing every problem
// in the file, sorted by line, each saying what is wrong and what to write
// instead:
//
//	herd.yaml:5: apps.web.instances: "lots" is not a number; write a whole number like 3, or "max"
//	herd.yaml:6: apps.web.kill_timout: unknown key "kill_timout"; did you mean "kill_timeout"?
//	herd.yaml:9: routes.0.to: no app or upstream named "wbe"; did you mean "web"? (apps and upstreams: web, api)
//
// A config that loads may still carry Warnings, in the same form, for
// what is legal but likely a mistake (`listen_timeout: 2` is 2ms, as in
// PM2); `herd check` and `herd up` print them.
//
// A key that could not be decoded is not validated as well, so one mistake
// is one line. Checks made elsewhere (a port in use, found when binding it)
// report in the same form with Config.Problem, which finds the line of the
// key through Config.Line; Bind and CheckListeners do this for every
// address herd listens on.
//
// # Where things are
//
// One file per job: load.go reads the YAML; decode.go and scalars.go turn
// it into the structs of types.go, whose field comments give every default;
// defaults.go sets those defaults, one applyDefaults method per section;
// validate*.go check the result, one validateX method per section (apps,
// routes, upstreams, tls, logs, registry), each reporting every problem
// with its file:line; listen.go binds what `herd check` must find free.
//
// # How decoding works
//
// Decoding walks the YAML node tree against the structs' `yaml` tags
// (decode.go), so an unknown key, a wrong type or a bad value is caught
// with its line; a key added to types.go is read with no more code. Types
// with a syntax of their own (Duration, Instances, Signal, Prefix, Command,
// Balance) parse themselves through a one-method interface, decodeNode.
package config
