package cmd

import (
	"io"
	"sync"
	"time"
)

const (
	// logFlushInterval is the longest a log line of `up` or `serve` is held back.
	logFlushInterval = 100 * time.Millisecond
	// maxHeldLog bytes of held-back lines are written at once, by the
	// caller that reached it: a stderr that is not being read slows
	// requests down, as unbuffered logging did, instead of growing memory.
	maxHeldLog = 64 << 10
)

// batchWriter gives the loggers of `up` and `serve` one write(2) per batch
// of lines instead of one per line (at a line per proxied request, the
// write cost more than the rest of the logging). It holds what is written to it and writes it
// to out, in order, at most interval after the first line held, or when
// maxHeldLog bytes are held, or on Flush or Close; after Close, writes go
// straight to out. Each Write must be whole lines (slog writes a record
// per call). Safe for concurrent use; a nil *batchWriter does nothing.
type batchWriter struct {
	out      io.Writer
	interval time.Duration
	timer    *time.Timer

	// wmu is held while writing to out: batches leave in the order they
	// were taken. spare (the previous batch's buffer) is guarded by wmu.
	wmu   sync.Mutex
	spare []byte

	mu     sync.Mutex // guards buf and closed
	buf    []byte
	closed bool
}

func newBatchWriter(out io.Writer, interval time.Duration) *batchWriter {
	b := &batchWriter{out: out, interval: interval}
	b.timer = time.AfterFunc(time.Hour, func() { _ = b.Flush() })
	b.timer.Stop()
	return b
}

// Write holds p for the next batch and returns nil, unless the batch fills
// up: then it writes the batch and returns that write's error.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return b.out.Write(p)
	}
	first := len(b.buf) == 0
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= maxHeldLog
	b.mu.Unlock()
	if full {
		return len(p), b.Flush()
	}
	if first {
		b.timer.Reset(b.interval)
	}
	return len(p), nil
}

// Flush writes the lines held so far.
func (b *batchWriter) Flush() error {
	if b == nil {
		return nil
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.flushLocked(false)
}

// Close flushes and makes later writes go straight to out.
func (b *batchWriter) Close() error {
	if b == nil {
		return nil
	}
	b.timer.Stop()
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.flushLocked(true)
}

// flushLocked takes the held lines (and with closing, stops holding any)
// and writes them. b.wmu held.
func (b *batchWriter) flushLocked(closing bool) error {
	b.mu.Lock()
	buf := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.closed = b.closed || closing
	b.mu.Unlock()
	var err error
	if len(buf) > 0 {
		_, err = b.out.Write(buf)
	}
	if cap(buf) <= 4*maxHeldLog {
		b.spare = buf[:0]
	}
	return err
}
