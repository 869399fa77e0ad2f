package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nodeDecoder is implemented by types with a syntax of their own. The error
// becomes the problem's message, so it says what is wrong and what to write.
type nodeDecoder interface {
	decodeNode(n *yaml.Node) error
}

// nodeWarner is implemented by nodeDecoders whose values may be legal but
// likely mistakes: after a successful decodeNode, a non-empty warnNode
// becomes a warning at the node's line.
type nodeWarner interface {
	warnNode(n *yaml.Node) string
}

// shorthand is implemented by structs that may also be written as one
// scalar, their main field (registry: redis://…); a mapping decodes as usual.
type shorthand interface {
	fromScalar(value string) error
}

// Interface guards.
var (
	_ nodeDecoder = (*Command)(nil)
	_ nodeDecoder = (*Args)(nil)
	_ nodeDecoder = (*Mode)(nil)
	_ nodeDecoder = (*Size)(nil)
	_ nodeDecoder = (*WatchPaths)(nil)
	_ nodeDecoder = (*Compress)(nil)
	_ nodeDecoder = (*Instances)(nil)
	_ nodeDecoder = (*Duration)(nil)
	_ nodeDecoder = (*Signal)(nil)
	_ nodeDecoder = (*Prefix)(nil)
	_ nodeDecoder = (*Balance)(nil)
	_ nodeWarner  = (*Duration)(nil)
	_ shorthand   = (*Registry)(nil)
	_ shorthand   = (*Ready)(nil)
)

// decoder walks a YAML node tree into structs by their `yaml` tags,
// collecting every problem rather than stopping at the first.
//
// A field tagged `yaml:"name"` is read from key name; `yaml:"-"` and untagged
// fields are skipped. `yaml:"name,keyed"` on a slice reads a mapping of
// name → element in file order, setting the element's Name from the key.
// `yaml:"pre_,prefix"` on a map reads every key pre_NAME into the map under
// NAME (PM2's env_production: blocks). A struct field named Line with tag
// `yaml:"-"` gets the line it was written on. Keys starting with x- are
// skipped anywhere, so they can hold &anchors for <<: merges.
type decoder struct {
	file     string
	problems Errors
	warnings Errors
	lines    map[string]int  // dotted path → line of its key (or list item)
	failed   map[string]bool // paths that had a problem; validation skips them
	pairsOf  map[*yaml.Node][]pair
	active   map[*yaml.Node]bool // mappings being expanded, to catch merge cycles
}

func newDecoder(file string, lines map[string]int) *decoder {
	return &decoder{
		file:    file,
		lines:   lines,
		failed:  map[string]bool{},
		pairsOf: map[*yaml.Node][]pair{},
		active:  map[*yaml.Node]bool{},
	}
}

func (d *decoder) problem(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	d.failed[path] = true
}

