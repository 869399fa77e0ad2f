package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Static serves the files under root for a route at prefix, like NGINX's
// alias: prefix/a.js is root/a.js. It answers GET and HEAD, with a weak ETag
// (size and modification time), Last-Modified, conditional requests and
// Range (http.ServeContent), and Cache-Control max-age when maxAge > 0. A
// folder serves its index.html, never a listing. A path with a ".."
// segment is refused with 400, before the file system is touched.
func Static(root, prefix string, maxAge time.Duration) http.Handler {
	dir := http.Dir(root)
	prefix = strings.TrimSuffix(prefix, "/")
	cacheControl := ""
	if maxAge > 0 {
		cacheControl = "public, max-age=" + strconv.Itoa(int(maxAge.Seconds()))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, http.StatusMethodNotAllowed, "", "files are served to GET and HEAD only")
			return
		}
		name := strings.TrimPrefix(r.URL.Path, prefix)
		if hasDotDot(name) {
			writeError(w, r, http.StatusBadRequest, "", "the path climbs out of the folder with ..")
			return
		}
		name = path.Clean("/" + name)
		f, err := dir.Open(name)
		if err != nil {
			writeError(w, r, http.StatusNotFound, "", "no such file")
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err == nil && st.IsDir() {
			f.Close()
			if f, err = dir.Open(path.Join(name, "index.html")); err == nil {
				defer f.Close()
				st, err = f.Stat()
			}
		}
		if err != nil || st.IsDir() {
			status := http.StatusNotFound
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
				status = http.StatusInternalServerError
			}
			writeError(w, r, status, "", "no such file")
			return
		}
		h := w.Header()
		h.Set("ETag", fmt.Sprintf(`W/"%x-%x"`, st.Size(), st.ModTime().UnixNano()))
		if cacheControl != "" {
			h.Set("Cache-Control", cacheControl)
		}
		http.ServeContent(w, r, st.Name(), st.ModTime(), f)
	})
}

// hasDotDot reports whether p has a ".." path segment.
func hasDotDot(p string) bool {
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return true
		}
	}
	return false
}
