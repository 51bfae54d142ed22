package encoding

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/persisting/persisting/core/lance/pb"
)

// The 2.0 page encoding is a tree of lance.encodings.ArrayEncoding messages
// (encodings_v2_0.proto, §9). This file decodes that tree into arrayEncoding
// values for the reader and builds the byte form for the writer.

const (
	TypeURLArrayEncoding  = "/lance.encodings.ArrayEncoding"
	TypeURLColumnEncoding = "/lance.encodings.ColumnEncoding"
	TypeURLPageLayout21   = "/lance.encodings21.PageLayout"
)

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
var unsupportedEncodings = map[protowire.Number]string{
	8: "fsst", 9: "packed_struct", 10: "bitpacked", 11: "fixed_size_binary",
	12: "bitpacked_for_non_neg", 13: "constant",
}

type nullKind int

const (
	noNulls nullKind = iota + 1
	someNulls
	AllNulls
)

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
		if err := p.Want(protowire.BytesType); err != nil {
			return err
		}
		var err error
		switch p.Num {
		case 1:
			e, err = decodeFlat(p.B)
		case 2:
			e, err = decodeNullable(p.B, depth)
		case 3:
			e = &ArrayEncoding{Kind: encFixedSizeList}
			err = pb.Walk(p.B, func(q pb.Entry) error {
				var err error
				switch q.Num {
				case 1:
					err = q.Want(protowire.VarintType)
					e.dim = uint32(q.V)
				case 2:
					if err = q.Want(protowire.BytesType); err == nil {
						e.items, err = DecodeArrayEncoding(q.B, depth+1)
					}
				}
				return err
			})
		case 4:
			e = &ArrayEncoding{Kind: EncList}
			err = pb.Walk(p.B, func(q pb.Entry) error {
				var err error
				switch q.Num {
				case 1:
					if err = q.Want(protowire.BytesType); err == nil {
						e.Offsets, err = DecodeArrayEncoding(q.B, depth+1)
					}
				case 2:
					err = q.Want(protowire.VarintType)
					e.NullAdj = q.V
				case 3:
					err = q.Want(protowire.VarintType)
					e.NumItems = q.V
				}
				return err
			})
		case 5:
			e = &ArrayEncoding{Kind: encStruct}
		case 6:
			e = &ArrayEncoding{Kind: encBinary}
			err = pb.Walk(p.B, func(q pb.Entry) error {
				var err error
				switch q.Num {
				case 1, 2:
					if err = q.Want(protowire.BytesType); err == nil {
						var sub *ArrayEncoding
						sub, err = DecodeArrayEncoding(q.B, depth+1)
						if q.Num == 1 {
							e.indices = sub
						} else {
							e.bytes = sub
						}
					}
				case 3:
					err = q.Want(protowire.VarintType)
					e.NullAdj = q.V
				}
				return err
			})
		case 7:
			e = &ArrayEncoding{Kind: encDictionary}
			err = pb.Walk(p.B, func(q pb.Entry) error {
				var err error
				switch q.Num {
				case 1, 2:
					if err = q.Want(protowire.BytesType); err == nil {
						var sub *ArrayEncoding
						sub, err = DecodeArrayEncoding(q.B, depth+1)
						if q.Num == 1 {
							e.indices = sub
						} else {
							e.items = sub
						}
					}
				case 3:
					err = q.Want(protowire.VarintType)
					e.dictSize = uint32(q.V)
				}
				return err
			})
		default:
			return fmt.Errorf("%w: ArrayEncoding variant %d (not a 2.0 encoding)", ErrUnsupported, p.Num)
		}
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
		switch q.Num {
		case 1:
			err = q.Want(protowire.VarintType)
			e.bits = q.V
		case 2:
			if err = q.Want(protowire.BytesType); err != nil {
				return err
			}
			err = pb.Walk(q.B, func(r pb.Entry) error {
				var err error
				switch r.Num {
				case 1:
					err = r.Want(protowire.VarintType)
					e.buffer = uint32(r.V)
				case 2:
					// Only page buffers are written by Lance's 2.0 encoders;
					// column and file buffers would be read from elsewhere.
					if err = r.Want(protowire.VarintType); err == nil && r.V != 0 {
						err = fmt.Errorf("%w: flat buffer of type %d (only page buffers)", ErrUnsupported, r.V)
					}
				}
				return err
			})
		case 3:
			if err = q.Want(protowire.BytesType); err != nil {
				return err
			}
			err = pb.Walk(q.B, func(r pb.Entry) error {
				if r.Num == 1 {
					if err := r.Want(protowire.BytesType); err != nil {
						return err
					}
					e.compression = string(r.B)
				}
				return nil
			})
		}
		return err
	})
	return e, err
}

func decodeNullable(b []byte, depth int) (*ArrayEncoding, error) {
	e := &ArrayEncoding{Kind: EncNullable}
	err := pb.Walk(b, func(q pb.Entry) error {
		if err := q.Want(protowire.BytesType); err != nil {
			return err
		}
		switch q.Num {
		case 1:
			e.Nulls = noNulls
		case 2:
			e.Nulls = someNulls
		case 3:
			e.Nulls = AllNulls
			return nil
		default:
			return nil
		}
		return pb.Walk(q.B, func(r pb.Entry) error {
			if err := r.Want(protowire.BytesType); err != nil {
				return err
			}
			sub, err := DecodeArrayEncoding(r.B, depth+1)
			if err != nil {
				return err
			}
			switch {
			case e.Nulls == noNulls && r.Num == 1, e.Nulls == someNulls && r.Num == 2:
				e.values = sub
			case e.Nulls == someNulls && r.Num == 1:
				e.validity = sub
			}
			return nil
		})
	})
	return e, err
}

// Builders for the encodings the writer emits (§9 table). Sub-messages are
// always emitted, even when empty, because Lance's decoder unwraps them.

func encFlatBytes(bits uint64, buf int, compression string) []byte {
	var b []byte
	b = pb.AppendUint(b, 1, bits)
	b = pb.AppendMessage(b, 2, pb.AppendUint(nil, 1, uint64(buf)))
	if compression != "" {
		b = pb.AppendMessage(b, 3, pb.AppendString(nil, 1, compression))
	}
	return pb.AppendMessage(nil, 1, b)
}

func encNoNulls(values []byte) []byte {
	return pb.AppendMessage(nil, 2, pb.AppendMessage(nil, 1, pb.AppendMessage(nil, 1, values)))
}

func encSomeNulls(validity, values []byte) []byte {
	return pb.AppendMessage(nil, 2, pb.AppendMessage(nil, 2, pb.AppendMessage(pb.AppendMessage(nil, 1, validity), 2, values)))
}

func encAllNulls() []byte {
	return pb.AppendMessage(nil, 2, pb.AppendMessage(nil, 3, nil))
}

func encFSLBytes(dim int, items []byte) []byte {
	return pb.AppendMessage(nil, 3, pb.AppendMessage(pb.AppendUint(nil, 1, uint64(dim)), 2, items))
}

func encListBytes(offsets []byte, nullAdj, numItems uint64) []byte {
	return pb.AppendMessage(nil, 4, pb.AppendUint(pb.AppendUint(pb.AppendMessage(nil, 1, offsets), 2, nullAdj), 3, numItems))
}

func encStructBytes() []byte {
	return pb.AppendMessage(nil, 5, nil)
}

func encBinaryBytes(indices, bytes []byte, nullAdj uint64) []byte {
	return pb.AppendMessage(nil, 6, pb.AppendUint(pb.AppendMessage(pb.AppendMessage(nil, 1, indices), 2, bytes), 3, nullAdj))
}
