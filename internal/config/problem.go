package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config, at a line of a file.
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

// Errors is every problem found in a config, one per line, in line order.
type Errors []Problem

func (e Errors) Error() string {
	sorted := append(Errors(nil), e...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Line < sorted[j].Line })
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Line is the line where the dotted key path (e.g. "apps.web.command",
// "routes.0.to") was written, or 0 if it was not.
func (c *Config) Line(path string) int { return c.lines[path] }

// Problem returns a Problem about the key at path, for checks made outside
// this package (a port in use, say) to read like the config's own.
func (c *Config) Problem(path, msg string) Problem {
	return Problem{File: c.File, Line: c.Line(path), Path: path, Msg: msg}
}
