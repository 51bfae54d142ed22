package file

import (
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/internal/arrowmem"
	"github.com/persisting/persisting/core/internal/benchdata"
	"github.com/persisting/persisting/core/lance/encoding"
)

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// BenchmarkWrite encodes the bench tables into a data file (to a counting
// writer: no I/O), reporting the file size.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		rec  arrow.RecordBatch
	}{{"narrow", benchdata.Narrow(100_000)}, {"wide", benchdata.Wide(20_000)}} {
		next := int32(0)
		all, err := encoding.FieldsFromArrow(tc.rec.Schema().Fields(), &next, -1, 0)
		if err != nil {
			b.Fatal(err)
		}
		top := encoding.TopOf(all)
		for _, comp := range []string{"", encoding.CompressionZstd} {
			name := tc.name
			if comp != "" {
				name += "-" + comp
			}
			b.Run(name, func(b *testing.B) {
				var size uint64
				b.SetBytes(arrowmem.Bytes(tc.rec))
				b.ReportAllocs()
				for b.Loop() {
					var w countWriter
					size, err = Write(&w, "bench", top, tc.rec.Columns(), int(tc.rec.NumRows()), WriteOptions{Compression: comp, MaxPageBytes: 1 << 20})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size), "file-bytes")
			})
		}
	}
}
