package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, defaults and validates the config at path. On any
// problem it returns Errors listing every one, in line order, and no config.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the path is already in front of the message
		}
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the config: %v; create it, or name another file with -f", err)}}
	}
	return Parse(path, data)
}

// Parse is Load on data already read; file names it in messages, and
// relative cwd: paths resolve against its folder.
//
// Decoding problems and validation problems are reported together, but a
// key that could not be decoded is not validated too: a command with an
// unterminated quote is not also reported as missing.
func Parse(file string, data []byte) (*Config, error) {
	doc, p := parseYAML(file, data)
	if p != nil {
		return nil, Errors{*p}
	}
	c := &Config{File: file, lines: map[string]int{}}
	d := newDecoder(file, c.lines)
	d.decode(doc, reflect.ValueOf(c).Elem(), "")
	c.applyDefaults()
	ps := append(d.problems, c.validate(d.hasFailed)...)
	if len(ps) > 0 {
		return nil, ps.sorted()
	}
	c.Warnings = d.warnings.sorted()
	if len(c.Warnings) == 0 {
		c.Warnings = nil
	}
	return c, nil
}

// parseYAML returns the top-level mapping of data, or the one problem that
// stops it being read: bad syntax, nothing at all, or not a mapping.
func parseYAML(file string, data []byte) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return nil, emptyProblem(file)
	case err != nil:
		p := syntaxProblem(file, err)
		return nil, &p
	}
	if len(root.Content) == 0 || isNull(root.Content[0]) {
		return nil, emptyProblem(file)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, &Problem{File: file, Line: doc.Line,
			Msg: fmt.Sprintf("want a mapping of keys (listen:, apps:, routes:…) at the top, got %s; start with a line like apps:", kindName(doc))}
	}
	// yaml reads one document; a second one (after ---) would be ignored
	// silently, and with it half of someone's config.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p := syntaxProblem(file, err)
		return nil, &p
	default:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &Problem{File: file, Line: line,
			Msg: "a second YAML document (after ---) is not read; keep one document, with listen:, apps: and routes: in it"}
	}
	return doc, nil
}

func emptyProblem(file string) *Problem {
	return &Problem{File: file, Line: 1,
		Msg: "the config is empty; write at least apps: (with a command for each) and routes: (see the README)"}
}

// syntaxProblem turns a YAML error ("yaml: line 3: …") into a Problem.
func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, strings.TrimSpace(after)
			}
		}
	}
	return Problem{File: file, Line: line, Msg: "YAML syntax: " + msg + "; check indentation and quoting"}
}
