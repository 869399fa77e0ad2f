package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config, at a line of a file. Its Error
// reads FILE:LINE: PATH: MSG, leaving out a zero Line and an empty Path.
type Problem struct {
	File string
	Line int    // 0 when the problem has no line (e.g. an unreadable file)
	Path string // dotted key path, e.g. "apps.web.instances"; may be empty
	Msg  string // what is wrong; what to write instead
}

func (p Problem) Error() string {
	var sb strings.Builder
	sb.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&sb, ":%d", p.Line)
	}
	sb.WriteString(": ")
	if p.Path != "" {
		sb.WriteString(p.Path)
		sb.WriteString(": ")
	}
	sb.WriteString(p.Msg)
	return sb.String()
}

// Errors is every problem found in a config. Load, Parse and Validate
// return it sorted by line; Error writes one problem per line, in line order.
// Use errors.As to get it from their error.
type Errors []Problem

func (e Errors) Error() string {
	sorted := e.sorted()
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted returns a copy of e in line order (problems without a line first,
// then in the order found), without repeats.
func (e Errors) sorted() Errors {
	out := make(Errors, 0, len(e))
	seen := map[Problem]bool{}
	for _, p := range e {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// Line is the line where the dotted key path (e.g. "listen",
// "apps.web.command", "routes.0.to") was written, or 0 if it was not. For a
// list item ("routes.0") it is the line of its dash.
func (c *Config) Line(path string) int { return c.lines[path] }

// Problem returns a Problem about the key at path, for checks made outside
// this package (a port in use, say) to read like the config's own. When path
// was not written (a default), the line is that of the nearest key above it
// that was, or 0.
func (c *Config) Problem(path, msg string) Problem {
	line := 0
	for p := path; p != "" && line == 0; {
		line = c.Line(p)
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Problem{File: c.File, Line: line, Path: path, Msg: msg}
}