// hasFailed reports whether path, a key above it or a key under it had a
// decoding problem, so that Validate does not report the same mistake twice
// (a command that did not parse is not also "missing", a ready: whose tcp:
// was not a bool is not also "empty").
func (d *decoder) hasFailed(path string) bool {
	for p := path; ; {
		if d.failed[p] {
			return true
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	for p := range d.failed {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases (*name) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	// yaml only lets an alias name an earlier anchor, and an anchor is never
	// put on an alias, so this ends; the bound is for safety.
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if isNull(n) {
		return // "key:" with no value: keep the zero value, which means the default
	}
	if sh, ok := v.Addr().Interface().(shorthand); ok && n.Kind == yaml.ScalarNode {
		if err := sh.fromScalar(n.Value); err != nil {
			d.problem(n.Line, path, "%v", err)
		}
		return
	}
	if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
		if err := nd.decodeNode(n); err != nil {
			d.problem(n.Line, path, "%v", err)
		} else if w, ok := nd.(nodeWarner); ok {
			if msg := w.warnNode(n); msg != "" {
				d.warnings = append(d.warnings, Problem{File: d.file, Line: n.Line, Path: path, Msg: msg})
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a single value"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(n, path, "a whole number")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.problem(n.Line, path, "%q is not a whole number; write one, like %s", s, example(path, v))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s, ok := d.scalar(n, path, "a whole number")
		if !ok {
			return
		}
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(u) {
			d.problem(n.Line, path, "%q is not a whole number of 0 or more; write one, like %s", s, example(path, v))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || v.OverflowFloat(f) {
			d.problem(n.Line, path, "%q is not a number; write one, like %s", s, example(path, v))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.problem(n.Line, path, "%q is not true or false; write true or false, like %s", s, example(path, v))
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path)) // a programming error in types.go
	}
}

// scalar returns a scalar node's text, or reports that want was expected.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(n.Line, path, "want %s, got %s; write it like %s", want, kindName(n), example(path, reflect.Value{}))
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch resolve(n).Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// examples show how a key is written, for messages about wrong types. Keys
// not listed get a generic example from their Go type. "X.*" is an element
// of the mapping X, "X[]" an item of the list X.
var examples = map[string]string{
	"listen":            "listen: 127.0.0.1:8080",
	"admin":             "admin: 127.0.0.1:9090",
	"trusted_proxies":   "trusted_proxies: [10.0.0.0/8, 127.0.0.1]",
	"trusted_proxies[]": "- 10.0.0.0/8",
	"apps":              "apps: {web: {command: ./server}}",
	"apps.*":            "web: {command: ./server, instances: 2}",
	"routes":            "routes: [{path: /, to: web}]",
	"routes[]":          "- {path: /, to: web}",
	"command":           "command: ./server --port $PORT",
	"cwd":               "cwd: ./web",
	"env":               "env: {NODE_ENV: production}",
	"env.*":             "NODE_ENV: production",
	"instance_var":      "instance_var: WORKER_ID",
	"ready":             "ready: {http: /health}",
	"http":              "http: /health",
	"tcp":               "tcp: true",
	"notify":            "notify: true",
	"reload":            "reload: {parallel: 2}",
	"parallel":          "parallel: 2",
	"max_restarts":      "max_restarts: 16",
	"max_fails":         "max_fails: 3",
	"path":              "path: /api",
	"to":                "to: web",
}

// example returns how the key at path is written; v, when valid, is the
// value being decoded, for a generic example by type.
func example(path string, v reflect.Value) string {
	segs := strings.Split(path, ".")
	last := segs[len(segs)-1]
	if len(segs) >= 2 {
		parent := segs[len(segs)-2]
		if _, err := strconv.Atoi(last); err == nil {
			if e, ok := examples[parent+"[]"]; ok {
				return e
			}
		} else if e, ok := examples[parent+".*"]; ok {
			return e
		}
	}
	if e, ok := examples[last]; ok {
		return e
	}
	if !v.IsValid() {
		return last + ": value"
	}
	switch v.Kind() {
	case reflect.Bool:
		return last + ": true"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return last + ": 3"
	case reflect.Float32, reflect.Float64:
		return last + ": 1.5"
	case reflect.Struct, reflect.Map:
		return last + ": {key: value}"
	case reflect.Slice:
		return last + ": [a, b]"
	}
	return last + ": value"
}

// field is one decodable struct field.
type field struct {
	index  int
	keyed  bool   // a mapping of name → element, decoded into a slice
	prefix string // keys prefix+NAME go into this map under NAME
}

// structFields returns t's fields by yaml key, and the keys in field order
// (a prefix field's as "prefixNAME", for messages).
func structFields(t reflect.Type) (map[string]field, []string) {
	fields := map[string]field{}
	var names []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		if opts == "prefix" {
			fields[name] = field{index: i, prefix: name}
			names = append(names, name+"NAME")
			continue
		}
		fields[name] = field{index: i, keyed: opts == "keyed"}
		names = append(names, name)
	}
	return fields, names
}

// prefixField returns the prefix field that key belongs to, and the name
// after the prefix.
func prefixField(fields map[string]field, key string) (field, string, bool) {
	for _, f := range fields {
		if f.prefix != "" && len(key) > len(f.prefix) && strings.HasPrefix(key, f.prefix) {
			return f, key[len(f.prefix):], true
		}
	}
	return field{}, "", false
}

// setLine sets v's Line field, if it has one tagged `yaml:"-"`.
func setLine(v reflect.Value, line int) {
	f, ok := v.Type().FieldByName("Line")
	if ok && len(f.Index) == 1 && f.Type.Kind() == reflect.Int && f.Tag.Get("yaml") == "-" {
		v.Field(f.Index[0]).SetInt(int64(line))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	setLine(v, n.Line)
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of keys, got %s; write it like %s", kindName(n), example(path, v))
		return
	}
	fields, names := structFields(v.Type())
	for _, kv := range d.pairs(n, path) {
		key := kv.key.Value
		p := join(path, key)
		if strings.HasPrefix(key, "x-") {
			continue // an extension key, a place for &anchors (as in Compose files)
		}
		f, ok := fields[key]
		if ok && f.prefix != "" {
			ok = false // the bare prefix ("env_") names nothing
		}
		if !ok {
			if pf, name, ok := prefixField(fields, key); ok {
				d.lines[p] = kv.key.Line
				d.decodeEntry(kv.val, v.Field(pf.index), name, p)
				continue
			}
			d.problem(kv.key.Line, p, "unknown key %q; %s", key, suggest(key, names, "valid keys"))
			continue
		}
		d.lines[p] = kv.key.Line
		if f.keyed {
			d.decodeKeyed(kv.val, v.Field(f.index), p)
			continue
		}
		d.decode(kv.val, v.Field(f.index), p)
	}
}

// newElem returns a new addressable element of slice type t, allocating it
// if the elements are pointers, so a slice never holds a nil.
func newElem(t reflect.Type) reflect.Value {
	e := reflect.New(t.Elem()).Elem()
	if e.Kind() == reflect.Pointer {
		e.Set(reflect.New(e.Type().Elem()))
	}
	return e
}

// indirect returns the struct a (possibly pointer) element holds.
func indirect(v reflect.Value) reflect.Value {
	if v.Kind() == reflect.Pointer {
		return v.Elem()
	}
	return v
}

// decodeKeyed decodes a mapping of name → struct into a slice, in file
// order, setting each element's Name from its key and Line to the key's line.
func (d *decoder) decodeKeyed(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of names to settings, got %s; write it like %s", kindName(n), example(path, reflect.Value{}))
		return
	}
	for _, kv := range d.pairs(n, path) {
		name := kv.key.Value
		p := join(path, name)
		d.lines[p] = kv.key.Line
		if !nameRE.MatchString(name) {
			d.problem(kv.key.Line, p, "name %q may hold only letters, digits, - and _; rename it, like %s", name, cleanName(name))
			// Keep it anyway, so that a route to it is not also reported.
		}
		elem := newElem(v.Type())
		s := indirect(elem)
		if f := s.FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String {
			f.SetString(name)
		}
		d.decode(kv.val, s, p)
		setLine(s, kv.key.Line)
		v.Set(reflect.Append(v, elem))
	}
}

// cleanName turns name into one nameRE accepts.
func cleanName(name string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 128 && nameRE.MatchString(string(r)) {
			return r
		}
		return '-'
	}, name)
	if strings.Trim(clean, "-") == "" {
		return "web"
	}
	return clean
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of NAME: value lines, got %s; write it like %s", kindName(n), example(path, v))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, kv := range d.pairs(n, path) {
		p := join(path, kv.key.Value)
		d.lines[p] = kv.key.Line
		d.decodeEntry(kv.val, v, kv.key.Value, p)
	}
}

