package proc

import (
	"bufio"
	"io"
)

// maxLine bounds one logged line; longer output is cut into several lines.
const maxLine = 64 << 10

// copyLines writes each line read from r to w as one Write call, prefixed,
// so that lines of concurrent instances never interleave mid-line.
func copyLines(w io.Writer, prefix string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	buf := make([]byte, 0, 256)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			buf = append(buf[:0], prefix...)
			buf = append(buf, line...)
			if buf[len(buf)-1] != '\n' {
				buf = append(buf, '\n')
			}
			_, _ = w.Write(buf)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
