package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Conform returns rec laid out as target, which must be a Unify result that
// covers rec's schema: columns are reordered by name, missing ones are all
// null, and int64 values are converted to float64 where target widened them.
// The result shares buffers with rec where no conversion is needed.
func Conform(rec arrow.RecordBatch, target *arrow.Schema, mem memory.Allocator) (arrow.RecordBatch, error) {
	if rec.Schema().Equal(target) {
		rec.Retain()
		return rec, nil
	}
	n := int(rec.NumRows())
	cols := make([]arrow.Array, target.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range target.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			cols[i] = NullArray(mem, f.Type, n)
			continue
		}
		c, err := conformArray(f.Name, rec.Column(idx[0]), f.Type, mem)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return array.NewRecordBatch(target, cols, rec.NumRows()), nil
}

func conformArray(path string, arr arrow.Array, dt arrow.DataType, mem memory.Allocator) (arrow.Array, error) {
	if arrow.TypeEqual(arr.DataType(), dt) {
		arr.Retain()
		return arr, nil
	}
	if arr.DataType().ID() == arrow.NULL {
		return NullArray(mem, dt, arr.Len()), nil
	}
	switch t := dt.(type) {
	case *arrow.Float64Type:
		if ints, ok := arr.(*array.Int64); ok {
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
			return b.NewArray(), nil
		}
	case *arrow.TimestampType:
		if _, ok := arr.DataType().(*arrow.TimestampType); ok {
			data := array.NewData(t, arr.Len(), arr.Data().Buffers(), nil, arr.NullN(), arr.Data().Offset())
			defer data.Release()
			return array.MakeFromData(data), nil
		}
	case *arrow.StructType:
		if s, ok := arr.(*array.Struct); ok {
			return conformStruct(path, s, t, mem)
		}
	case *arrow.ListType:
		if l, ok := arr.(*array.List); ok {
			return conformList(path, l, t, mem)
		}
	}
	return nil, &Error{Field: path, Table: dt, Incoming: arr.DataType()}
}

func conformStruct(path string, s *array.Struct, t *arrow.StructType, mem memory.Allocator) (arrow.Array, error) {
	st := s.DataType().(*arrow.StructType)
	children := make([]arrow.ArrayData, t.NumFields())
	defer func() {
		for _, c := range children {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range t.Fields() {
		var child arrow.Array
		if j, ok := st.FieldIdx(f.Name); ok {
			// arrow-go's Struct.Field is already sliced by the parent's
			// offset, so the new parent can start at zero.
			c, err := conformArray(path+"."+f.Name, s.Field(j), f.Type, mem)
			if err != nil {
				return nil, err
			}
			child = c
		} else {
			child = NullArray(mem, f.Type, s.Len())
		}
		children[i] = child.Data()
		children[i].Retain()
		child.Release()
	}
	validity := sliceValidity(s, mem)
	if validity != nil {
		defer validity.Release()
	}
	data := array.NewData(t, s.Len(), []*memory.Buffer{validity}, children, s.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

func conformList(path string, l *array.List, t *arrow.ListType, mem memory.Allocator) (arrow.Array, error) {
	// Re-base offsets at zero so the child can be conformed as a whole slice.
	// Offsets() is the whole buffer, not the slice.
	off := l.Offsets()[l.Data().Offset() : l.Data().Offset()+l.Len()+1]
	start, end := int64(off[0]), int64(off[len(off)-1])
	values := array.NewSlice(l.ListValues(), start, end)
	defer values.Release()
	child, err := conformArray(path+"[]", values, t.Elem(), mem)
	if err != nil {
		return nil, err
	}
	defer child.Release()
	ob := memory.NewResizableBuffer(mem)
	defer ob.Release()
	ob.Resize(arrow.Int32Traits.BytesRequired(len(off)))
	rebased := arrow.Int32Traits.CastFromBytes(ob.Bytes())
	for i, o := range off {
		rebased[i] = o - int32(start)
	}
	validity := sliceValidity(l, mem)
	if validity != nil {
		defer validity.Release()
	}
	data := array.NewData(t, l.Len(), []*memory.Buffer{validity, ob}, []arrow.ArrayData{child.Data()}, l.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// sliceValidity returns arr's validity bitmap re-based at offset zero, or nil
// when arr has no nulls.
func sliceValidity(arr arrow.Array, mem memory.Allocator) *memory.Buffer {
	if arr.NullN() == 0 {
		return nil
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(arr.Len()))))
	bits := buf.Bytes()
	for i := 0; i < arr.Len(); i++ {
		if arr.IsValid(i) {
			bits[i/8] |= 1 << (i % 8)
		} else {
			bits[i/8] &^= 1 << (i % 8)
		}
	}
	return buf
}