// decodeEntry decodes n into the map m (made if nil) under key.
func (d *decoder) decodeEntry(n *yaml.Node, m reflect.Value, key, path string) {
	if m.Type().Key().Kind() != reflect.String {
		panic(fmt.Sprintf("config: map keys of %s must be strings", m.Type())) // a programming error in types.go
	}
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	elem := reflect.New(m.Type().Elem()).Elem()
	d.decode(n, elem, path)
	m.SetMapIndex(reflect.ValueOf(key).Convert(m.Type().Key()), elem)
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.problem(n.Line, path, "want a list (lines starting with -), got %s; write it like %s", kindName(n), example(path, v))
		return
	}
	for i, item := range n.Content {
		p := join(path, strconv.Itoa(i))
		d.lines[p] = item.Line
		elem := newElem(v.Type())
		if isNull(resolve(item)) {
			d.problem(item.Line, p, "empty list item; give it a value or remove the -")
			if s := indirect(elem); s.Kind() == reflect.Struct {
				setLine(s, item.Line)
			}
		} else {
			d.decode(item, elem, p)
		}
		// Append even a bad item, so later items keep their index in messages.
		v.Set(reflect.Append(v, elem))
	}
}

// pair is one key: value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs returns the key: value pairs of mapping n in file order, with merge
// keys (<<: *defaults) expanded: keys written in n win over merged ones, and
// earlier merges win over later ones, as YAML specifies. It reports keys
// that are not plain names and keys written twice, and leaves them out.
// Results are memoized, so a file of merges of merges costs what it reads.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	if ps, ok := d.pairsOf[n]; ok {
		return ps
	}
	d.active[n] = true
	defer delete(d.active, n)

	seen := map[string]int{} // key → line it was first written on
	var own []pair
	type merge struct {
		at  int // index into own where the merged keys go
		val *yaml.Node
	}
	var merges []merge
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.Tag == "!!merge":
			merges = append(merges, merge{len(own), val})
			continue
		case k.Kind != yaml.ScalarNode:
			d.problem(k.Line, path, "a key must be a plain name, got %s; write name: value", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(k.Line, join(path, k.Value), "%q is written twice (first on line %d); keep one", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{k, val})
	}
	out := own
	if len(merges) > 0 {
		out = make([]pair, 0, len(own))
		next := 0
		for _, m := range merges {
			out = append(out, own[next:m.at]...)
			next = m.at
			for _, mp := range d.merged(m.val, path) {
				if _, ok := seen[mp.key.Value]; !ok {
					seen[mp.key.Value] = mp.key.Line
					out = append(out, mp)
				}
			}
		}
		out = append(out, own[next:]...)
	}
	d.pairsOf[n] = out
	return out
}

