package reader

import (
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/vector"
)

// hitLoc is where a hit's row lives: physical row off of fragment frag of
// part part, or (frag < 0) row off of memory batch -1-frag.
type hitLoc struct {
	part, frag int
	off        int64
}

// hitGroup is the hits of one fragment or memory batch, read as one chunk
// (rec) when their span is small.
type hitGroup struct {
	c    chunk
	rec  arrow.RecordBatch
	offs []int64
}

// hitRows holds the rows of a search's hits: each touched fragment is read
// once over the span of its hits when that span is small, else row by row
// (single).
type hitRows struct {
	locs   []hitLoc
	groups map[[2]int]*hitGroup
	single map[hitLoc]arrow.RecordBatch
}

func (rows *hitRows) release() {
	for _, g := range rows.groups {
		if g.rec != nil {
			g.rec.Release()
		}
	}
	for _, r := range rows.single {
		r.Release()
	}
}

// materialize reads the chosen columns of the hits and appends _distance,
// _rowid and (several buckets) _bucket.
func (v *View) materialize(hits []vector.Hit, cols []string) (arrow.RecordBatch, error) {
	rows := v.locate(hits)
	defer rows.release()
	if err := v.readHits(rows, cols); err != nil {
		return nil, err
	}
	schema, multi := v.hitSchema(cols)
	arrs := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	for ci := range cols {
		a, err := rows.column(ci, schema.Field(ci).Type)
		if err != nil {
			return nil, err
		}
		arrs = append(arrs, a)
	}
	arrs = append(arrs, v.hitExtras(hits, rows.locs, multi)...)
	return array.NewRecordBatch(schema, arrs, int64(len(hits))), nil
}

// locate finds the row of every hit and groups the hits by fragment or
// memory batch.
func (v *View) locate(hits []vector.Hit) *hitRows {
	fragIndex := make([]map[uint64]int, len(v.Parts))
	locOf := func(h vector.Hit) hitLoc {
		p := int(h.Src)
		if h.ID&memID != 0 {
			return hitLoc{p, -1 - int((h.ID&^memID)>>32), int64(h.ID & 0xffffffff)}
		}
		if fragIndex[p] == nil {
			fragIndex[p] = map[uint64]int{}
			for i, fi := range v.Parts[p].DS.FragmentInfos() {
				fragIndex[p][fi.ID] = i
			}
		}
		return hitLoc{p, fragIndex[p][h.ID>>32], int64(h.ID & 0xffffffff)}
	}
	rows := &hitRows{
		locs:   make([]hitLoc, len(hits)),
		groups: map[[2]int]*hitGroup{},
		single: map[hitLoc]arrow.RecordBatch{},
	}
	for i, h := range hits {
		l := locOf(h)
		rows.locs[i] = l
		g := rows.groups[[2]int{l.part, l.frag}]
		if g == nil {
			g = &hitGroup{}
			rows.groups[[2]int{l.part, l.frag}] = g
		}
		g.offs = append(g.offs, l.off)
	}
	return rows
}

// readHits reads the columns of every group: a memory batch whole, a
// fragment over the span of its hits when that span is small, else row by
// row.
func (v *View) readHits(rows *hitRows, cols []string) error {
	for key, g := range rows.groups {
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
					return err
				}
				rows.single[hitLoc{key[0], key[1], off}] = rec
			}
			continue
		}
		rec, _, err := v.read(g.c, cols, nil)
		if err != nil {
			return err
		}
		g.rec = rec
	}
	return nil
}

// hitSchema is the schema of a search result: the chosen columns, then
// _distance, _rowid and, when the view spans several buckets (multi),
// _bucket.
func (v *View) hitSchema(cols []string) (schema *arrow.Schema, multi bool) {
	fields := make([]arrow.Field, 0, len(cols)+3)
	for _, c := range cols {
		fields = append(fields, v.Schema.Field(v.Schema.FieldIndices(c)[0]))
	}
	multi = v.multiBucket()
	fields = append(fields,
		arrow.Field{Name: DistanceColumn, Type: arrow.PrimitiveTypes.Float32},
		arrow.Field{Name: RowIDColumn, Type: arrow.PrimitiveTypes.Uint64, Nullable: true})
	if multi {
		fields = append(fields, arrow.Field{Name: BucketColumn, Type: arrow.PrimitiveTypes.Int32})
	}
	return arrow.NewSchema(fields, nil), multi
}

// column gathers column ci of every hit's row, in hit order.
func (rows *hitRows) column(ci int, typ arrow.DataType) (arrow.Array, error) {
	parts := make([]arrow.Array, len(rows.locs))
	for i, l := range rows.locs {
		if r, ok := rows.single[l]; ok {
			parts[i] = array.NewSlice(r.Column(ci), 0, 1)
			continue
		}
		g := rows.groups[[2]int{l.part, l.frag}]
		at := l.off - g.c.start
		parts[i] = array.NewSlice(g.rec.Column(ci), at, at+1)
	}
	var a arrow.Array
	var err error
	if len(parts) == 0 {
		a = array.MakeArrayOfNull(memory.DefaultAllocator, typ, 0)
	} else {
		a, err = array.Concatenate(parts, memory.DefaultAllocator)
	}
	for _, p := range parts {
		p.Release()
	}
	return a, err
}

// hitExtras are the _distance, _rowid (null for buffered rows) and, with
// multi, _bucket columns of the hits.
func (v *View) hitExtras(hits []vector.Hit, locs []hitLoc, multi bool) []arrow.Array {
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
	out := []arrow.Array{db.NewArray(), ib.NewArray()}
	if multi {
		out = append(out, bb.NewArray())
	}
	return out
}
