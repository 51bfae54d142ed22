package table

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/internal/arrowmem"
	"github.com/persisting/persisting/core/internal/benchdata"
	"github.com/persisting/persisting/core/lance/encoding"
)

// BenchmarkAppend is the Lance half of a flush on the tables of
// bench/bench_lance.py: one durable data file and one committed version per
// iteration, appended to a dataset that already has one fragment (as in the
// Python bench, which warms up with one flush).
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name string
		rec  arrow.RecordBatch
	}{{"narrow", benchdata.Narrow(100_000)}, {"wide", benchdata.Wide(20_000)}} {
		for _, comp := range []string{"", encoding.CompressionZstd} {
			name := tc.name
			if comp != "" {
				name += "-" + comp
			}
			b.Run(name, func(b *testing.B) {
				dir := filepath.Join(b.TempDir(), "data.lance")
				opts := Options{Compression: comp}
				wm := 0
				cfg := func() map[string]string {
					wm++
					return map[string]string{"persisting.wal_watermark": strconv.Itoa(wm)}
				}
				if _, err := Append(dir, tc.rec, cfg(), opts); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(arrowmem.Bytes(tc.rec))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Append(dir, tc.rec, cfg(), opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
