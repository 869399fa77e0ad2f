package config

import (
	"fmt"
	"reflect"
	"regexp"
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

// decoder walks a YAML node tree into structs by their `yaml` tags,
// collecting every problem rather than stopping at the first.
type decoder struct {
	file     string
	problems Errors
	lines    map[string]int
}

func (d *decoder) problem(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with no value: keep the zero value, which means the default
	}
	if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
		if err := nd.decodeNode(n); err != nil {
			d.problem(n.Line, path, "%v", err)
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
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		s, ok := d.scalar(n, path, "a whole number")
		if !ok {
			return
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			d.problem(n.Line, path, "%q is not a whole number; write one like 3", s)
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil || n.Tag != "!!bool" {
			d.problem(n.Line, path, "%q is not true or false; write true or false", s)
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("config: no decoder for %s", v.Type())) // a programming error in types.go
	}
}

// scalar returns a scalar node's text, or reports that want was expected.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(n.Line, path, "want %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// field is one decodable struct field.
type field struct {
	index int
	keyed bool // a mapping of name → element, decoded into a slice
}

func structFields(t reflect.Type) (map[string]field, []string) {
	fields := map[string]field{}
	var names []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = field{index: i, keyed: opts == "keyed"}
		names = append(names, name)
	}
	return fields, names
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if line := v.FieldByName("Line"); line.IsValid() && line.Kind() == reflect.Int {
		line.SetInt(int64(n.Line))
	}
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of keys, got %s", kindName(n))
		return
	}
	fields, names := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		f, ok := fields[key]
		if !ok {
			d.problem(k.Line, join(path, key), "unknown key %q; %s", key, suggest(key, names, "valid keys"))
			continue
		}
		if seen[key] {
			d.problem(k.Line, join(path, key), "%q is set twice; keep one", key)
			continue
		}
		seen[key] = true
		fv := v.Field(f.index)
		if f.keyed {
			d.decodeKeyed(val, fv, join(path, key))
			continue
		}
		d.decode(val, fv, join(path, key))
	}
}

// decodeKeyed decodes a mapping of name → struct into a slice of pointers,
// in file order, setting each element's Name from its key.
func (d *decoder) decodeKeyed(n *yaml.Node, v reflect.Value, path string) {
	d.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of names to settings, got %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		p := join(path, name)
		if !nameRE.MatchString(name) {
			d.problem(k.Line, p, "name %q may hold only letters, digits, - and _", name)
			continue
		}
		if seen[name] {
			d.problem(k.Line, p, "%q is defined twice; rename or remove one", name)
			continue
		}
		seen[name] = true
		elem := reflect.New(v.Type().Elem().Elem())
		elem.Elem().FieldByName("Name").SetString(name)
		d.decode(val, elem.Elem(), p)
		elem.Elem().FieldByName("Line").SetInt(int64(k.Line))
		v.Set(reflect.Append(v, elem))
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of NAME: value lines, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, join(path, k.Value))
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.problem(n.Line, path, "want a list (lines starting with -), got %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		if item.Kind == yaml.ScalarNode && item.Tag == "!!null" {
			d.problem(item.Line, join(path, strconv.Itoa(i)), "empty list item; give it a value or remove the -")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(item, elem, join(path, strconv.Itoa(i)))
		v.Set(reflect.Append(v, elem))
	}
}

// suggest offers the closest of names to got ("did you mean …?") or lists them.
func suggest(got string, names []string, what string) string {
	best, bestDist := "", 3
	for _, n := range names {
		dist := levenshtein(strings.ToLower(got), n)
		if strings.HasPrefix(n, got) && len(got) >= 3 {
			dist = min(dist, 1)
		}
		if dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return fmt.Sprintf("%s: %s", what, strings.Join(sorted, ", "))
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
