package engine

import (
	"cmp"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/codec"
	"github.com/persisting/persisting/core/internal/arrowmem"
	"github.com/persisting/persisting/core/internal/benchdata"
	"github.com/persisting/persisting/core/lance/encoding"
	lance "github.com/persisting/persisting/core/lance/table"
)

func benchRecord(rows int) arrow.RecordBatch {
	mem := memory.DefaultAllocator
	ib := array.NewInt64Builder(mem)
	sb := array.NewStringBuilder(mem)
	fb := array.NewFloat64Builder(mem)
	for i := 0; i < rows; i++ {
		ib.Append(int64(i))
		sb.Append("user-123")
		fb.Append(float64(i) / 4)
	}
	cols := []arrow.Array{ib.NewArray(), sb.NewArray(), fb.NewArray()}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "user", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	return array.NewRecordBatch(sc, cols, int64(rows))
}

// BenchmarkAppendOneRow is the Go share of one put() without WAL.
func BenchmarkAppendOneRow(b *testing.B) {
	e, err := Open(Config{Dir: b.TempDir(), BatchSize: 1 << 40, MaxBufferRows: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	<-e.Ready()
	rec := benchRecord(1)
	defer rec.Release()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Append(rec, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeFrame is the cost of turning one put's batch into a WAL payload.
func BenchmarkEncodeFrame(b *testing.B) {
	rec := benchRecord(1)
	defer rec.Release()
	b.ReportAllocs()
	var enc frameEncoder
	for b.Loop() {
		if _, _, err := enc.encode(rec, codec.None); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendWAL is one durable append end to end in Go (wal_sync_interval
// 0.1: no fsync on the path), the Go share of a WAL put.
func BenchmarkAppendWAL(b *testing.B) {
	dir := b.TempDir()
	e, err := Open(Config{Dir: dir, BatchSize: 1 << 40, MaxBufferRows: 1 << 40, WAL: &WALConfig{SyncInterval: 100 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	<-e.Ready()
	rec := benchRecord(1)
	defer rec.Release()
	done := make(chan error, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Append(rec, func(_ int64, err error) { done <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlush is one flush of bench_lance.py's narrow table, put as ten
// batches: what `await flush()` costs in Go (concatenation, encoding, the
// durable commit), without or with zstd pages.
func BenchmarkFlush(b *testing.B) {
	full := benchdata.Narrow(100_000)
	defer full.Release()
	for _, comp := range []string{"", encoding.CompressionZstd} {
		b.Run("narrow-"+cmp.Or(comp, "none"), func(b *testing.B) {
			dir := b.TempDir()
			e, err := Open(Config{Dir: dir, BatchSize: 1 << 40, MaxBufferRows: 1 << 40,
				OpenSink: func() (Sink, error) {
					return OpenLanceSink(filepath.Join(dir, DatasetName), lance.Options{Compression: comp})
				}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			<-e.Ready()
			b.SetBytes(arrowmem.Bytes(full))
			for b.Loop() {
				b.StopTimer()
				for i := int64(0); i < 10; i++ {
					part := full.NewSlice(i*10_000, (i+1)*10_000)
					if _, _, err := e.Append(part, nil); err != nil {
						b.Fatal(err)
					}
					part.Release()
				}
				b.StartTimer()
				done := make(chan error, 1)
				e.Flush(func(err error) { done <- err })
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
