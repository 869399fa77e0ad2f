package config_test

import (
	"fmt"

	"github.com/herdhq/herd/internal/config"
)

func ExampleParse() {
	_, err := config.Parse("herd.yaml", []byte(`
apps:
  web:
    command: sh -c "exec my-server"
    instances: lots
    kill_timout: 5s
routes:
  - path: /
    to: wbe
`))
	fmt.Println(err)
	// Output:
	// herd.yaml:5: apps.web.instances: "lots" is not a number; write a whole number like 3, or "max"
	// herd.yaml:6: apps.web.kill_timout: unknown key "kill_timout"; did you mean "kill_timeout"?
	// herd.yaml:9: routes.0.to: no app or upstream named "wbe"; did you mean "web"? (apps and upstreams: web)
}

// A check made outside this package, such as binding a port, reports its
// problem at the line of the key it is about.
func ExampleConfig_Problem() {
	c, err := config.Parse("herd.yaml", []byte(`
listen: 127.0.0.1:8080
apps:
  web: {command: sh}
routes:
  - {path: /, to: web}
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Line("apps.web.command"))
	fmt.Println(c.Problem("listen", "127.0.0.1:8080 is already in use; pick a free port or stop whatever holds it"))
	// Output:
	// 4
	// herd.yaml:2: listen: 127.0.0.1:8080 is already in use; pick a free port or stop whatever holds it
}

// A worker serves no port: ready: none makes it ready once it has stayed up
// min_uptime, and it needs no route. A bare number is milliseconds, as in
// PM2; one too small to be meant loads, with a warning.
func ExampleConfig_Warnings() {
	c, err := config.Parse("herd.yaml", []byte(`
apps:
  worker:
    command: sh -c "exec my-queue-consumer"
    ready: none
    listen_timeout: 2
`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", c.Apps[0].Ready)
	fmt.Println(c.Warnings)
	// Output:
	// {HTTP: TCP:false Notify:false IPC:false Process:true}
	// herd.yaml:6: apps.worker.listen_timeout: 2 is 2ms (a number without a unit is milliseconds, as in PM2); did you mean 2s?
}