// merged returns the pairs a merge key's value brings: one mapping, or a
// list of them.
func (d *decoder) merged(val *yaml.Node, path string) []pair {
	val = resolve(val)
	var maps []*yaml.Node
	switch val.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{val}
	case yaml.SequenceNode:
		for _, item := range val.Content {
			maps = append(maps, resolve(item))
		}
	default:
		maps = []*yaml.Node{val}
	}
	var out []pair
	for _, m := range maps {
		switch {
		case m.Kind != yaml.MappingNode:
			d.problem(m.Line, join(path, "<<"), "<< merges a mapping, got %s; write <<: *name, where &name marks a mapping", kindName(m))
		case d.active[m]:
			d.problem(m.Line, join(path, "<<"), "this mapping merges itself; merge another anchor")
		default:
			out = append(out, d.pairs(m, path)...)
		}
	}
	return out
}

// synonyms are keys from PM2, NGINX and friends that mean one of ours.
var synonyms = map[string]string{
	"script": "command", "cmd": "command", "exec": "command", "run": "command",
	"dir": "cwd", "workdir": "cwd", "working_dir": "cwd", "directory": "cwd",
	"environment": "env", "replicas": "instances", "workers": "instances", "scale": "instances",
	"kill_signal": "stop_signal", "signal": "stop_signal", "wait_ready": "ready", "health": "ready",
	"location": "path", "prefix": "path", "app": "to", "upstream": "to", "target": "to", "backend": "to",
	"policy": "balance", "lb": "balance", "algorithm": "balance", "strategy": "balance",
	"bind": "listen", "address": "listen", "port": "listen",
}

// suggest offers the closest of names to got ("did you mean …?") or lists
// them after what ("valid keys: a, b").
func suggest(got string, names []string, what string) string {
	if best := closest(got, names); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return fmt.Sprintf("%s: %s", what, strings.Join(sorted, ", "))
}

// closest returns the name got was probably meant to be: a synonym, a name
// it is a prefix of (or that is a prefix of it), or one within two edits.
// It returns "" when none is close.
func closest(got string, names []string) string {
	lower := strings.ToLower(got)
	if s, ok := synonyms[lower]; ok && slices.Contains(names, s) {
		return s
	}
	best, bestDist := "", 3
	for _, n := range names {
		ln := strings.ToLower(n)
		dist := levenshtein(lower, ln)
		if dist >= len(n) {
			continue // "ab" is two edits from "to", but nothing like it
		}
		if len(lower) >= 3 && (strings.HasPrefix(ln, lower) || strings.HasPrefix(lower, ln)) {
			dist = min(dist, 1)
		}
		if dist < bestDist {
			best, bestDist = n, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
