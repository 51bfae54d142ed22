package encoding

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// EndOffsets builds Arrow's offsets buffer for values whose ends are given:
// entry 0 is 0 and entry i+1 is ends[i]-base, as int64 when large, else as
// int32 (the caller has checked that they fit).
func EndOffsets(ends []uint64, base uint64, large bool) *memory.Buffer {
	if large {
		offs := make([]byte, 8*(len(ends)+1))
		for i, v := range ends {
			binary.LittleEndian.PutUint64(offs[8*(i+1):], v-base)
		}
		return memory.NewBufferBytes(offs)
	}
	offs := make([]byte, 4*(len(ends)+1))
	for i, v := range ends {
		binary.LittleEndian.PutUint32(offs[4*(i+1):], uint32(v-base))
	}
	return memory.NewBufferBytes(offs)
}

// Validity builds Arrow's validity bitmap from per-slot validity and counts
// the nulls; the bitmap is nil when there are none.
func Validity(valid []bool) (*memory.Buffer, int) {
	var bm []byte
	nulls := 0
	for i, ok := range valid {
		if ok {
			continue
		}
		if bm == nil {
			bm = make([]byte, bitutil.BytesForBits(int64(len(valid))))
			bitutil.SetBitsTo(bm, 0, int64(len(valid)), true)
		}
		bitutil.ClearBit(bm, i)
		nulls++
	}
	if bm == nil {
		return nil, 0
	}
	return memory.NewBufferBytes(bm), nulls
}

// fslItems encodes the items of rows [s.start, s.end) of a fixed-size list.
// Items of null rows are zeroed; items get their own validity only when a
// valid row holds a null item.
func fslItems(a *array.FixedSizeList, s span, t *arrow.FixedSizeListType, firstBuf int, comp string) ([]byte, [][]byte, error) {
	dim := int(t.Len())
	child := a.ListValues()
	if !isFixedWidth(child.DataType()) || child.DataType().ID() == arrow.BOOL {
		return nil, nil, fmt.Errorf("%w: fixed_size_list of %s", ErrUnsupported, child.DataType())
	}
	off := a.Data().Offset()
	is := span{(off + s.Start) * dim, (off + s.End) * dim}
	raw := fixedSlice(child, is)
	bpv := bitWidth(child.DataType()) / 8
	itemNulls := false
	for r := s.Start; r < s.End; r++ {
		for k := 0; k < dim; k++ {
			i := (off+r)*dim + k
			if a.IsNull(r) {
				clear(raw[(i-is.Start)*bpv : (i-is.Start+1)*bpv])
			} else if child.IsNull(i) {
				itemNulls = true
			}
		}
	}
	bits := uint64(bitWidth(child.DataType()))
	if !itemNulls {
		enc, buf, err := flatBuffer(raw, bits, firstBuf, comp)
		return encNoNulls(enc), [][]byte{buf}, err
	}
	valid := make([]byte, bitutil.BytesForBits(int64(is.End-is.Start)))
	for i := is.Start; i < is.End; i++ {
		if child.IsValid(i) && a.IsValid(i/dim-off) {
			bitutil.SetBit(valid, i-is.Start)
		}
	}
	enc, buf, err := flatBuffer(raw, bits, firstBuf+1, comp)
	return encSomeNulls(encFlatBytes(1, firstBuf, ""), enc), [][]byte{valid, buf}, err
}

// fixedValues is fixedSlice without the copy when the slots hold no nulls
// and the values are byte aligned: a slice of the array's own buffer, which
// the caller must not modify (compression only reads it).
func fixedValues(arr arrow.Array, s span) []byte {
	w := bitWidth(arr.DataType())
	d := arr.Data()
	bufs := d.Buffers()
	if w%8 != 0 || arr.NullN() != 0 || len(bufs) < 2 || bufs[1] == nil {
		return fixedSlice(arr, s)
	}
	bpv := w / 8
	return bufs[1].Bytes()[(d.Offset()+s.Start)*bpv : (d.Offset()+s.End)*bpv]
}

