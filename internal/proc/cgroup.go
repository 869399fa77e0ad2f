package proc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNoCgroup is returned by NewCgroup where herd cannot make cgroups:
// no cgroup v2 hierarchy, herd's own cgroup not writable (not root and not
// delegated), a kernel without cgroup.kill (before 5.14), or
// HERD_CGROUP=off in the environment.
var ErrNoCgroup = errors.New("proc: no delegated cgroup v2 with cgroup.kill")

// Cgroup is a cgroup v2 folder made by herd below its own cgroup. Each
// process started with it as Spec.Cgroup gets a child cgroup of its own,
// and so does everything that process starts, daemons included: a cgroup
// cannot be left by forking or setsid. The zero value is not usable; the
// methods are safe for concurrent use.
type Cgroup struct {
	dir  string
	next atomic.Uint64
}

// cgroupOff disables cgroups, to run with the subreaper shim alone (a
// container whose cgroups misbehave, or a test of the fallback).
const cgroupOff = "HERD_CGROUP"

// NewCgroup makes the cgroup name below herd's own cgroup v2 (on a hybrid
// machine, in the unified hierarchy). It returns ErrNoCgroup (wrapped with
// the reason) where that is not possible; the shim then keeps descendants
// alone.
func NewCgroup(name string) (*Cgroup, error) {
	if os.Getenv(cgroupOff) == "off" {
		return nil, fmt.Errorf("%w: %s=off", ErrNoCgroup, cgroupOff)
	}
	own, err := ownCgroupDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(own, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("%w: the kernel has no cgroup.kill", ErrNoCgroup)
	}
	return &Cgroup{dir: dir}, nil
}

// Dir is the cgroup's folder in the cgroup file system.
func (c *Cgroup) Dir() string { return c.dir }

// child makes a new child cgroup for one process.
func (c *Cgroup) child() (string, error) {
	dir := filepath.Join(c.dir, fmt.Sprintf("p%d", c.next.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("proc: creating cgroup %s: %w", dir, err)
	}
	return dir, nil
}

// Remove kills whatever is left in the cgroup and its children and removes
// them. Safe to call more than once.
func (c *Cgroup) Remove() error { return KillCgroup(c.dir) }

// KillCgroup kills every process in the cgroup folder dir and below
// (cgroup.kill), waits up to a second for them to be gone, and removes the
// folders. A folder that does not exist is not an error.
func KillCgroup(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	var subs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			subs = append(subs, p)
		}
		return nil
	})
	var last error
	for i := len(subs) - 1; i >= 0; i-- { // children before parents
		last = removeCgroupDir(subs[i])
	}
	return last
}

// removeCgroupDir removes an empty cgroup, waiting (bounded) for killed
// processes to be reaped: rmdir says EBUSY while the cgroup is populated.
func removeCgroupDir(dir string) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proc: removing cgroup %s: %w", dir, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ownCgroupDir finds herd's own cgroup v2 folder: the "0::PATH" line of
// /proc/self/cgroup below the cgroup2 mount of /proc/self/mountinfo.
func ownCgroupDir() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	var rel string
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel, found = p, true
		}
	}
	if !found {
		return "", fmt.Errorf("%w: /proc/self/cgroup has no cgroup v2 line", ErrNoCgroup)
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	return filepath.Join(mount, rel), nil
}

func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 25 0:31 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if fields := strings.Fields(pre); len(fields) >= 5 && fields[3] == "/" {
			return fields[4], nil
		}
	}
	return "", fmt.Errorf("%w: no cgroup2 file system mounted", ErrNoCgroup)
}
