package file

import (
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/lance/encoding"
)

// pagesFor returns the index range [lo, hi) of the pages overlapping slots
// [start, end) of a column.
func (c *columnMeta) pagesFor(start, end uint64) (int, int) {
	lo := sort.Search(len(c.pages), func(i int) bool { return c.starts[i+1] > start })
	hi := sort.Search(len(c.pages), func(i int) bool { return c.starts[i] >= end })
	return lo, hi
}

// ReadField reads slots [start, end) of field f from this file. cols maps a
// field id to its column index in this file; a field with no column reads as
// nulls (a column added after the file was written).
func (r *Reader) ReadField(ra io.ReaderAt, f *encoding.Field, cols map[int32]int, start, end uint64) (arrow.Array, error) {
	c, ok := cols[f.ID]
	if !ok {
		a, err := encoding.NullArray(f, end-start)
		if err != nil {
			return nil, fmt.Errorf("lance: %s: %w", r.path, err)
		}
		return a, nil
	}
	if c < 0 || c >= len(r.columns) {
		return nil, fmt.Errorf("lance: %s: field %q maps to column %d of %d", r.path, f.Name, c, len(r.columns))
	}
	cm := &r.columns[c]
	if total := cm.starts[len(cm.starts)-1]; end > total && f.Type.ID() != arrow.STRUCT {
		return nil, fmt.Errorf("lance: %s: field %q: column %d has %d values, asked for [%d, %d)", r.path, f.Name, c, total, start, end)
	}
	switch f.Type.ID() {
	case arrow.STRUCT:
		// A 2.0 struct header column holds no validity or values: the
		// struct is its children.
		kids := make([]arrow.ArrayData, len(f.Children))
		for i, ch := range f.Children {
			a, err := r.ReadField(ra, ch, cols, start, end)
			if err != nil {
				return nil, err
			}
			kids[i] = a.Data()
			defer a.Release()
		}
		d := array.NewData(f.Type, int(end-start), []*memory.Buffer{nil}, kids, 0, 0)
		defer d.Release()
		return array.MakeFromData(d), nil
	case arrow.LIST, arrow.LARGE_LIST:
		return r.readList(ra, f, cm, cols, start, end)
	}
	return r.readLeaf(ra, f, cm, start, end)
}

func (r *Reader) readLeaf(ra io.ReaderAt, f *encoding.Field, cm *columnMeta, start, end uint64) (arrow.Array, error) {
	lo, hi := cm.pagesFor(start, end)
	var parts []arrow.Array
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	for i := lo; i < hi; i++ {
		p := &cm.pages[i]
		ps := cm.starts[i]
		s, e := max(start, ps)-ps, min(end, ps+p.length)-ps
		var d arrow.ArrayData
		var err error
		if p.enc.Kind == encoding.EncNullable && p.enc.Nulls == encoding.AllNulls {
			d, err = encoding.NullData(f.Type, e-s) // only the slots we need
			s, e = 0, e-s
		} else {
			var bufs [][]byte
			if bufs, err = r.readBuffers(ra, p); err == nil {
				d, err = encoding.DecodeLeaf(p.enc, f.Type, p.length, bufs)
			}
		}
		if err != nil {
			return nil, r.wrap(p.pos(), fmt.Errorf("field %q page %d: %w", f.Name, i, err))
		}
		a := array.MakeFromData(d)
		d.Release()
		if s != 0 || e != uint64(a.Len()) {
			sl := array.NewSlice(a, int64(s), int64(e))
			a.Release()
			a = sl
		}
		parts = append(parts, a)
	}
	return concat(f.Type, parts)
}

func concat(t arrow.DataType, parts []arrow.Array) (arrow.Array, error) {
	switch len(parts) {
	case 0:
		b := array.NewBuilder(memory.DefaultAllocator, t)
		defer b.Release()
		return b.NewArray(), nil
	case 1:
		parts[0].Retain()
		return parts[0], nil
	}
	return array.Concatenate(parts, memory.DefaultAllocator)
}