// fixedSlice copies the values of slots [s.start, s.end) of a fixed-width
// array (bit-packed for bool), zeroing the slots of nulls as Lance does.
func fixedSlice(arr arrow.Array, s span) []byte {
	d := arr.Data()
	var vals []byte
	if bufs := d.Buffers(); len(bufs) > 1 && bufs[1] != nil {
		vals = bufs[1].Bytes()
	}
	n := s.End - s.Start
	w := bitWidth(arr.DataType())
	if w == 1 {
		out := make([]byte, bitutil.BytesForBits(int64(n)))
		bitutil.CopyBitmap(vals, d.Offset()+s.Start, n, out, 0)
		for r := s.Start; r < s.End; r++ {
			if arr.IsNull(r) {
				bitutil.ClearBit(out, r-s.Start)
			}
		}
		return out
	}
	bpv := w / 8
	out := make([]byte, n*bpv)
	copy(out, vals[(d.Offset()+s.Start)*bpv:])
	if arr.NullN() > 0 {
		for r := s.Start; r < s.End; r++ {
			if arr.IsNull(r) {
				clear(out[(r-s.Start)*bpv : (r-s.Start+1)*bpv])
			}
		}
	}
	return out
}

// validitySlice returns the validity bitmap of slots [s.start, s.end)
// (LSB first, 1 = valid) and the number of nulls among them.
func validitySlice(arr arrow.Array, s span) ([]byte, int) {
	n := s.End - s.Start
	if arr.NullN() == 0 {
		return nil, 0
	}
	out := make([]byte, bitutil.BytesForBits(int64(n)))
	valid := 0
	for r := s.Start; r < s.End; r++ {
		if arr.IsValid(r) {
			bitutil.SetBit(out, r-s.Start)
			valid++
		}
	}
	return out, n - valid
}

// offsetsView reads the offsets of a variable-size array (binary or list)
// without going through its ArrayData for each slot.
type offsetsView struct {
	large bool
	o32   []int32
	o64   []int64
}

// viewOffsets views the offsets of d from its first slot on.
func viewOffsets(d arrow.ArrayData, large bool) offsetsView {
	v := offsetsView{large: large}
	bufs := d.Buffers()
	if len(bufs) < 2 || bufs[1] == nil {
		return v
	}
	if large {
		v.o64 = arrow.Int64Traits.CastFromBytes(bufs[1].Bytes())[d.Offset():]
	} else {
		v.o32 = arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[d.Offset():]
	}
	return v
}

// at is the absolute offset stored at slot i (0..len).
func (v offsetsView) at(i int) int64 {
	if v.large {
		return v.o64[i]
	}
	return int64(v.o32[i])
}

// putEnds writes, for slots [start, end), each slot's end offset relative
// to the start of slot start as a u64 into dst.
func (v offsetsView) putEnds(dst []byte, start, end int) {
	if v.large {
		base := v.o64[start]
		for i, o := range v.o64[start+1 : end+1] {
			binary.LittleEndian.PutUint64(dst[8*i:], uint64(o-base))
		}
		return
	}
	base := v.o32[start]
	for i, o := range v.o32[start+1 : end+1] {
		binary.LittleEndian.PutUint64(dst[8*i:], uint64(o-base))
	}
}

// offsetAt returns the absolute offset stored at slot i (0..len) of a
// variable-size array (binary or list).
func offsetAt(d arrow.ArrayData, large bool, i int) int64 {
	b := d.Buffers()[1].Bytes()
	if large {
		return int64(binary.LittleEndian.Uint64(b[8*(d.Offset()+i):]))
	}
	return int64(int32(binary.LittleEndian.Uint32(b[4*(d.Offset()+i):])))
}

// pushDownNulls gives a struct child the struct's nulls. 2.0 cannot store
// struct validity (§9 notes): a null struct reads back as a struct of nulls,
// so its children must not expose whatever values sit under the null slot.
func pushDownNulls(s *array.Struct, child arrow.Array) arrow.Array {
	if s.NullN() == 0 || child.DataType().ID() == arrow.NULL {
		return child
	}
	n := child.Len()
	d := child.Data()
	off := d.Offset()
	// The bitmap is indexed like the child's own: slot i is bit off+i.
	bm := make([]byte, bitutil.BytesForBits(int64(off+n)))
	nulls := 0
	for i := 0; i < n; i++ {
		if s.IsValid(i) && child.IsValid(i) {
			bitutil.SetBit(bm, off+i)
		} else {
			nulls++
		}
	}
	bufs := append([]*memory.Buffer(nil), d.Buffers()...)
	bufs[0] = memory.NewBufferBytes(bm)
	nd := array.NewData(d.DataType(), n, bufs, d.Children(), nulls, off)
	defer nd.Release()
	return array.MakeFromData(nd)
}

// approxBytes is the size of an array's buffers, children included.
func approxBytes(d arrow.ArrayData) int {
	n := 0
	for _, b := range d.Buffers() {
		if b != nil {
			n += b.Len()
		}
	}
	for _, c := range d.Children() {
		n += approxBytes(c)
	}
	return n
}
