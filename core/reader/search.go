package reader

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/filter"
	"github.com/persisting/persisting/core/vector"
)

// SearchOptions describe an exact k-nearest-neighbour search.
type SearchOptions struct {
	Column  string
	Query   []float32
	K       int
	Metric  string // "l2" (default), "cosine", "dot"
	Filter  string
	Columns []string // nil: every column
	// SkipPersisted searches only memory parts (a writer's buffer), for
	// callers that search the dataset through an index elsewhere.
	SkipPersisted bool
}

// searchChunkRows is the work unit of a search, in whole pages of the
// vector column (a chunk that cut a page would decode it twice): small
// enough that the cores share even one fragment evenly.
const searchChunkRows = 16384

// memID marks the hit ids of memory rows: memID | batch<<32 | row.
const memID = uint64(1) << 63

// Search returns the K rows nearest to the query among those the filter
// selects (the filter applies before the top-k, as pylance's prefilter),
// best first, ties by bucket then row id: the chosen columns, then
// _distance (float32), _rowid (uint64, null for buffered rows) and, when
// the view spans several buckets, _bucket (int32).
func (v *View) Search(o SearchOptions) (arrow.RecordBatch, error) {
	q, dim, err := v.searchQuery(&o)
	if err != nil {
		return nil, err
	}
	out, f, err := v.projection(o.Columns, o.Filter)
	if err != nil {
		return nil, err
	}
	read := []string{o.Column}
	if f != nil {
		for _, c := range f.Columns() {
			if !contains(read, c) {
				read = append(read, c)
			}
		}
	}
	var tops []*vector.TopK
	err = v.parallel(searchChunkRows, o.Column, nil, func(int) func(chunk) error {
		top := vector.NewTopK(o.K)
		tops = append(tops, top) // called before the workers start
		return func(c chunk) error {
			if o.SkipPersisted && c.frag >= 0 {
				return nil
			}
			return v.scoreChunk(c, read, f, q, dim, top)
		}
	})
	if err != nil {
		return nil, err
	}
	all := vector.NewTopK(o.K)
	for _, t := range tops {
		all.Merge(t)
	}
	return v.materialize(all.Sorted(), out)
}

// searchQuery checks k, the metric and the vector column against the
// query (defaulting the metric to l2) and returns the query and its
// dimension.
func (v *View) searchQuery(o *SearchOptions) (*vector.Query, int, error) {
	if o.K <= 0 {
		return nil, 0, fmt.Errorf("%w: k must be positive, got %d", ErrInvalid, o.K)
	}
	if o.Metric == "" {
		o.Metric = "l2"
	}
	m, err := vector.ParseMetric(o.Metric)
	if err != nil {
		return nil, 0, err
	}
	idx := v.Schema.FieldIndices(o.Column)
	if len(idx) == 0 {
		return nil, 0, &filter.Error{Column: o.Column, Msg: "no such vector column"}
	}
	ft, ok := v.Schema.Field(idx[0]).Type.(*arrow.FixedSizeListType)
	if !ok || ft.Elem().ID() != arrow.FLOAT32 {
		return nil, 0, &filter.Error{Column: o.Column, Msg: fmt.Sprintf("has type %s; search needs fixed_size_list<float32>", v.Schema.Field(idx[0]).Type)}
	}
	if int(ft.Len()) != len(o.Query) {
		return nil, 0, &filter.Error{Column: o.Column, Msg: fmt.Sprintf("has dimension %d, the query has %d", ft.Len(), len(o.Query))}
	}
	q, err := vector.NewQuery(m, o.Query)
	if err != nil {
		return nil, 0, err
	}
	return q, int(ft.Len()), nil
}

// scoreChunk scores the live, selected, non-null vectors of one chunk
// (the vector column is read first) into top.
func (v *View) scoreChunk(c chunk, read []string, f *filter.Filter, q *vector.Query, dim int, top *vector.TopK) error {
	rec, keep, err := v.read(c, read, f)
	if err != nil {
		return err
	}
	defer rec.Release()
	col := rec.Column(0).(*array.FixedSizeList)
	vals := col.ListValues().(*array.Float32).Float32Values()
	data := vals[col.Offset()*dim : (col.Offset()+col.Len())*dim]
	if col.NullN() > 0 {
		if keep == nil {
			keep = make([]bool, col.Len())
			for i := range keep {
				keep[i] = true
			}
		}
		for i := range keep {
			keep[i] = keep[i] && col.IsValid(i)
		}
	}
	base, ok := v.rowBase(c)
	if !ok {
		base = memID | uint64(c.mem)<<32
	}
	q.Score(top, uint32(c.part), data, base, nil, keep)
	return nil
}
