package encoding

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	tableschema "github.com/persisting/persisting/core/schema"
)

// This file decodes one 2.0 page of a single-column field into Arrow data,
// using the dataset schema's type: a 2.0 page carries no type of its own
// (§11). Every length and index read from the page is checked against the
// buffers it refers to, so corrupt pages are errors, never panics.

// maxMaterializeBytes bounds what one page slice may allocate beyond the size
// of its buffers (all-null slices, dictionary expansion). Claims above it are
// treated as corrupt rather than trusted.
const maxMaterializeBytes = 256 << 20

func DecodeLeaf(e *ArrayEncoding, t arrow.DataType, n uint64, bufs [][]byte) (arrow.ArrayData, error) {
	switch e.Kind {
	case EncNullable:
		switch e.Nulls {
		case AllNulls:
			return NullData(t, n)
		case noNulls:
			return DecodeLeaf(e.values, t, n, bufs)
		default:
			valid, err := decodeBitmap(e.validity, n, bufs)
			if err != nil {
				return nil, err
			}
			d, err := DecodeLeaf(e.values, t, n, bufs)
			if err != nil {
				return nil, err
			}
			return withValidity(d, valid, n), nil
		}
	case encFlat:
		if !isFixedWidth(t) {
			return nil, fmt.Errorf("flat encoding cannot hold %s", t)
		}
		w := uint64(bitWidth(t))
		if e.bits != w {
			return nil, fmt.Errorf("flat encoding of %d bits for %s (%d bits)", e.bits, t, w)
		}
		buf, err := flatBytes(e, bufs)
		if err != nil {
			return nil, err
		}
		need, ok := mulBits(n, w)
		if !ok || uint64(len(buf)) < need {
			return nil, fmt.Errorf("flat buffer of %d bytes holds fewer than %d values of %d bits", len(buf), n, w)
		}
		return array.NewData(t, int(n), []*memory.Buffer{nil, memory.NewBufferBytes(buf[:need])}, nil, 0, 0), nil
	case encFixedSizeList:
		ft, ok := t.(*arrow.FixedSizeListType)
		if !ok || uint32(ft.Len()) != e.dim {
			return nil, fmt.Errorf("fixed_size_list encoding of dimension %d for %s", e.dim, t)
		}
		if n > math.MaxInt32/uint64(e.dim) {
			return nil, fmt.Errorf("fixed_size_list page of %d rows of dimension %d is too large", n, e.dim)
		}
		items, err := DecodeLeaf(e.items, ft.Elem(), n*uint64(e.dim), bufs)
		if err != nil {
			return nil, err
		}
		defer items.Release()
		return array.NewData(t, int(n), []*memory.Buffer{nil}, []arrow.ArrayData{items}, 0, 0), nil
	case encBinary:
		if !isBinaryLike(t) {
			return nil, fmt.Errorf("binary encoding for %s", t)
		}
		ends, err := DecodeUints(e.indices, n, bufs)
		if err != nil {
			return nil, err
		}
		data, err := byteBuffer(e.bytes, bufs)
		if err != nil {
			return nil, err
		}
		return binaryData(t, ends, e.NullAdj, data)
	case encDictionary:
		return decodeDictionary(e, t, n, bufs)
	case EncList, encStruct:
		return nil, fmt.Errorf("%s encoding inside a single column", map[encKind]string{EncList: "list", encStruct: "struct"}[e.Kind])
	}
	return nil, fmt.Errorf("encoding kind %d", e.Kind)
}

// mulBits returns ceil(n*bits/8) and whether it did not overflow.
func mulBits(n, bits uint64) (uint64, bool) {
	if bits != 0 && n > math.MaxUint64/bits-8 {
		return 0, false
	}
	return (n*bits + 7) / 8, true
}

