package waltest

import (
	"fmt"
	"testing"

	"github.com/persisting/persisting/core/wal"
)

// BenchmarkAppendSync: 1 KiB frames on the real filesystem of t.TempDir,
// with an fdatasync after every frame and after every 64 (group commit).
// MB/s counts payload bytes.
func BenchmarkAppendSync(b *testing.B) {
	for _, per := range []int{1, 64} {
		b.Run(fmt.Sprintf("1KiB/sync-every-%d", per), func(b *testing.B) {
			l, _ := open(b, wal.Options{Dir: b.TempDir()})
			defer l.Close()
			payload := make([]byte, 1024)
			for i := range payload {
				payload[i] = byte(i)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(wal.Frame{FirstOffset: uint64(i) * 8, Rows: 8, Payload: payload}); err != nil {
					b.Fatal(err)
				}
				if i%per == per-1 {
					if err := l.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := l.Sync(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkReplay: Replay(0) over a 64 MiB log (16 MiB segments), payload
// MB/s, with 1 KiB and 64 KiB frames. The pages are in the page cache, so
// this measures decoding and checksumming, not the disk.
func BenchmarkReplay(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			dir := b.TempDir()
			l, _ := open(b, wal.Options{Dir: dir, SegmentSize: 16 << 20})
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(i * 31)
			}
			n := (64 << 20) / size
			for i := 0; i < n; i++ {
				if _, err := l.Append(wal.Frame{FirstOffset: uint64(i), Rows: 1, Payload: payload}); err != nil {
					b.Fatal(err)
				}
			}
			l.Close()
			l, info := open(b, wal.Options{Dir: dir, SegmentSize: 16 << 20})
			defer l.Close()
			if info.Frames != n {
				b.Fatalf("%+v", info)
			}
			b.SetBytes(int64(n * size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				frames := 0
				if err := l.Replay(0, func(wal.Frame) error { frames++; return nil }); err != nil || frames != n {
					b.Fatal(err, frames)
				}
			}
		})
	}
}

// BenchmarkOpen: recovery scan of the same 64 MiB log of 1 KiB frames.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	l, _ := open(b, wal.Options{Dir: dir, SegmentSize: 16 << 20})
	payload := make([]byte, 1024)
	n := 64 << 10
	for i := 0; i < n; i++ {
		l.Append(wal.Frame{FirstOffset: uint64(i), Rows: 1, Payload: payload})
	}
	l.Close()
	b.SetBytes(int64(n * 1024))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, info := open(b, wal.Options{Dir: dir, SegmentSize: 16 << 20})
		if info.Frames != n {
			b.Fatal(info)
		}
		l.Close()
	}
}
