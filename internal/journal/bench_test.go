package journal

import (
	"testing"
	"time"
)

// BenchmarkBeginEnd is one proxied request's journal work (a Begin line
// written, an End line queued) with 64 requests at a time, the importer
// discarding what it reads.
func BenchmarkBeginEnd(b *testing.B) {
	j, err := Open(Config{Dir: b.TempDir(), Import: func([]Entry) error { return nil }, Interval: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	b.ReportAllocs()
	b.SetParallelism(32) // × GOMAXPROCS(2) = 64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e := event(i)
			i++
			if err := j.Begin(e); err != nil {
				b.Fatal(err)
			}
			j.End(ended(e))
		}
	})
}
