package encoding

import (
	"fmt"

	"github.com/persisting/persisting/core/lance/pb"
)

// The 2.0 page encoding is a tree of lance.encodings.ArrayEncoding messages
// (encodings_v2_0.proto, §9). This file decodes that tree into arrayEncoding
// values for the reader and builds the byte form for the writer.

type encKind int

const (
	encFlat encKind = iota + 1
	EncNullable
	encFixedSizeList
	EncList
	encStruct
	encBinary
	encDictionary
)

// ArrayEncoding oneof field numbers that are valid 2.0 encodings but that this
// reader does not decode; they get a precise error instead of a generic one.
var unsupportedEncodings = map[pb.Number]string{
	pb.ArrayFsst: "fsst", pb.ArrayPackedStruct: "packed_struct", pb.ArrayBitpacked: "bitpacked",
	pb.ArrayFixedSizeBinary: "fixed_size_binary", pb.ArrayBitpackedNonNeg: "bitpacked_for_non_neg",
	pb.ArrayConstant: "constant",
}

type nullKind int

const (
	noNulls nullKind = iota + 1
	someNulls
	AllNulls
)

// ArrayEncoding is one decoded node of the tree; which fields are set
// depends on Kind.
type ArrayEncoding struct {
	Kind encKind

	// flat
	bits        uint64
	buffer      uint32
	compression string

	// nullable
	Nulls    nullKind
	validity *ArrayEncoding
	values   *ArrayEncoding

	// fixed_size_list
	dim   uint32
	items *ArrayEncoding // also dictionary items

	// list
	Offsets  *ArrayEncoding
	NumItems uint64

	// binary and dictionary
	indices  *ArrayEncoding
	bytes    *ArrayEncoding
	NullAdj  uint64 // list null_offset_adjustment / binary null_adjustment
	dictSize uint32
}

// maxEncodingDepth bounds the encoding tree; real trees are a handful deep.
const maxEncodingDepth = 32

// DecodeArrayEncoding decodes an ArrayEncoding message; depth is its depth
// in the tree (0 for a page's encoding).
func DecodeArrayEncoding(b []byte, depth int) (*ArrayEncoding, error) {
	if depth > maxEncodingDepth {
		return nil, fmt.Errorf("%w: encoding tree deeper than %d", pb.ErrMalformed, maxEncodingDepth)
	}
	var e *ArrayEncoding
	err := pb.Walk(b, func(p pb.Entry) error {
		if e != nil {
			return fmt.Errorf("%w: ArrayEncoding sets more than one variant", pb.ErrMalformed)
		}
		if name, ok := unsupportedEncodings[p.Num]; ok {
			return fmt.Errorf("%w: 2.0 encoding %q", ErrUnsupported, name)
		}
		body, err := p.Bytes()
		if err != nil {
			return err
		}
		dec, ok := variantDecoders[p.Num]
		if !ok {
			return fmt.Errorf("%w: ArrayEncoding variant %d (not a 2.0 encoding)", ErrUnsupported, p.Num)
		}
		e, err = dec(body, depth)
		return err
	})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: empty ArrayEncoding", pb.ErrMalformed)
	}
	return e, e.check()
}

// variantDecoders decode the body of each 2.0 ArrayEncoding variant.
var variantDecoders map[pb.Number]func(b []byte, depth int) (*ArrayEncoding, error)

func init() {
	variantDecoders = map[pb.Number]func(b []byte, depth int) (*ArrayEncoding, error){
		pb.ArrayFlat:          func(b []byte, _ int) (*ArrayEncoding, error) { return decodeFlat(b) },
		pb.ArrayNullable:      decodeNullable,
		pb.ArrayFixedSizeList: decodeFixedSizeList,
		pb.ArrayList:          decodeList,
		pb.ArrayStruct:        func([]byte, int) (*ArrayEncoding, error) { return &ArrayEncoding{Kind: encStruct}, nil },
		pb.ArrayBinary:        decodeBinary,
		pb.ArrayDictionary:    decodeDictionaryEncoding,
	}
}

// child decodes a sub-encoding field.
func child(p pb.Entry, depth int) (*ArrayEncoding, error) {
	b, err := p.Bytes()
	if err != nil {
		return nil, err
	}
	return DecodeArrayEncoding(b, depth+1)
}

func decodeFixedSizeList(b []byte, depth int) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: encFixedSizeList}
	err := pb.Walk(b, func(q pb.Entry) error {
		var err error
		switch q.Num {
		case pb.FixedSizeListDimension:
			var v uint64
			v, err = q.Uint()
			e.dim = uint32(v)
		case pb.FixedSizeListItems:
			e.items, err = child(q, depth)
		}
		return err
	})
	return e, err
}

