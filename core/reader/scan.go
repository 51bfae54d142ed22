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

// ChunkRows is the default number of physical rows a scan, count or search
// reads at once from a fragment.
const ChunkRows = 65536

// RowIDColumn and BucketColumn are the extra columns scans and searches add.
const (
	RowIDColumn    = "_rowid"
	DistanceColumn = "_distance"
	BucketColumn   = "_bucket"
)

// chunk is one unit of work: physical rows [start, end) of fragment frag of
// part part, or (frag < 0) the whole memory batch mem of the part.
type chunk struct {
	part, frag, mem int
	start, end      int64
}

// chunks splits the view into work units of about size rows; with align
// set, fragment chunks end on page boundaries of that column.
func (v *View) chunks(size int64, align string) []chunk {
	if size <= 0 {
		size = ChunkRows
	}
	var out []chunk
	for pi, p := range v.Parts {
		if p.DS != nil {
			for fi, f := range p.DS.FragmentInfos() {
				if f.LiveRows == 0 {
					continue
				}
				var starts []int64
				if align != "" {
					starts, _ = p.DS.PageStarts(fi, align)
				}
				if len(starts) < 2 || starts[len(starts)-1] != f.PhysicalRows {
					for s := int64(0); s < f.PhysicalRows; s += size {
						out = append(out, chunk{part: pi, frag: fi, mem: -1, start: s, end: min(s+size, f.PhysicalRows)})
					}
					continue
				}
				// Whole pages of the aligned column, about size rows at a time.
				from := int64(0)
				for _, s := range starts[1:] {
					if s-from >= size || s == f.PhysicalRows {
						out = append(out, chunk{part: pi, frag: fi, mem: -1, start: from, end: s})
						from = s
					}
				}
			}
		}
		for mi, r := range p.Mem {
			if r.NumRows() > 0 {
				out = append(out, chunk{part: pi, frag: -1, mem: mi, start: 0, end: r.NumRows()})
			}
		}
	}
	return out
}

// multiBucket tells whether rows of the view come from more than one bucket.
func (v *View) multiBucket() bool {
	seen := map[int]bool{}
	for _, p := range v.Parts {
		seen[p.Bucket] = true
	}
	return len(seen) > 1
}

// columns checks a projection (nil: every column) against the view.
func (v *View) columns(cols []string) ([]string, error) {
	if cols == nil {
		out := make([]string, v.Schema.NumFields())
		for i, f := range v.Schema.Fields() {
			out[i] = f.Name
		}
		return out, nil
	}
	for _, c := range cols {
		if len(v.Schema.FieldIndices(c)) == 0 {
			return nil, &filter.Error{Column: c, Msg: "no such column"}
		}
	}
	return cols, nil
}

