package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// NullArray is n NULLs of type t. Unlike array.MakeArrayOfNull it handles
// null-typed fields inside structs and lists (list<null> is what an empty
// Python list infers to), where MakeArrayOfNull panics.
func NullArray(mem memory.Allocator, t arrow.DataType, n int) arrow.Array {
	var d arrow.ArrayData
	switch t := t.(type) {
	case *arrow.NullType:
		return array.NewNull(n)
	case *arrow.StructType:
		kids := make([]arrow.ArrayData, t.NumFields())
		for i, f := range t.Fields() {
			k := NullArray(mem, f.Type, n)
			defer k.Release()
			kids[i] = k.Data()
		}
		d = array.NewData(t, n, []*memory.Buffer{zeroed(mem, int(bitutil.BytesForBits(int64(n))))}, kids, n, 0)
	case arrow.ListLikeType:
		if t.ID() != arrow.LIST && t.ID() != arrow.LARGE_LIST {
			return array.MakeArrayOfNull(mem, t, n)
		}
		width := 4
		if t.ID() == arrow.LARGE_LIST {
			width = 8
		}
		items := NullArray(mem, t.Elem(), 0)
		defer items.Release()
		d = array.NewData(t, n, []*memory.Buffer{zeroed(mem, int(bitutil.BytesForBits(int64(n)))),
			zeroed(mem, width*(n+1))}, []arrow.ArrayData{items.Data()}, n, 0)
	default:
		return array.MakeArrayOfNull(mem, t, n)
	}
	defer d.Release()
	for _, b := range d.Buffers() {
		if b != nil {
			b.Release() // NewData retained them
		}
	}
	return array.MakeFromData(d)
}

func zeroed(mem memory.Allocator, n int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n)
	clear(b.Bytes())
	return b
}