func decodeList(b []byte, depth int) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: EncList}
	err := pb.Walk(b, func(q pb.Entry) error {
		var err error
		switch q.Num {
		case pb.ListOffsets:
			e.Offsets, err = child(q, depth)
		case pb.ListNullOffsetAdjustment:
			e.NullAdj, err = q.Uint()
		case pb.ListNumItems:
			e.NumItems, err = q.Uint()
		}
		return err
	})
	return e, err
}

func decodeBinary(b []byte, depth int) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: encBinary}
	err := pb.Walk(b, func(q pb.Entry) error {
		var err error
		switch q.Num {
		case pb.BinaryIndices:
			e.indices, err = child(q, depth)
		case pb.BinaryBytes:
			e.bytes, err = child(q, depth)
		case pb.BinaryNullAdjustment:
			e.NullAdj, err = q.Uint()
		}
		return err
	})
	return e, err
}

func decodeDictionaryEncoding(b []byte, depth int) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: encDictionary}
	err := pb.Walk(b, func(q pb.Entry) error {
		var err error
		switch q.Num {
		case pb.DictionaryIndices:
			e.indices, err = child(q, depth)
		case pb.DictionaryItems:
			e.items, err = child(q, depth)
		case pb.DictionaryNumItems:
			var v uint64
			v, err = q.Uint()
			e.dictSize = uint32(v)
		}
		return err
	})
	return e, err
}

// check verifies that the sub-encodings a variant needs are present, so that
// decoders can follow them without nil checks.
func (e *ArrayEncoding) check() error {
	missing := func(what string) error {
		return fmt.Errorf("%w: encoding without %s", pb.ErrMalformed, what)
	}
	switch e.Kind {
	case encFlat:
		if e.bits == 0 {
			return missing("bits_per_value")
		}
	case EncNullable:
		if e.Nulls == 0 {
			return missing("nullability")
		}
		if e.Nulls != AllNulls && e.values == nil {
			return missing("values")
		}
		if e.Nulls == someNulls && e.validity == nil {
			return missing("validity")
		}
	case encFixedSizeList:
		if e.items == nil || e.dim == 0 {
			return missing("items or dimension")
		}
	case EncList:
		if e.Offsets == nil {
			return missing("offsets")
		}
	case encBinary:
		if e.indices == nil || e.bytes == nil {
			return missing("indices or bytes")
		}
	case encDictionary:
		if e.indices == nil || e.items == nil {
			return missing("indices or items")
		}
	}
	return nil
}

func decodeFlat(b []byte) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: encFlat}
	err := pb.Walk(b, func(q pb.Entry) error {
		var err error
		var body []byte
		switch q.Num {
		case pb.FlatBitsPerValue:
			e.bits, err = q.Uint()
		case pb.FlatBuffer:
			if body, err = q.Bytes(); err == nil {
				err = pb.Walk(body, e.decodeBuffer)
			}
		case pb.FlatCompression:
			if body, err = q.Bytes(); err == nil {
				err = pb.Walk(body, func(r pb.Entry) error {
					if r.Num != pb.CompressionScheme {
						return nil
					}
					s, err := r.Bytes()
					e.compression = string(s)
					return err
				})
			}
		}
		return err
	})
	return e, err
}

// decodeBuffer reads one field of a flat encoding's Buffer message.
func (e *ArrayEncoding) decodeBuffer(r pb.Entry) error {
	switch r.Num {
	case pb.BufferIndex:
		v, err := r.Uint()
		e.buffer = uint32(v)
		return err
	case pb.BufferType:
		// Only page buffers are written by Lance's 2.0 encoders; column
		// and file buffers would be read from elsewhere.
		v, err := r.Uint()
		if err == nil && v != 0 {
			err = fmt.Errorf("%w: flat buffer of type %d (only page buffers)", ErrUnsupported, v)
		}
		return err
	}
	return nil
}

func decodeNullable(b []byte, depth int) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: EncNullable}
	err := pb.Walk(b, func(q pb.Entry) error {
		body, err := q.Bytes()
		if err != nil {
			return err
		}
		switch q.Num {
		case pb.NullableNoNulls:
			e.Nulls = noNulls
		case pb.NullableSomeNulls:
			e.Nulls = someNulls
		case pb.NullableAllNulls:
			e.Nulls = AllNulls
			return nil
		default:
			return nil
		}
		return pb.Walk(body, func(r pb.Entry) error {
			sub, err := child(r, depth)
			if err != nil {
				return err
			}
			switch {
			case e.Nulls == noNulls && r.Num == pb.NoNullsValues, e.Nulls == someNulls && r.Num == pb.SomeNullsValues:
				e.values = sub
			case e.Nulls == someNulls && r.Num == pb.SomeNullsValidity:
				e.validity = sub
			}
			return nil
		})
	})
	return e, err
}