func NullData(t arrow.DataType, n uint64) (arrow.ArrayData, error) {
	per := uint64(1)
	if isFixedWidth(t) {
		per += uint64(bitWidth(t)+7) / 8
	} else if ft, ok := t.(*arrow.FixedSizeListType); ok {
		per += uint64(ft.Len()) * 8
	} else if isBinaryLike(t) || t.ID() == arrow.LIST || t.ID() == arrow.LARGE_LIST {
		per += 8
	}
	if n > maxMaterializeBytes/per {
		return nil, fmt.Errorf("%d null values of %s exceed the reader's %d-byte limit", n, t, maxMaterializeBytes)
	}
	a := tableschema.NullArray(memory.DefaultAllocator, t, int(n))
	defer a.Release()
	d := a.Data()
	d.Retain()
	return d, nil
}

// withValidity attaches a validity bitmap to freshly decoded data (offset 0),
// combining it with validity the values already carry (binary null_adjustment).
func withValidity(d arrow.ArrayData, valid []byte, n uint64) arrow.ArrayData {
	defer d.Release()
	bufs := append([]*memory.Buffer(nil), d.Buffers()...)
	if old := bufs[0]; old != nil {
		ob := old.Bytes()
		for i := range valid {
			valid[i] &= ob[i]
		}
	}
	nulls := int(n) - bitutil.CountSetBits(valid, 0, int(n))
	bufs[0] = memory.NewBufferBytes(valid)
	return array.NewData(d.DataType(), int(n), bufs, d.Children(), nulls, 0)
}

// flatOf unwraps nullable{no_nulls{...}} down to a flat encoding: offsets,
// indices and byte buffers are wrapped like that by Lance.
func flatOf(e *ArrayEncoding) (*ArrayEncoding, error) {
	for e.Kind == EncNullable && e.Nulls == noNulls {
		e = e.values
	}
	if e.Kind != encFlat {
		return nil, fmt.Errorf("%w: expected a flat encoding, got kind %d", ErrUnsupported, e.Kind)
	}
	return e, nil
}

func flatBytes(e *ArrayEncoding, bufs [][]byte) ([]byte, error) {
	if uint64(e.buffer) >= uint64(len(bufs)) {
		return nil, fmt.Errorf("encoding refers to buffer %d of a page with %d buffers", e.buffer, len(bufs))
	}
	b, err := decompressBuffer(e.compression, bufs[e.buffer])
	if err != nil {
		return nil, fmt.Errorf("buffer %d: %w", e.buffer, err)
	}
	return b, nil
}

func decodeBitmap(e *ArrayEncoding, n uint64, bufs [][]byte) ([]byte, error) {
	f, err := flatOf(e)
	if err != nil {
		return nil, err
	}
	if f.bits != 1 {
		return nil, fmt.Errorf("validity of %d bits per value", f.bits)
	}
	b, err := flatBytes(f, bufs)
	if err != nil {
		return nil, err
	}
	need := (n + 7) / 8
	if uint64(len(b)) < need {
		return nil, fmt.Errorf("bitmap of %d bytes for %d values", len(b), n)
	}
	return append([]byte(nil), b[:need]...), nil
}

