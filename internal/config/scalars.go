package config

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

func (c *Command) decodeNode(n *yaml.Node) error {
	argv, err := words(n)
	if err != nil {
		return err
	}
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("the command is empty; write the program and its arguments, like ./server --flag value")
	}
	*c = argv
	return nil
}

func (a *Args) decodeNode(n *yaml.Node) error {
	argv, err := words(n)
	*a = argv
	return err
}

// words reads a command line (split like a shell) or a list of words.
func words(n *yaml.Node) ([]string, error) {
	var argv []string
	switch n.Kind {
	case yaml.ScalarNode:
		var err error
		if argv, err = SplitCommand(n.Value); err != nil {
			return nil, err
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("want a command line or a list of words, got a list holding %s; write it like [./server, --port, \"8080\"]", kindName(item))
			}
			argv = append(argv, item.Value)
		}
	default:
		return nil, fmt.Errorf("want a command line, got %s; write it like ./server --port $PORT, or as a list like [./server, --port, \"8080\"]", kindName(n))
	}
	return argv, nil
}

func (i *Instances) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a number of instances, got %s; write a whole number like 3, or \"max\"", kindName(n))
	}
	if strings.EqualFold(n.Value, "max") {
		*i = Instances(runtime.NumCPU())
		return nil
	}
	if less, ok := strings.CutPrefix(strings.ToLower(n.Value), "max-"); ok {
		k, err := strconv.Atoi(less)
		if err != nil || k < 1 {
			return fmt.Errorf("%q: write max-N with N a whole number of 1 or more, like max-1 (one per CPU but one)", n.Value)
		}
		*i = Instances(max(runtime.NumCPU()-k, 1))
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a number; write a whole number like 3, or \"max\"", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("%d instances cannot run; write 1 or more, \"max\" (one per CPU), or \"max%d\", which is what PM2's %d means", v, v, v)
	}
	if v < 1 {
		return fmt.Errorf("%d instances cannot run; write 1 or more, or \"max\"", v)
	}
	*i = Instances(v)
	return nil
}

// warnNode warns of a bare number of milliseconds so small it was
// probably meant as seconds (`listen_timeout: 2`). Zero, the default, is
// not warned of.
func (d *Duration) warnNode(n *yaml.Node) string {
	if _, err := strconv.ParseInt(n.Value, 10, 64); err != nil || *d <= 0 || time.Duration(*d) >= 50*time.Millisecond {
		return ""
	}
	return fmt.Sprintf("%s is %s (a number without a unit is milliseconds, as in PM2); did you mean %ss?", n.Value, time.Duration(*d), n.Value)
}

func (d *Duration) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration, got %s; write one like 10s, 1.5s or 300ms", kindName(n))
	}
	var v time.Duration
	if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		v = time.Duration(ms) * time.Millisecond // PM2 style: bare milliseconds
	} else if v, err = time.ParseDuration(n.Value); err != nil {
		return fmt.Errorf("%q is not a duration; write one like 10s, 1.5s or 300ms (a bare number is milliseconds)", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative; write a duration of 0 or more", n.Value)
	}
	*d = Duration(v)
	return nil
}

var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGKILL": syscall.SIGKILL, "SIGWINCH": syscall.SIGWINCH,
}

func (s *Signal) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a signal name, got %s; write one like SIGTERM, SIGINT or SIGQUIT", kindName(n))
	}
	sig, err := ParseSignal(n.Value)
	*s = sig
	return err
}

// ParseSignal reads "SIGTERM", "term" or "15".
func ParseSignal(text string) (Signal, error) {
	name := strings.ToUpper(text)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig, ok := signals[name]; ok {
		return Signal(sig), nil
	}
	if num, err := strconv.Atoi(text); err == nil && num > 0 && num < 65 {
		return Signal(num), nil
	}
	return 0, fmt.Errorf("unknown signal %q; write one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGKILL, or a number", text)
}

// MarshalText writes the signal's name.
func (s Signal) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Signal) String() string {
	for name, sig := range signals {
		if sig == syscall.Signal(s) {
			return name
		}
	}
	return strconv.Itoa(int(s))
}

func (p *Prefix) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want an address or CIDR, got %s; write one like 127.0.0.1 or 10.0.0.0/8", kindName(n))
	}
	if strings.Contains(n.Value, "/") {
		pfx, err := netip.ParsePrefix(n.Value)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR; write one like 10.0.0.0/8 or an address like 127.0.0.1", n.Value)
		}
		*p = Prefix(pfx.Masked())
		return nil
	}
	a, err := netip.ParseAddr(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not an IP address; write one like 127.0.0.1 or a CIDR like 10.0.0.0/8", n.Value)
	}
	*p = Prefix(netip.PrefixFrom(a, a.BitLen()))
	return nil
}

