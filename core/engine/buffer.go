package engine

import (
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/internal/arrowmem"
)

// buffer holds the rows past the persisted watermark, in offset order.
//
// Invariant: batches[i] holds rows [starts[i], starts[i]+batches[i].NumRows()),
// starts[0] == base, the ranges are contiguous, and every batch has the same
// schema (the engine conforms older batches when the table schema evolves).
// Flushes take whole batches from the front, so base only ever moves to a
// batch boundary.
type buffer struct {
	base    int64
	rows    int64
	bytes   int64
	batches []arrow.RecordBatch
	starts  []int64
}

func (b *buffer) end() int64 { return b.base + b.rows }

// add takes ownership of rec.
func (b *buffer) add(rec arrow.RecordBatch) {
	b.starts = append(b.starts, b.end())
	b.batches = append(b.batches, rec)
	b.rows += rec.NumRows()
	b.bytes += arrowmem.Bytes(rec)
}

// slice returns retained slices covering rows [from, to), which must lie in
// [base, end()]. The caller releases them.
func (b *buffer) slice(from, to int64) []arrow.RecordBatch {
	if from >= to {
		return nil
	}
	i := sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > from }) - 1
	var out []arrow.RecordBatch
	for ; i < len(b.batches) && b.starts[i] < to; i++ {
		lo := max(from-b.starts[i], 0)
		hi := min(to-b.starts[i], b.batches[i].NumRows())
		out = append(out, b.batches[i].NewSlice(lo, hi))
	}
	return out
}

// front returns the batches holding rows [base, upTo) and their row count;
// upTo is rounded down to a batch boundary. The batches are retained.
func (b *buffer) front(maxRows int64) ([]arrow.RecordBatch, int64) {
	var out []arrow.RecordBatch
	var n int64
	for _, rec := range b.batches {
		if n > 0 && n+rec.NumRows() > maxRows {
			break
		}
		rec.Retain()
		out = append(out, rec)
		n += rec.NumRows()
	}
	return out, n
}

// dropFront releases the first rows rows, which must end on a batch boundary.
func (b *buffer) dropFront(rows int64) {
	target := b.base + rows
	i := 0
	for i < len(b.batches) && b.starts[i] < target {
		b.bytes -= arrowmem.Bytes(b.batches[i])
		b.batches[i].Release()
		i++
	}
	b.batches = append(b.batches[:0:0], b.batches[i:]...)
	b.starts = append(b.starts[:0:0], b.starts[i:]...)
	b.base = target
	b.rows -= rows
}

// rebase moves the buffer to start at offset base, keeping its rows.
func (b *buffer) rebase(base int64) {
	delta := base - b.base
	for i := range b.starts {
		b.starts[i] += delta
	}
	b.base = base
}

// replace swaps every batch for f(batch); used when the schema evolves.
func (b *buffer) replace(f func(arrow.RecordBatch) (arrow.RecordBatch, error)) error {
	for i, rec := range b.batches {
		nr, err := f(rec)
		if err != nil {
			return err
		}
		b.bytes += arrowmem.Bytes(nr) - arrowmem.Bytes(rec)
		rec.Release()
		b.batches[i] = nr
	}
	return nil
}

func (b *buffer) release() {
	for _, rec := range b.batches {
		rec.Release()
	}
	*b = buffer{base: b.base}
}
