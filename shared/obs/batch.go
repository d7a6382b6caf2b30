package obs

import (
	"io"
	"sync"
)

// Batch is the log stream of a function that writes several lines per invocation: while
// held, the lines written to it wait in a buffer, and Release writes them with the
// invocation's last lines in one Write (one write(2) to stdout, where Lambda reads each
// line as its own log event). Without a hold, a line is written at once.
//
// Lines held when the process dies (a Lambda timeout kills it) are lost; holdLimit
// bounds how many can be.
type Batch struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	holds int
}

// holdLimit is the held size at which Batch writes without waiting for Release.
const holdLimit = 64 << 10

// NewBatch returns a Batch writing to w.
func NewBatch(w io.Writer) *Batch { return &Batch{w: w} }

// Write takes one or more whole lines, as a slog handler writes them.
func (b *Batch) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holds == 0 {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= holdLimit {
		if err := b.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Hold keeps lines back until the matching Release.
func (b *Batch) Hold() {
	b.mu.Lock()
	b.holds++
	b.mu.Unlock()
}

// Release appends last to what is held and, when no other hold remains, writes it all.
func (b *Batch) Release(last []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, last...)
	if b.holds > 0 {
		b.holds--
	}
	if b.holds > 0 {
		return nil
	}
	return b.flush()
}

func (b *Batch) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 4*holdLimit {
		b.buf = nil // a rare burst does not pin its buffer
	} else {
		b.buf = b.buf[:0]
	}
	return err
}
