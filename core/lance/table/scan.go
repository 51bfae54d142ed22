package table

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
)

// FragmentInfo describes one fragment of a version, in manifest order.
// Lance's row address of physical row r of the fragment is ID<<32 | r.
type FragmentInfo struct {
	ID           uint64
	PhysicalRows int64
	LiveRows     int64
}

// FragmentInfos lists the fragments of this version in manifest order.
func (d *Dataset) FragmentInfos() []FragmentInfo {
	out := make([]FragmentInfo, len(d.frags))
	for i, st := range d.frags {
		out[i] = FragmentInfo{ID: st.f.id, PhysicalRows: int64(st.f.physicalRows), LiveRows: st.live}
	}
	return out
}

// Deleted returns the sorted deleted row offsets of fragment i (shared: do
// not modify).
func (d *Dataset) Deleted(i int) []uint32 { return d.frags[i].deleted }

// Path is the dataset directory.
func (d *Dataset) Path() string { return d.path }

// IndexedFragments returns the ids of this version's fragments that some
// index covers.
func (d *Dataset) IndexedFragments() (map[uint64]bool, error) { return d.m.indexedFragments() }

// HasIndices tells whether the manifest lists any index.
func (d *Dataset) HasIndices() bool { return d.m.indexSection != nil }

// ReadColumns reads physical rows [start, end) of fragment i (deleted rows
// included: the caller drops them with Deleted) for the named top-level
// columns, in the order given. The batch's schema holds those fields.
func (d *Dataset) ReadColumns(i int, columns []string, start, end int64) (arrow.RecordBatch, error) {
	if i < 0 || i >= len(d.frags) {
		return nil, fmt.Errorf("lance: %s: fragment index %d of %d", d.path, i, len(d.frags))
	}
	st := &d.frags[i]
	if start < 0 || end < start || end > int64(st.f.physicalRows) {
		return nil, fmt.Errorf("lance: %s: fragment %d: rows [%d, %d) outside [0, %d)", d.path, st.f.id, start, end, st.f.physicalRows)
	}
	files := d.openFiles(st)
	defer files.close()
	fields := make([]arrow.Field, 0, len(columns))
	cols := make([]arrow.Array, 0, len(columns))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, name := range columns {
		var fl *encoding.Field
		var af arrow.Field
		for j, f := range d.schema.Top {
			if f.Name == name {
				fl, af = f, d.arrow.Field(j)
				break
			}
		}
		if fl == nil {
			return nil, fmt.Errorf("lance: %s: no column %q", d.path, name)
		}
		a, err := files.readField(fl, start, end)
		if err != nil {
			return nil, err
		}
		if int64(a.Len()) != end-start {
			a.Release()
			return nil, fmt.Errorf("lance: %s: fragment %d field %q: read %d rows, want %d", d.path, st.f.id, name, a.Len(), end-start)
		}
		fields = append(fields, af)
		cols = append(cols, a)
	}
	md := d.arrow.Metadata()
	return array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, end-start), nil
}

// PageStarts returns the first physical row of every page of the named
// top-level column in fragment i, then the row count: reads split there
// decode every page once. Nil when no file of the fragment holds the column.
func (d *Dataset) PageStarts(i int, column string) ([]int64, error) {
	st := &d.frags[i]
	for _, f := range d.schema.Top {
		if f.Name != column {
			continue
		}
		fi, ok := st.fileOf[f.ID]
		if !ok {
			return nil, nil
		}
		r, o, err := d.fileReader(&st.f.files[fi])
		if err != nil {
			return nil, err
		}
		o.Close()
		c, ok := st.cols[fi][f.ID]
		if !ok || c < 0 || c >= r.NumColumns() {
			return nil, nil
		}
		pages := r.Pages(c)
		out := make([]int64, 1, len(pages)+1)
		for _, p := range pages {
			out = append(out, out[len(out)-1]+int64(p.Length))
		}
		return out, nil
	}
	return nil, fmt.Errorf("lance: %s: no column %q", d.path, column)
}
