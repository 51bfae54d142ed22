package reader

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/filter"
)

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

// projection checks the chosen columns (nil: every column) and compiles
// the filter (nil for none) against the view, as scans and searches begin.
func (v *View) projection(cols []string, expr string) ([]string, *filter.Filter, error) {
	out, err := v.columns(cols)
	if err != nil {
		return nil, nil, err
	}
	f, err := filter.Compile(expr, v.Schema)
	if err != nil {
		return nil, nil, err
	}
	return out, f, nil
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
