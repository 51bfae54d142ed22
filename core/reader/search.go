package reader

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
	if o.K <= 0 {
		return nil, fmt.Errorf("%w: k must be positive, got %d", ErrInvalid, o.K)
	}
	if o.Metric == "" {
		o.Metric = "l2"
	}
	m, err := vector.ParseMetric(o.Metric)
	if err != nil {
		return nil, err
	}
	idx := v.Schema.FieldIndices(o.Column)
	if len(idx) == 0 {
		return nil, &filter.Error{Column: o.Column, Msg: "no such vector column"}
	}
	ft, ok := v.Schema.Field(idx[0]).Type.(*arrow.FixedSizeListType)
	if !ok || ft.Elem().ID() != arrow.FLOAT32 {
		return nil, &filter.Error{Column: o.Column, Msg: fmt.Sprintf("has type %s; search needs fixed_size_list<float32>", v.Schema.Field(idx[0]).Type)}
	}
	if int(ft.Len()) != len(o.Query) {
		return nil, &filter.Error{Column: o.Column, Msg: fmt.Sprintf("has dimension %d, the query has %d", ft.Len(), len(o.Query))}
	}
	q, err := vector.NewQuery(m, o.Query)
	if err != nil {
		return nil, err
	}
	out, err := v.columns(o.Columns)
	if err != nil {
		return nil, err
	}
	f, err := filter.Compile(o.Filter, v.Schema)
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
	dim := int(ft.Len())
	var tops []*vector.TopK
	err = v.parallel(searchChunkRows, o.Column, nil, func(int) func(chunk) error {
		top := vector.NewTopK(o.K)
		tops = append(tops, top) // called before the workers start
		return func(c chunk) error {
			if o.SkipPersisted && c.frag >= 0 {
				return nil
			}
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

// materialize reads the chosen columns of the hits and appends _distance,
// _rowid and (several buckets) _bucket.
func (v *View) materialize(hits []vector.Hit, cols []string) (arrow.RecordBatch, error) {
	type loc struct {
		part, frag int
		off        int64
	}
	fragIndex := make([]map[uint64]int, len(v.Parts))
	locOf := func(h vector.Hit) loc {
		p := int(h.Src)
		if h.ID&memID != 0 {
			return loc{p, -1 - int((h.ID&^memID)>>32), int64(h.ID & 0xffffffff)}
		}
		if fragIndex[p] == nil {
			fragIndex[p] = map[uint64]int{}
			for i, fi := range v.Parts[p].DS.FragmentInfos() {
				fragIndex[p][fi.ID] = i
			}
		}
		return loc{p, fragIndex[p][h.ID>>32], int64(h.ID & 0xffffffff)}
	}
	// Read each touched fragment once over the span of its hits when that
	// span is small, else row by row.
	type group struct {
		c    chunk
		rec  arrow.RecordBatch
		offs []int64
	}
	groups := map[[2]int]*group{}
	locs := make([]loc, len(hits))
	for i, h := range hits {
		l := locOf(h)
		locs[i] = l
		g := groups[[2]int{l.part, l.frag}]
		if g == nil {
			g = &group{}
			groups[[2]int{l.part, l.frag}] = g
		}
		g.offs = append(g.offs, l.off)
	}
	defer func() {
		for _, g := range groups {
			if g.rec != nil {
				g.rec.Release()
			}
		}
	}()
	single := map[loc]arrow.RecordBatch{}
	defer func() {
		for _, r := range single {
			r.Release()
		}
	}()
	for key, g := range groups {
		sort.Slice(g.offs, func(i, j int) bool { return g.offs[i] < g.offs[j] })
		lo, hi := g.offs[0], g.offs[len(g.offs)-1]+1
		if key[1] < 0 {
			g.c = chunk{part: key[0], frag: -1, mem: -1 - key[1], start: 0, end: v.Parts[key[0]].Mem[-1-key[1]].NumRows()}
		} else if hi-lo <= int64(4*len(g.offs))+4096 {
			g.c = chunk{part: key[0], frag: key[1], mem: -1, start: lo, end: hi}
		} else {
			for _, off := range g.offs {
				rec, _, err := v.read(chunk{part: key[0], frag: key[1], mem: -1, start: off, end: off + 1}, cols, nil)
				if err != nil {
					return nil, err
				}
				single[loc{key[0], key[1], off}] = rec
			}
			continue
		}
		rec, _, err := v.read(g.c, cols, nil)
		if err != nil {
			return nil, err
		}
		g.rec = rec
	}
	fields := make([]arrow.Field, 0, len(cols)+3)
	for _, c := range cols {
		fields = append(fields, v.Schema.Field(v.Schema.FieldIndices(c)[0]))
	}
	multi := v.multiBucket()
	fields = append(fields,
		arrow.Field{Name: DistanceColumn, Type: arrow.PrimitiveTypes.Float32},
		arrow.Field{Name: RowIDColumn, Type: arrow.PrimitiveTypes.Uint64, Nullable: true})
	if multi {
		fields = append(fields, arrow.Field{Name: BucketColumn, Type: arrow.PrimitiveTypes.Int32})
	}
	schema := arrow.NewSchema(fields, nil)
	arrs := make([]arrow.Array, 0, len(fields))
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	for ci := range cols {
		parts := make([]arrow.Array, len(hits))
		for i, l := range locs {
			if r, ok := single[l]; ok {
				parts[i] = array.NewSlice(r.Column(ci), 0, 1)
				continue
			}
			g := groups[[2]int{l.part, l.frag}]
			at := l.off - g.c.start
			parts[i] = array.NewSlice(g.rec.Column(ci), at, at+1)
		}
		var a arrow.Array
		var err error
		if len(parts) == 0 {
			a = array.MakeArrayOfNull(memory.DefaultAllocator, fields[ci].Type, 0)
		} else {
			a, err = array.Concatenate(parts, memory.DefaultAllocator)
		}
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, err
		}
		arrs = append(arrs, a)
	}
	db := array.NewFloat32Builder(memory.DefaultAllocator)
	ib := array.NewUint64Builder(memory.DefaultAllocator)
	bb := array.NewInt32Builder(memory.DefaultAllocator)
	defer db.Release()
	defer ib.Release()
	defer bb.Release()
	for i, h := range hits {
		db.Append(h.Dist)
		if h.ID&memID != 0 {
			ib.AppendNull()
		} else {
			ib.Append(h.ID)
		}
		bb.Append(int32(v.Parts[locs[i].part].Bucket))
	}
	arrs = append(arrs, db.NewArray(), ib.NewArray())
	if multi {
		arrs = append(arrs, bb.NewArray())
	}
	return array.NewRecordBatch(schema, arrs, int64(len(hits))), nil
}