// read reads the named columns (all in the view schema) of a chunk, in the
// view's types (nulls where the part lacks a column), and the rows to keep:
// live (not deleted) and selected by f. keep is nil when every row is kept.
func (v *View) read(c chunk, cols []string, f *filter.Filter) (arrow.RecordBatch, []bool, error) {
	p := v.Parts[c.part]
	n := c.end - c.start
	var src arrow.RecordBatch
	if c.frag >= 0 {
		s := p.DS.Schema()
		var present []string
		for _, name := range cols {
			if len(s.FieldIndices(name)) > 0 {
				present = append(present, name)
			}
		}
		var err error
		if src, err = p.DS.ReadColumns(c.frag, present, c.start, c.end); err != nil {
			return nil, nil, err
		}
	} else {
		src = p.Mem[c.mem]
		src.Retain()
	}
	defer src.Release()
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	defer func() {
		for _, a := range arrs {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, name := range cols {
		fields[i] = v.Schema.Field(v.Schema.FieldIndices(name)[0])
		if idx := src.Schema().FieldIndices(name); len(idx) > 0 {
			a := src.Column(idx[0])
			if !arrow.TypeEqual(a.DataType(), fields[i].Type) {
				return nil, nil, fmt.Errorf("%w: column %q is %s here, %s in the view", ErrInvalid, name, a.DataType(), fields[i].Type)
			}
			a.Retain()
			arrs[i] = a
		} else {
			arrs[i] = array.MakeArrayOfNull(memory.DefaultAllocator, fields[i].Type, int(n))
		}
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, n)
	var keep []bool
	if c.frag >= 0 {
		if del := p.DS.Deleted(c.frag); len(del) > 0 {
			keep = make([]bool, n)
			for i := range keep {
				keep[i] = true
			}
			for _, d := range del {
				if off := int64(d); off >= c.start && off < c.end {
					keep[off-c.start] = false
				}
			}
		}
	}
	if f != nil {
		sel, err := f.Eval(rec)
		if err != nil {
			rec.Release()
			return nil, nil, err
		}
		if keep == nil {
			keep = sel
		} else {
			for i := range keep {
				keep[i] = keep[i] && sel[i]
			}
		}
	}
	return rec, keep, nil
}

// rowIDs are the Lance row addresses of a chunk's rows (fragment id << 32 |
// physical offset); nil for memory rows.
func (v *View) rowBase(c chunk) (uint64, bool) {
	if c.frag < 0 {
		return 0, false
	}
	return v.Parts[c.part].DS.FragmentInfos()[c.frag].ID<<32 | uint64(c.start), true
}

// compact keeps the rows of rec whose keep entry is true (all when keep is nil).
func compact(rec arrow.RecordBatch, keep []bool) (arrow.RecordBatch, error) {
	if keep == nil {
		rec.Retain()
		return rec, nil
	}
	type run struct{ s, e int64 }
	var runs []run
	kept := int64(0)
	for i := 0; i < len(keep); {
		if !keep[i] {
			i++
			continue
		}
		j := i
		for j < len(keep) && keep[j] {
			j++
		}
		runs = append(runs, run{int64(i), int64(j)})
		kept += int64(j - i)
		i = j
	}
	if kept == rec.NumRows() {
		rec.Retain()
		return rec, nil
	}
	if len(runs) == 1 {
		return rec.NewSlice(runs[0].s, runs[0].e), nil
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for ci, col := range rec.Columns() {
		if len(runs) == 0 {
			cols[ci] = array.NewSlice(col, 0, 0)
			continue
		}
		parts := make([]arrow.Array, len(runs))
		for i, r := range runs {
			parts[i] = array.NewSlice(col, r.s, r.e)
		}
		cat, err := array.Concatenate(parts, memory.DefaultAllocator)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, err
		}
		cols[ci] = cat
	}
	return array.NewRecordBatch(rec.Schema(), cols, kept), nil
}

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
	out, err := v.columns(o.Columns)
	if err != nil {
		return nil, err
	}
	f, err := filter.Compile(o.Filter, v.Schema)
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

// Count counts the rows selected by filter expr ("" counts every live row).
func (v *View) Count(expr string) (int64, error) {
	f, err := filter.Compile(expr, v.Schema)
	if err != nil {
		return 0, err
	}
	if f == nil {
		n := int64(0)
		for _, p := range v.Parts {
			if p.DS != nil {
				n += p.DS.CountRows()
			}
			for _, r := range p.Mem {
				n += r.NumRows()
			}
		}
		return n, nil
	}
	var total atomic.Int64
	err = v.parallel(0, "", func(c chunk) error {
		rec, keep, err := v.read(c, f.Columns(), f)
		if err != nil {
			return err
		}
		rec.Release()
		n := int64(0)
		if keep == nil {
			n = c.end - c.start
		} else {
			for _, k := range keep {
				if k {
					n++
				}
			}
		}
		total.Add(n)
		return nil
	}, nil)
	return total.Load(), err
}

// parallel runs fn over every chunk on GOMAXPROCS goroutines and returns
// the first error. perWorker, when set, is called once per worker before
// any starts, and gives that worker's function.
func (v *View) parallel(size int64, align string, fn func(chunk) error, perWorker func(w int) func(chunk) error) error {
	chunks := v.chunks(size, align)
	workers := max(1, min(runtime.GOMAXPROCS(0), len(chunks)))
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, workers)
	runs := make([]func(chunk) error, workers)
	for w := range runs {
		runs[w] = fn
		if perWorker != nil {
			runs[w] = perWorker(w)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[w] = fmt.Errorf("persisting: internal error: %v", r)
					failed.Store(true)
				}
			}()
			run := runs[w]
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				if err := run(chunks[i]); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
