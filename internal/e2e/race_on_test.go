//go:build race

package e2e

// raceEnabled: herd is built with -race too when the tests are.
const raceEnabled = true
