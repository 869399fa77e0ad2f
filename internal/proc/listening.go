package proc

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ListeningAddrs returns the TCP addresses that the processes of process
// group pgid (an instance and the children it started) listen on, read
// from /proc: the group's socket inodes matched against the listening
// sockets of its network namespace. It finds what an app really binds,
// for the hint "listens on :3000, not on $PORT".
func ListeningAddrs(pgid int) ([]string, error) {
	members, err := groupMembers(pgid)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, pid := range members {
		links, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/fd/*")
		for _, l := range links {
			target, err := os.Readlink(l)
			if err == nil && strings.HasPrefix(target, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
			}
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pgid) + "/net/" + table)
		if err != nil {
			continue // no IPv6, or the group leader is gone
		}
		found, err := parseListening(data, inodes)
		if err != nil {
			return nil, fmt.Errorf("proc: reading /proc/%d/net/%s: %w", pgid, table, err)
		}
		addrs = append(addrs, found...)
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) ([]int, error) {
	table, err := processTable()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range table {
		if e.pgid == pgid && !e.zombie {
			pids = append(pids, e.pid)
		}
	}
	return pids, nil
}

// parseListening returns the local addresses of the LISTEN sockets (state
// 0A) in a /proc/net/tcp{,6} table whose inode is in inodes.
func parseListening(table []byte, inodes map[string]bool) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		addr, err := parseHexAddr(f[1])
		if err != nil {
			return nil, err
		}
		out = append(out, addr)
	}
	return out, sc.Err()
}

// parseHexAddr turns /proc/net/tcp's "0100007F:0BB8" into "127.0.0.1:3000"
// (each 32-bit word of the address is in host byte order, little endian
// here); the unspecified address becomes ":3000".
func parseHexAddr(s string) (string, error) {
	host, port, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(host)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("malformed address %q", s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return "", fmt.Errorf("malformed port in %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	ip := net.IP(raw)
	if ip.IsUnspecified() {
		return ":" + strconv.FormatUint(p, 10), nil
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(p, 10)), nil
}
