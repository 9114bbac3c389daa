package childproc

import (
	"bytes"
	"sync"
)

// Output is a child's stdout and stderr (an io.Writer for exec.Cmd): it
// keeps the last bytes written, for error messages, and passes each
// complete line to a function, such as a debug log. It is safe for
// concurrent use.
type Output struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	partial []byte
	onLine  func(string)
}

// NewOutput returns an Output that keeps the last max bytes and passes
// each line, without its newline, to onLine. A line longer than max is
// passed in pieces.
func NewOutput(max int, onLine func(string)) *Output {
	return &Output{max: max, onLine: onLine}
}

// Write implements io.Writer.
func (w *Output) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.onLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > w.max { // a runaway line: pass what there is
		w.onLine(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

// Flush passes an unterminated last line to onLine. Call it once the
// child has exited.
func (w *Output) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.onLine(string(w.partial))
		w.partial = nil
	}
}

// String returns the retained output.
func (w *Output) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