// readList reads list rows [start, end): their offsets pages give validity
// and item ranges, and the items are one contiguous range of the item column
// because each offsets page's items follow the previous page's (§9 lists).
func (r *Reader) readList(ra io.ReaderAt, f *encoding.Field, cm *columnMeta, cols map[int32]int, start, end uint64) (arrow.Array, error) {
	rows, err := r.readListRows(ra, f, cm, start, end)
	if err != nil {
		return nil, err
	}
	first, last := rows.first, rows.last()
	if f.Type.ID() != arrow.LARGE_LIST && last-first > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %s: list %q rows [%d, %d) hold %d items; use large_list", encoding.ErrUnsupported, r.path, f.Name, start, end, last-first)
	}
	items, err := r.ReadField(ra, f.Children[0], cols, first, last)
	if err != nil {
		return nil, err
	}
	defer items.Release()
	return rows.array(f.Type, items), nil
}

// listRows is what the offsets pages say of some list rows: the absolute
// index of the first row's first item, and each row's end and validity.
type listRows struct {
	first uint64
	ends  []uint64 // absolute item index of each row's end
	valid []bool
}

func (l *listRows) last() uint64 {
	if len(l.ends) == 0 {
		return l.first
	}
	return l.ends[len(l.ends)-1]
}

// readListRows decodes the offsets pages of list rows [start, end).
func (r *Reader) readListRows(ra io.ReaderAt, f *encoding.Field, cm *columnMeta, start, end uint64) (*listRows, error) {
	n := end - start
	rows := &listRows{ends: make([]uint64, 0, n), valid: make([]bool, 0, n)}
	lo, hi := cm.pagesFor(start, end)
	if n > 0 && lo < len(cm.pages) && cm.itemStarts == nil {
		return nil, fmt.Errorf("lance: %s: list field %q has no list pages", r.path, f.Name)
	}
	for i := lo; i < hi; i++ {
		if err := r.addListPage(ra, f, cm, i, start, end, i == lo, rows); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// addListPage appends the rows of page i that fall in [start, end) to rows;
// the first page read also gives the first item. An offset at or above the
// page's null adjustment marks a NULL row (§9 lists).
func (r *Reader) addListPage(ra io.ReaderAt, f *encoding.Field, cm *columnMeta, i int, start, end uint64, first bool, rows *listRows) error {
	p := &cm.pages[i]
	ps := cm.starts[i]
	s, e := max(start, ps)-ps, min(end, ps+p.length)-ps
	bufs, err := r.readBuffers(ra, p)
	if err != nil {
		return err
	}
	raw, err := encoding.DecodeUints(p.enc.Offsets, p.length, bufs)
	if err != nil {
		return r.wrap(p.pos(), fmt.Errorf("list %q page %d offsets: %w", f.Name, i, err))
	}
	adj, base := p.enc.NullAdj, cm.itemStarts[i]
	norm := func(v uint64) uint64 {
		if adj > 0 && v >= adj {
			return v - adj
		}
		return v
	}
	prev := uint64(0)
	if s > 0 {
		prev = norm(raw[s-1])
	}
	if first {
		rows.first = base + prev
	}
	for k := s; k < e; k++ {
		v := norm(raw[k])
		if v < prev || v > p.enc.NumItems {
			return r.errorf(p.pos(), "list %q page %d: end offset %d out of order or beyond %d items", f.Name, i, v, p.enc.NumItems)
		}
		prev = v
		rows.ends = append(rows.ends, base+v)
		rows.valid = append(rows.valid, !(adj > 0 && raw[k] >= adj))
	}
	return nil
}

// array builds the list array of type t over items, which hold the items
// from rows.first on.
func (l *listRows) array(t arrow.DataType, items arrow.Array) arrow.Array {
	vb, nulls := encoding.Validity(l.valid)
	offs := encoding.EndOffsets(l.ends, l.first, t.ID() == arrow.LARGE_LIST)
	d := array.NewData(t, len(l.ends), []*memory.Buffer{vb, offs}, []arrow.ArrayData{items.Data()}, nulls, 0)
	defer d.Release()
	return array.MakeFromData(d)
}
