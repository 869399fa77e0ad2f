// Package preload holds the Node.js preload that makes an unmodified Node
// app serve on the socket herd shares in mode: shared_socket, and writes it
// where instances can load it.
package preload

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

//go:embed herd-preload.js
var script []byte

// Write puts the preload in dir and returns its path, for
// NODE_OPTIONS=--require PATH.
func Write(dir string) (string, error) {
	path := filepath.Join(dir, "herd-preload.js")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		return "", fmt.Errorf("preload: writing %s: %w", path, err)
	}
	return path, nil
}
