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
routes:
  - path: /
    to: wbe
`))
	fmt.Println(err)
	// Output:
	// herd.yaml:5: apps.web.instances: "lots" is not a number; write a whole number like 3, or "max"
}