func (b *Balance) decodeNode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch v := Balance(n.Value); v {
		case RoundRobin, LeastConn, RandomTwo, IPHash, Hash:
			*b = v
			return nil
		}
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a policy name, got %s; write round_robin, least_conn, random_two, ip_hash or hash", kindName(n))
	}
	const all = "round_robin, least_conn, random_two, ip_hash or hash"
	if hint := suggest(n.Value, []string{string(RoundRobin), string(LeastConn), string(RandomTwo), string(IPHash), string(Hash)}, ""); strings.HasPrefix(hint, "did you mean") {
		return fmt.Errorf("unknown policy %q; %s (write %s)", n.Value, hint, all)
	}
	return fmt.Errorf("unknown policy %q; write %s", n.Value, all)
}

// SplitCommand splits s into words like a POSIX shell, without expanding
// anything: blanks separate words; single quotes keep everything literally;
// double quotes keep blanks, with \" \\ \$ and \` escaped; a backslash
// outside quotes escapes the next character.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // backslash-newline continues the line
					cur.WriteByte(s[i])
				}
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated ' quote; close it or escape it as \\'")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New("unterminated \" quote; close it or escape it as \\\"")
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func (p Prefix) String() string { return netip.Prefix(p).String() }

// MarshalText writes the prefix as a CIDR.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as Go writes it, e.g. "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (z *Size) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size like 300M or 1G, got %s", kindName(n))
	}
	v, err := ParseSize(n.Value)
	*z = v
	return err
}

// ParseSize reads 300M, 1.5G, 512K, 300MB or a bare number of bytes.
func ParseSize(text string) (Size, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(text)), "B"), "I")
	mult := 1.0
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size; write one like 300M, 1.5G or 512K", text)
	}
	return Size(f * mult), nil
}

// String writes the size in the largest whole unit, e.g. "300M".
func (z Size) String() string {
	for _, u := range []struct {
		suffix string
		n      Size
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if z >= u.n && z%u.n == 0 {
			return strconv.FormatInt(int64(z/u.n), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(z), 10)
}

// MarshalText writes the size as String does.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

func (m *Mode) decodeNode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch v := Mode(n.Value); v {
		case ProxyMode, SharedMode:
			*m = v
			return nil
		}
	}
	return fmt.Errorf("unknown mode %s; write proxy (herd balances) or shared_socket (instances accept on one socket)", kindName(n))
}

func (w *WatchPaths) decodeNode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if n.Value == "true" {
			*w = WatchPaths{"."}
		}
		return nil
	}
	paths, err := words(n)
	if err != nil || n.Kind != yaml.SequenceNode {
		return fmt.Errorf("want true or a list of paths, like watch: [src, config]")
	}
	*w = paths
	return nil
}

// decodeNode reads `compress: true|false` or a mapping of its options.
func (c *Compress) decodeNode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		c.Enabled = n.Value == "true"
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want true, false or options like {level: 5, min_size: 1K}, got %s", kindName(n))
	}
	c.Enabled = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, resolve(n.Content[i+1])
		var err error
		switch k {
		case "level":
			c.Level, err = strconv.Atoi(v.Value)
			if err != nil || c.Level < 1 || c.Level > 9 {
				return fmt.Errorf("compress.level %q: write a whole number from 1 (fast) to 9 (small)", v.Value)
			}
		case "min_size":
			if c.MinSize, err = ParseSize(v.Value); err != nil {
				return err
			}
		case "types":
			if c.Types, err = words(v); err != nil || v.Kind != yaml.SequenceNode {
				return fmt.Errorf("compress.types: write a list like [text/html, application/json]")
			}
		case "zstd":
			on := v.Value == "true"
			if v.Tag != "!!bool" {
				return fmt.Errorf("compress.zstd %q: write true or false", v.Value)
			}
			c.Zstd = &on
		default:
			return fmt.Errorf("unknown compress option %q; write level, min_size, types or zstd", k)
		}
	}
	return nil
}

// fromScalar reads the one-word forms of ready:.
func (r *Ready) fromScalar(value string) error {
	switch value {
	case "none", "process":
		r.Process = true
	case "ipc":
		r.IPC = true
	case "notify":
		r.Notify = true
	case "tcp":
		r.TCP = true
	default:
		if !strings.HasPrefix(value, "/") {
			return fmt.Errorf("unknown readiness %q; write a path like /health, tcp, notify, ipc, none (a process that serves no port), or a mapping like {http: /health}", value)
		}
		r.HTTP = value
	}
	return nil
}

func (r *Registry) fromScalar(value string) error {
	r.Redis = value
	return nil
}
