package reader

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/filter"
)

// RowIDColumn and BucketColumn are the extra columns scans and searches add.
const (
	RowIDColumn    = "_rowid"
	DistanceColumn = "_distance"
	BucketColumn   = "_bucket"
)

// ScanOptions select what a scan returns.
type ScanOptions struct {
	Columns   []string // nil: every column
	Filter    string
	WithRowID bool  // add _rowid (null for buffered rows), and _bucket when several buckets
	ChunkRows int64 // physical rows read at once; 0 means ChunkRows
}

// Scanner streams the selected rows of a view, batch by batch, in dataset
// order (bucket, fragment, row). It reads ahead on up to GOMAXPROCS
// goroutines. Implements array.RecordReader.
type Scanner struct {
	refs    atomic.Int64
	v       *View
	cols    []string // read
	out     []string // returned
	f       *filter.Filter
	rowID   bool
	bucket  bool
	schema  *arrow.Schema
	chunks  []chunk
	results []chan scanResult
	window  chan struct{}
	cancel  context.CancelFunc
	ctx     context.Context
	next    int
	cur     arrow.RecordBatch
	err     error
	wg      sync.WaitGroup
}

type scanResult struct {
	rec arrow.RecordBatch
	err error
}

// Scan starts a scan of v.
func (v *View) Scan(o ScanOptions) (*Scanner, error) {
	out, f, err := v.projection(o.Columns, o.Filter)
	if err != nil {
		return nil, err
	}
	s := &Scanner{v: v, out: out, f: f, rowID: o.WithRowID, bucket: o.WithRowID && v.multiBucket()}
	s.refs.Store(1)
	s.cols = append([]string(nil), out...)
	if f != nil {
		for _, c := range f.Columns() {
			if len(s.v.Schema.FieldIndices(c)) > 0 && !contains(s.cols, c) {
				s.cols = append(s.cols, c)
			}
		}
	}
	fields := make([]arrow.Field, 0, len(out)+2)
	for _, c := range out {
		fields = append(fields, v.Schema.Field(v.Schema.FieldIndices(c)[0]))
	}
	if s.rowID {
		fields = append(fields, arrow.Field{Name: RowIDColumn, Type: arrow.PrimitiveTypes.Uint64, Nullable: true})
	}
	if s.bucket {
		fields = append(fields, arrow.Field{Name: BucketColumn, Type: arrow.PrimitiveTypes.Int32})
	}
	s.schema = arrow.NewSchema(fields, nil)
	s.chunks = v.chunks(o.ChunkRows, "")
	s.results = make([]chan scanResult, len(s.chunks))
	for i := range s.results {
		s.results[i] = make(chan scanResult, 1)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.start()
	return s, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// start reads chunks in order on a few goroutines, at most a window ahead
// of the consumer.
func (s *Scanner) start() {
	workers := max(1, runtime.GOMAXPROCS(0))
	window := make(chan struct{}, workers+1)
	var next atomic.Int64
	s.wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer s.wg.Done()
			for {
				select {
				case window <- struct{}{}:
				case <-s.ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= len(s.chunks) {
					<-window
					return
				}
				rec, err := s.produce(s.chunks[i])
				s.results[i] <- scanResult{rec, err} // the consumer frees the slot
			}
		}()
	}
	s.window = window
}

func (s *Scanner) produce(c chunk) (rec arrow.RecordBatch, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("persisting: scan: internal error: %v", r)
		}
	}()
	raw, keep, err := s.v.read(c, s.cols, s.f)
	if err != nil {
		return nil, err
	}
	defer raw.Release()
	var ids []uint64
	if s.rowID {
		if base, ok := s.v.rowBase(c); ok {
			ids = make([]uint64, 0, raw.NumRows())
			for i := int64(0); i < raw.NumRows(); i++ {
				if keep == nil || keep[i] {
					ids = append(ids, base+uint64(i))
				}
			}
		}
	}
	kept, err := compact(raw, keep)
	if err != nil {
		return nil, err
	}
	defer kept.Release()
	n := kept.NumRows()
	arrs := make([]arrow.Array, 0, s.schema.NumFields())
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	for i := range s.out {
		a := kept.Column(i)
		a.Retain()
		arrs = append(arrs, a)
	}
	if s.rowID {
		b := array.NewUint64Builder(memory.DefaultAllocator)
		if ids != nil {
			b.AppendValues(ids, nil)
		} else {
			b.AppendNulls(int(n))
		}
		arrs = append(arrs, b.NewArray())
		b.Release()
	}
	if s.bucket {
		b := array.NewInt32Builder(memory.DefaultAllocator)
		bk := int32(s.v.Parts[c.part].Bucket)
		for i := int64(0); i < n; i++ {
			b.Append(bk)
		}
		arrs = append(arrs, b.NewArray())
		b.Release()
	}
	return array.NewRecordBatch(s.schema, arrs, n), nil
}

func (s *Scanner) Retain() { s.refs.Add(1) }

func (s *Scanner) Release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.cancel()
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	// Drain what the workers produced so their batches are freed.
	go func() {
		s.wg.Wait()
		for _, ch := range s.results {
			select {
			case r := <-ch:
				if r.rec != nil {
					r.rec.Release()
				}
			default:
			}
		}
	}()
}

func (s *Scanner) Schema() *arrow.Schema { return s.schema }

// Next moves to the next non-empty batch.
func (s *Scanner) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	for s.err == nil && s.next < len(s.chunks) {
		r := <-s.results[s.next]
		s.next++
		<-s.window
		if r.err != nil {
			s.err = r.err
			s.cancel()
			return false
		}
		if r.rec.NumRows() == 0 {
			r.rec.Release()
			continue
		}
		s.cur = r.rec
		return true
	}
	return false
}

func (s *Scanner) RecordBatch() arrow.RecordBatch { return s.cur }
func (s *Scanner) Record() arrow.RecordBatch      { return s.cur }
func (s *Scanner) Err() error                     { return s.err }
