package lance_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	lance "github.com/persisting/persisting/core/lance/table"
)

// BenchmarkLongQueue: a queue's life in miniature, 5,000 flushes of 10 rows
// each, with and without a compaction + cleanup every 100 flushes. Reported:
// bytes on disk at the end, versions and data files left, and the mean
// flush time over the last 100 flushes. Run with -benchtime=1x.
func BenchmarkLongQueue(b *testing.B) {
	const flushCount, rows, every = 5000, 10, 100
	for _, maintain := range []bool{false, true} {
		name := "plain"
		if maintain {
			name = "compact+cleanup"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(b.TempDir(), "ds")
				var lastFlushes time.Duration
				var maint time.Duration
				for f := 0; f < flushCount; f++ {
					rec := simpleRec(b, f*rows, rows)
					start := time.Now()
					_, err := lance.Append(dir, rec, map[string]string{"persisting.wal_watermark": strconv.Itoa((f+1)*rows - 1)}, lance.Options{})
					if f >= flushCount-100 {
						lastFlushes += time.Since(start)
					}
					rec.Release()
					if err != nil {
						b.Fatal(err)
					}
					if maintain && (f+1)%every == 0 {
						start := time.Now()
						if _, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{}); err != nil {
							b.Fatal(err)
						}
						if _, err := lance.Cleanup(context.Background(), dir, lance.CleanupOptions{KeepLast: 10}, lance.Options{}); err != nil {
							b.Fatal(err)
						}
						maint += time.Since(start)
					}
				}
				var bytes, files int64
				filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
					if err == nil && !e.IsDir() {
						info, _ := e.Info()
						bytes += info.Size()
						files++
					}
					return nil
				})
				d, err := lance.Open(dir, lance.Options{})
				if err != nil || d.CountRows() != flushCount*rows {
					b.Fatalf("%v", err)
				}
				vs, _ := lance.ListVersions(dir, lance.Options{})
				b.ReportMetric(float64(bytes), "disk-bytes")
				b.ReportMetric(float64(files), "files")
				b.ReportMetric(float64(len(vs)), "versions")
				b.ReportMetric(float64(lastFlushes.Microseconds())/100, "last100-flush-us")
				b.ReportMetric(maint.Seconds(), "maintenance-s")
			}
		})
	}
}
