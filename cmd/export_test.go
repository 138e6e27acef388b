package cmd

import (
	"io"
	"time"
)

// NewBatchWriter exposes up's log batcher to the tests.
func NewBatchWriter(out io.Writer, interval time.Duration) interface {
	io.Writer
	Flush() error
	Close() error
} {
	return newBatchWriter(out, interval)
}

// MaxHeldLog is how many bytes the batcher holds before writing them.
const MaxHeldLog = maxHeldLog
