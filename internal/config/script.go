package config

import (
	"path/filepath"
	"slices"
	"strings"
)

// interpreters are the programs whose first operand is a script file, as
// PM2 checks before it starts an app ("Script not found"). For each, the
// options that take the next word as their value (so that word is not the
// script), and the options after which there is no script (code on the
// command line, a module, a subcommand of its own).
var interpreters = map[string]struct {
	valued, noScript []string
	subcommand       string // a word that must come first, like deno's run; "" for none
	optionalSub      string // a word that may come first, like bun's run
}{
	"node":    {valued: nodeValued, noScript: nodeNoScript},
	"nodejs":  {valued: nodeValued, noScript: nodeNoScript},
	"python":  {valued: pythonValued, noScript: pythonNoScript},
	"python2": {valued: pythonValued, noScript: pythonNoScript},
	"python3": {valued: pythonValued, noScript: pythonNoScript},
	"ruby":    {valued: []string{"-I", "-r", "-C", "-E", "-F", "-0", "--encoding"}, noScript: []string{"-e", "-", "--version", "-v", "-h", "--help", "-S"}},
	"php":     {valued: []string{"-c", "-d", "-z", "-t"}, noScript: []string{"-r", "-S", "-a", "-v", "-h", "-i", "-l", "-m", "-"}},
	"bun":     {valued: []string{"-r", "--preload", "--cwd", "--env-file", "--config", "-c"}, noScript: []string{"-e", "--eval", "-p", "--print"}, optionalSub: "run"},
	"deno":    {valued: []string{"--config", "-c", "--import-map", "--env-file", "--location", "--seed", "--v8-flags", "--lock", "--cert", "-L", "--log-level"}, noScript: []string{"--eval"}, subcommand: "run"},
}

var (
	nodeValued   = []string{"-r", "--require", "--import", "--loader", "--experimental-loader", "--input-type", "-C", "--conditions", "--title", "--env-file", "--redirect-warnings", "--inspect-port", "--openssl-config", "--icu-data-dir", "--stack-size"}
	nodeNoScript = []string{"-e", "--eval", "-p", "--print", "-i", "--interactive", "-c", "--check", "-", "--test", "--run", "-v", "--version", "-h", "--help", "--v8-options"}

	pythonValued   = []string{"-W", "-X", "-Q"}
	pythonNoScript = []string{"-c", "-m", "-", "-V", "--version", "-h", "--help"}
)

// Script returns the script file an app's command line runs through a
// known interpreter (node app.js, python3 -u worker.py, deno run main.ts,
// or interpreter: node with command: app.js), and its index in Argv; ""
// when there is none to check: no known interpreter, code given inline,
// a module (-m), a word expanded at start ($SCRIPT), a URL, or a word
// that does not look like a file (bun run dev names a package.json script).
func (a *App) Script() (string, int) {
	argv := a.Argv()
	if len(argv) < 2 {
		return "", -1
	}
	in, known := interpreters[filepath.Base(argv[0])]
	if !known {
		if a.Interpreter == "" {
			return "", -1
		}
		// An interpreter herd does not know (bash, perl…): its script is
		// the command's first word, as in PM2.
		i := len(argv) - len(a.Command)
		if w := argv[i]; !strings.HasPrefix(w, "-") && isFileWord(w, true) {
			return w, i
		}
		return "", -1
	}
	i := 1
	if in.subcommand != "" {
		if argv[i] != in.subcommand {
			return "", -1
		}
		i++
	} else if in.optionalSub != "" && argv[i] == in.optionalSub {
		i++
	}
	for ; i < len(argv); i++ {
		w := argv[i]
		name, _, hasValue := strings.Cut(w, "=")
		switch {
		case w == "--":
			if i+1 < len(argv) && isFileWord(argv[i+1], a.Interpreter != "") {
				return argv[i+1], i + 1
			}
			return "", -1
		case !strings.HasPrefix(w, "-"):
			// The first operand; with interpreter: set, it is the
			// command's first word, a script whatever it looks like.
			if isFileWord(w, a.Interpreter != "" && i == len(argv)-len(a.Command)) {
				return w, i
			}
			return "", -1
		case slices.Contains(in.noScript, name):
			return "", -1
		case slices.Contains(in.valued, name) && !hasValue:
			i++ // the option's value
		}
	}
	return "", -1
}

// isFileWord reports whether w names a file to look for: not expanded at
// start, not a URL or package specifier, and, unless sure, with a folder
// or an extension (app.js, ./bin/worker).
func isFileWord(w string, sure bool) bool {
	if w == "" || strings.Contains(w, "$") || strings.Contains(w, "://") ||
		strings.HasPrefix(w, "npm:") || strings.HasPrefix(w, "jsr:") || strings.HasPrefix(w, "node:") {
		return false
	}
	return sure || strings.Contains(w, "/") || strings.Contains(filepath.Base(w), ".")
}
