package table

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/store"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
)

// ReadRange returns live rows [offset, offset+limit) in dataset order (the
// manifest's fragment order), one record batch per fragment touched. It
// binary-searches the cumulative live row counts of the fragments, maps live
// offsets to physical ones through the sorted deletion vector, and reads only
// the pages overlapping the physical range (binary search over each column's
// page starts). Rows past the end are simply not returned.
func (d *Dataset) ReadRange(offset, limit int64) ([]arrow.RecordBatch, error) {
	if offset < 0 || limit < 0 {
		return nil, fmt.Errorf("lance: %s: ReadRange(%d, %d): negative offset or limit", d.path, offset, limit)
	}
	total := d.CountRows()
	if offset >= total || limit == 0 {
		return nil, nil
	}
	end := total
	if limit < total-offset { // written so that offset+limit cannot overflow
		end = offset + limit
	}
	var out []arrow.RecordBatch
	fail := func(err error) ([]arrow.RecordBatch, error) {
		for _, r := range out {
			r.Release()
		}
		return nil, err
	}
	i := sort.Search(len(d.frags), func(i int) bool { return d.cum[i+1] > offset })
	for ; i < len(d.frags) && d.cum[i] < end; i++ {
		lo := max(offset, d.cum[i]) - d.cum[i]
		hi := min(end, d.cum[i+1]) - d.cum[i]
		if lo == hi {
			continue
		}
		rec, err := d.readFragment(&d.frags[i], lo, hi)
		if err != nil {
			return fail(err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// physicalRow maps the live-th live row of a fragment to its row offset.
// deleted[j]-j is the number of live rows before deleted[j], so the first j
// with deleted[j]-j > live is the number of deleted rows before our row.
func physicalRow(deleted []uint32, live int64) int64 {
	j := sort.Search(len(deleted), func(j int) bool { return int64(deleted[j])-int64(j) > live })
	return live + int64(j)
}

// readFragment reads live rows [lo, hi) of one fragment.
func (d *Dataset) readFragment(st *fragState, lo, hi int64) (arrow.RecordBatch, error) {
	pStart := physicalRow(st.deleted, lo)
	pEnd := physicalRow(st.deleted, hi-1) + 1
	keep := liveRuns(st.deleted, pStart, pEnd)
	files := d.openFiles(st)
	defer files.close()
	cols := make([]arrow.Array, len(d.schema.Top))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, fl := range d.schema.Top {
		a, err := files.readField(fl, pStart, pEnd)
		if err != nil {
			return nil, err
		}
		if keep != nil {
			kept, err := takeRuns(a, keep)
			a.Release()
			if err != nil {
				return nil, err
			}
			a = kept
		}
		if int64(a.Len()) != hi-lo {
			a.Release()
			return nil, fmt.Errorf("lance: %s: fragment %d field %q: read %d rows, want %d", d.path, st.f.id, fl.Name, a.Len(), hi-lo)
		}
		cols[i] = a
	}
	return array.NewRecordBatch(d.arrow, cols, hi-lo), nil
}

// run is a half-open range [start, end) of rows.
type run struct{ start, end int64 }

// liveRuns returns the runs of live rows inside physical rows [pStart,
// pEnd), relative to pStart, given the sorted deleted rows; nil when no row
// is deleted.
func liveRuns(deleted []uint32, pStart, pEnd int64) []run {
	if len(deleted) == 0 {
		return nil
	}
	var keep []run
	at := pStart
	k := sort.Search(len(deleted), func(j int) bool { return int64(deleted[j]) >= pStart })
	for ; k < len(deleted) && int64(deleted[k]) < pEnd; k++ {
		if del := int64(deleted[k]); del > at {
			keep = append(keep, run{at - pStart, del - pStart})
		}
		at = int64(deleted[k]) + 1
	}
	if at < pEnd {
		keep = append(keep, run{at - pStart, pEnd - pStart})
	}
	return keep
}

// takeRuns concatenates the given row ranges of a.
func takeRuns(a arrow.Array, runs []run) (arrow.Array, error) {
	parts := make([]arrow.Array, len(runs))
	for i, r := range runs {
		parts[i] = array.NewSlice(a, r.start, r.end)
	}
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	if len(parts) == 0 {
		return array.NewSlice(a, 0, 0), nil
	}
	return array.Concatenate(parts, memory.DefaultAllocator)
}

// fragmentFiles opens the data files of one fragment on first use, so that
// a read of several columns opens each file once.
type fragmentFiles struct {
	d      *Dataset
	st     *fragState
	opened map[int]openFile
}

type openFile struct {
	r *file.Reader
	f store.Object
}

func (d *Dataset) openFiles(st *fragState) *fragmentFiles {
	return &fragmentFiles{d: d, st: st, opened: map[int]openFile{}}
}

func (ff *fragmentFiles) close() {
	for _, o := range ff.opened {
		o.f.Close()
	}
}

// readField reads field fl over physical rows [start, end) of the fragment.
// No file of the fragment holds a column added after it was written: that
// column reads as nulls.
func (ff *fragmentFiles) readField(fl *encoding.Field, start, end int64) (arrow.Array, error) {
	fi, ok := ff.st.fileOf[fl.ID]
	if !ok {
		return encoding.NullArray(fl, uint64(end-start))
	}
	o, seen := ff.opened[fi]
	if !seen {
		var err error
		if o.r, o.f, err = ff.d.fileReader(&ff.st.f.files[fi]); err != nil {
			return nil, err
		}
		ff.opened[fi] = o
	}
	return o.r.ReadField(o.f, fl, ff.st.cols[fi], uint64(start), uint64(end))
}