// DecodeUints reads n unsigned integers of 8, 16, 32 or 64 bits.
func DecodeUints(e *ArrayEncoding, n uint64, bufs [][]byte) ([]uint64, error) {
	f, err := flatOf(e)
	if err != nil {
		return nil, err
	}
	w := f.bits / 8
	if f.bits%8 != 0 || (w != 1 && w != 2 && w != 4 && w != 8) {
		return nil, fmt.Errorf("integer encoding of %d bits", f.bits)
	}
	b, err := flatBytes(f, bufs)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b))/w {
		return nil, fmt.Errorf("buffer of %d bytes holds fewer than %d values of %d bits", len(b), n, f.bits)
	}
	out := make([]uint64, n)
	for i := range out {
		switch w {
		case 1:
			out[i] = uint64(b[i])
		case 2:
			out[i] = uint64(binary.LittleEndian.Uint16(b[2*i:]))
		case 4:
			out[i] = uint64(binary.LittleEndian.Uint32(b[4*i:]))
		default:
			out[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
	}
	return out, nil
}

func byteBuffer(e *ArrayEncoding, bufs [][]byte) ([]byte, error) {
	f, err := flatOf(e)
	if err != nil {
		return nil, err
	}
	if f.bits != 8 {
		return nil, fmt.Errorf("bytes encoding of %d bits per value", f.bits)
	}
	return flatBytes(f, bufs)
}

// binaryData builds a string/binary array from 2.0 end offsets: a value
// >= adj marks a null whose true end is value - adj (§9 notes). ends is
// rewritten with the true ends.
func binaryData(t arrow.DataType, ends []uint64, adj uint64, data []byte) (arrow.ArrayData, error) {
	large := isLargeOffsets(t)
	valid := make([]bool, len(ends))
	var prev uint64
	for i, v := range ends {
		valid[i] = adj == 0 || v < adj
		if !valid[i] {
			v -= adj
		}
		if v < prev || v > uint64(len(data)) {
			return nil, fmt.Errorf("string end offset %d out of order or beyond %d data bytes", v, len(data))
		}
		if !large && v > math.MaxInt32 {
			return nil, fmt.Errorf("%w: page of %d string bytes needs large_string", ErrUnsupported, v)
		}
		prev, ends[i] = v, v
	}
	vb, nulls := Validity(valid)
	return array.NewData(t, len(ends), []*memory.Buffer{vb, EndOffsets(ends, 0, large), memory.NewBufferBytes(data[:prev])}, nil, nulls, 0), nil
}

// decodeDictionary expands Lance's 2.0 dictionary encoding, which Lance picks
// by itself for low-cardinality strings (also when compacting our files):
// index 0 is null, index i > 0 is item i-1.
func decodeDictionary(e *ArrayEncoding, t arrow.DataType, n uint64, bufs [][]byte) (arrow.ArrayData, error) {
	if !isBinaryLike(t) {
		return nil, fmt.Errorf("%w: dictionary encoding for %s", ErrUnsupported, t)
	}
	idx, err := DecodeUints(e.indices, n, bufs)
	if err != nil {
		return nil, fmt.Errorf("dictionary indices: %w", err)
	}
	itemsData, err := DecodeLeaf(e.items, t, uint64(e.dictSize), bufs)
	if err != nil {
		return nil, fmt.Errorf("dictionary items: %w", err)
	}
	items := array.MakeFromData(itemsData)
	itemsData.Release()
	defer items.Release()
	d := items.Data()
	large := isLargeOffsets(t)
	var data []byte
	ends := make([]uint64, n)
	var nullAt []int
	for i, k := range idx {
		if k == 0 {
			nullAt = append(nullAt, i)
			ends[i] = uint64(len(data))
			continue
		}
		if k > uint64(e.dictSize) {
			return nil, fmt.Errorf("dictionary index %d beyond %d items", k, e.dictSize)
		}
		j := int(k - 1)
		if items.IsNull(j) {
			nullAt = append(nullAt, i)
			ends[i] = uint64(len(data))
			continue
		}
		v := d.Buffers()[2].Bytes()[offsetAt(d, large, j):offsetAt(d, large, j+1)]
		if len(data)+len(v) > maxMaterializeBytes {
			return nil, fmt.Errorf("dictionary page expands beyond the reader's %d-byte limit", maxMaterializeBytes)
		}
		data = append(data, v...)
		ends[i] = uint64(len(data))
	}
	out, err := binaryData(t, ends, 0, data)
	if err != nil || len(nullAt) == 0 {
		return out, err
	}
	valid := make([]byte, bitutil.BytesForBits(int64(n)))
	bitutil.SetBitsTo(valid, 0, int64(n), true)
	for _, i := range nullAt {
		bitutil.ClearBit(valid, i)
	}
	return withValidity(out, valid, n), nil
}

// NullArray is n nulls of f's type.
func NullArray(f *Field, n uint64) (arrow.Array, error) {
	d, err := NullData(f.Type, n)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", f.Name, err)
	}
	defer d.Release()
	return array.MakeFromData(d), nil
}
