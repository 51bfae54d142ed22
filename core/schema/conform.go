package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Conform returns rec laid out as target, which must be a Unify result that
// covers rec's schema: columns are reordered by name, missing ones are all
// null, and each column is conformed by ConformArray.
// The result shares buffers with rec where no conversion is needed.
func Conform(rec arrow.RecordBatch, target *arrow.Schema, mem memory.Allocator) (arrow.RecordBatch, error) {
	if rec.Schema().Equal(target) {
		rec.Retain()
		return rec, nil
	}
	n := int(rec.NumRows())
	cols := make([]arrow.Array, target.NumFields())
	defer releaseAll(cols)
	for i, f := range target.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			cols[i] = NullArray(mem, f.Type, n)
			continue
		}
		c, err := ConformArray(f.Name, rec.Column(idx[0]), f.Type, mem)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return array.NewRecordBatch(target, cols, rec.NumRows()), nil
}

// ConformArray returns arr as an array of type dt, which must hold arr's
// values under the evolution rules: a null-typed array becomes NULLs of dt,
// int64 values become float64, struct children are matched by name (missing
// ones are NULL, extra ones dropped), list and large_list items are conformed
// likewise, and a timestamp in another zone (same unit) or a fixed-size list
// whose item field is named or flagged differently takes dt's label. path
// names arr in errors (a *Error). The result shares buffers with arr where
// no conversion is needed; rebuilt structs and lists start at offset 0.
func ConformArray(path string, arr arrow.Array, dt arrow.DataType, mem memory.Allocator) (arrow.Array, error) {
	src := arr.DataType()
	if arrow.TypeEqual(src, dt) {
		arr.Retain()
		return arr, nil
	}
	if src.ID() == arrow.NULL {
		return NullArray(mem, dt, arr.Len()), nil
	}
	switch t := dt.(type) {
	case *arrow.Float64Type:
		if ints, ok := arr.(*array.Int64); ok {
			return widen(ints, mem), nil
		}
	case *arrow.TimestampType:
		// The zone is a label on UTC instants (see unifyType).
		if ts, ok := src.(*arrow.TimestampType); ok && ts.Unit == t.Unit {
			return relabel(arr, dt), nil
		}
	case *arrow.FixedSizeListType:
		// Only the item field's name, nullability or metadata differ.
		if fl, ok := src.(*arrow.FixedSizeListType); ok && fl.Len() == t.Len() && arrow.TypeEqual(fl.Elem(), t.Elem()) {
			return relabel(arr, dt), nil
		}
	case *arrow.StructType:
		if s, ok := arr.(*array.Struct); ok {
			return conformStruct(path, s, t, mem)
		}
	case *arrow.ListType, *arrow.LargeListType:
		if l, ok := arr.(array.ListLike); ok && src.ID() == dt.ID() {
			return conformList(path, l, dt.(arrow.ListLikeType), mem)
		}
	}
	return nil, &Error{Field: path, Table: dt, Incoming: src}
}

// widen converts int64 values to float64.
func widen(ints *array.Int64, mem memory.Allocator) arrow.Array {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(ints.Len())
	for i := 0; i < ints.Len(); i++ {
		if ints.IsNull(i) {
			b.AppendNull()
		} else {
			b.UnsafeAppend(float64(ints.Value(i)))
		}
	}
	return b.NewArray()
}

// relabel returns arr's data under type dt, whose layout is arr's.
func relabel(arr arrow.Array, dt arrow.DataType) arrow.Array {
	d := arr.Data()
	data := array.NewData(dt, arr.Len(), d.Buffers(), d.Children(), arr.NullN(), d.Offset())
	defer data.Release()
	return array.MakeFromData(data)
}

func conformStruct(path string, s *array.Struct, t *arrow.StructType, mem memory.Allocator) (arrow.Array, error) {
	st := s.DataType().(*arrow.StructType)
	children := make([]arrow.Array, t.NumFields())
	defer releaseAll(children)
	for i, f := range t.Fields() {
		j, ok := st.FieldIdx(f.Name)
		if !ok {
			children[i] = NullArray(mem, f.Type, s.Len())
			continue
		}
		// arrow-go's Struct.Field is already sliced by the parent's
		// offset, so the new parent can start at zero.
		c, err := ConformArray(path+"."+f.Name, s.Field(j), f.Type, mem)
		if err != nil {
			return nil, err
		}
		children[i] = c
	}
	return rebuild(t, s, nil, children, mem), nil
}

func conformList(path string, l array.ListLike, t arrow.ListLikeType, mem memory.Allocator) (arrow.Array, error) {
	// Re-base offsets at zero so that the items can be conformed as one
	// slice.
	n := l.Len()
	start, end := int64(0), int64(0)
	if n > 0 {
		start, _ = l.ValueOffsets(0)
		_, end = l.ValueOffsets(n - 1)
	}
	values := array.NewSlice(l.ListValues(), start, end)
	defer values.Release()
	items, err := ConformArray(path+"[]", values, t.Elem(), mem)
	if err != nil {
		return nil, err
	}
	defer items.Release()
	offs := memory.NewResizableBuffer(mem)
	defer offs.Release()
	if t.ID() == arrow.LARGE_LIST {
		offs.Resize(arrow.Int64Traits.BytesRequired(n + 1))
		rebase(arrow.Int64Traits.CastFromBytes(offs.Bytes()), l, start)
	} else {
		offs.Resize(arrow.Int32Traits.BytesRequired(n + 1))
		rebase(arrow.Int32Traits.CastFromBytes(offs.Bytes()), l, start)
	}
	return rebuild(t, l, offs, []arrow.Array{items}, mem), nil
}

// rebase fills dst (one more than l's length) with l's end offsets less
// start, after a leading zero.
func rebase[T int32 | int64](dst []T, l array.ListLike, start int64) {
	dst[0] = 0
	for i := range len(dst) - 1 {
		_, e := l.ValueOffsets(i)
		dst[i+1] = T(e - start)
	}
}

// rebuild makes an array of type t at offset 0 with like's length and nulls,
// the given second buffer (list offsets, or nil) and children.
func rebuild(t arrow.DataType, like arrow.Array, second *memory.Buffer, children []arrow.Array, mem memory.Allocator) arrow.Array {
	validity := validityAtZero(like, mem)
	if validity != nil {
		defer validity.Release()
	}
	bufs := []*memory.Buffer{validity}
	if second != nil {
		bufs = append(bufs, second)
	}
	kids := make([]arrow.ArrayData, len(children))
	for i, c := range children {
		kids[i] = c.Data()
	}
	data := array.NewData(t, like.Len(), bufs, kids, like.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// validityAtZero returns arr's validity bitmap re-based at offset zero, or
// nil when arr has no nulls.
func validityAtZero(arr arrow.Array, mem memory.Allocator) *memory.Buffer {
	if arr.NullN() == 0 {
		return nil
	}
	n := arr.Len()
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(n))))
	bits := buf.Bytes()
	if b := arr.Data().Buffers()[0]; b != nil {
		bitutil.CopyBitmap(b.Bytes(), arr.Data().Offset(), n, bits, 0)
		return buf
	}
	for i := 0; i < n; i++ {
		bitutil.SetBitTo(bits, i, arr.IsValid(i))
	}
	return buf
}

func releaseAll(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}
