// Package e2e holds herd's end-to-end tests: they build herd and a small
// test app (testdata/testapp), run `herd up` as a child process over
// loopback, and check what a user would see: distribution, crash recovery
// without failed requests, graceful stops that leave no process behind, and
// clear errors for bad configs.
package e2e
