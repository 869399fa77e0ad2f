package h1

import "errors"

// Chunked follows a chunked body as it passes through unchanged, to find
// where it ends. The zero value is ready for a new body.
type Chunked struct {
	state  chunkState
	size   int64 // bytes left in the current chunk, or its size being read
	digits int
	line   int // length of the extension or trailer line so far
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkExt
	chunkSizeLF
	chunkData
	chunkDataCR
	chunkDataLF
	trailerStart
	trailerName
	trailerLine
	trailerLF
	finalLF
	chunkDone
)

// ErrBadChunk is a chunked body that breaks the framing.
var ErrBadChunk = errors.New("h1: malformed chunked body")

const maxChunkLine = 4 << 10

// Scan consumes p, the next bytes of the body, and returns how many of them
// belong to it: all of p unless the body ends inside it, when done is set.
func (c *Chunked) Scan(p []byte) (n int, done bool, err error) {
	for n < len(p) {
		b := p[n]
		switch c.state {
		case chunkSize:
			switch {
			case isHex(b):
				if c.digits == 15 {
					return n, false, ErrBadChunk
				}
				c.size = c.size<<4 | int64(unhex(b))
				c.digits++
			case c.digits > 0 && b == ';':
				c.state, c.line = chunkExt, 0
			case c.digits > 0 && b == '\r':
				c.state = chunkSizeLF
			default:
				return n, false, ErrBadChunk
			}
		case chunkExt:
			switch {
			case b == '\r':
				c.state = chunkSizeLF
			case b == '\n' || c.line == maxChunkLine:
				return n, false, ErrBadChunk
			}
			c.line++
		case chunkSizeLF:
			if b != '\n' {
				return n, false, ErrBadChunk
			}
			if c.size == 0 {
				c.state = trailerStart
			} else {
				c.state = chunkData
			}
		case chunkData:
			k := int64(len(p) - n)
			if k > c.size {
				k = c.size
			}
			n += int(k)
			c.size -= k
			if c.size == 0 {
				c.state = chunkDataCR
			}
			continue
		case chunkDataCR:
			if b != '\r' {
				return n, false, ErrBadChunk
			}
			c.state = chunkDataLF
		case chunkDataLF:
			if b != '\n' {
				return n, false, ErrBadChunk
			}
			c.state, c.size, c.digits = chunkSize, 0, 0
		case trailerStart: // a field "Name: value", or the final CRLF
			switch {
			case b == '\r':
				c.state = finalLF
			case tokenChars[b]:
				c.state, c.line = trailerName, 1
			default:
				return n, false, ErrBadChunk
			}
		case trailerName:
			switch {
			case b == ':':
				c.state = trailerLine
			case !tokenChars[b] || c.line == maxChunkLine:
				return n, false, ErrBadChunk
			}
			c.line++
		case trailerLine:
			switch {
			case b == '\r':
				c.state = trailerLF
			case (b < ' ' && b != '\t') || b == 0x7f || c.line == maxChunkLine:
				return n, false, ErrBadChunk
			}
			c.line++
		case trailerLF:
			if b != '\n' {
				return n, false, ErrBadChunk
			}
			c.state = trailerStart
		case finalLF:
			if b != '\n' {
				return n, false, ErrBadChunk
			}
			c.state = chunkDone
			return n + 1, true, nil
		case chunkDone:
			return n, true, nil
		}
		n++
	}
	return n, false, nil
}

func isHex(b byte) bool {
	return ('0' <= b && b <= '9') || ('a' <= b && b <= 'f') || ('A' <= b && b <= 'F')
}

func unhex(b byte) byte {
	switch {
	case b <= '9':
		return b - '0'
	case b >= 'a':
		return b - 'a' + 10
	}
	return b - 'A' + 10
}
