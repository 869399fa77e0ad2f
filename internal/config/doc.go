// Package config reads herd.yaml into structs, applies defaults in one
// place, and validates the result, reporting every problem at once with the
// file and line it comes from and what to write instead:
//
//	herd.yaml:7: apps.web.instances: "lots" is not a number; write a whole number like 3, or "max"
//	herd.yaml:12: routes.0.to: no app named "wbe"; did you mean "web"? (apps: web)
//
// A minimal file:
//
//	listen: 127.0.0.1:8080
//	admin: 127.0.0.1:9090
//	apps:
//	  web:
//	    command: ./bin/web --greeting hi
//	    instances: 3
//	    ready: {http: /health}
//	routes:
//	  - path: /
//	    to: web
//	    balance: least_conn
//
// Decoding walks the YAML node tree against the structs' `yaml` tags, so an
// unknown key, a wrong type or a bad value is caught with its line; types
// with a syntax of their own (Duration, Instances, Signal, Prefix, Command,
// Balance) parse themselves.
package config
