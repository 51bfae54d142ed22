package lance

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The 2.0 page encoding is a tree of lance.encodings.ArrayEncoding messages
// (encodings_v2_0.proto, §9). This file decodes that tree into arrayEncoding
// values for the reader and builds the byte form for the writer.

const (
	typeURLArrayEncoding  = "/lance.encodings.ArrayEncoding"
	typeURLColumnEncoding = "/lance.encodings.ColumnEncoding"
	typeURLPageLayout21   = "/lance.encodings21.PageLayout"
)

type encKind int

const (
	encFlat encKind = iota + 1
	encNullable
	encFixedSizeList
	encList
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
	allNulls
)

type arrayEncoding struct {
	kind encKind

	// flat
	bits        uint64
	buffer      uint32
	compression string

	// nullable
	nulls    nullKind
	validity *arrayEncoding
	values   *arrayEncoding

	// fixed_size_list
	dim   uint32
	items *arrayEncoding // also dictionary items

	// list
	offsets  *arrayEncoding
	numItems uint64

	// binary and dictionary
	indices  *arrayEncoding
	bytes    *arrayEncoding
	nullAdj  uint64 // list null_offset_adjustment / binary null_adjustment
	dictSize uint32
}

// maxEncodingDepth bounds the encoding tree; real trees are a handful deep.
const maxEncodingDepth = 32

func decodeArrayEncoding(b []byte, depth int) (*arrayEncoding, error) {
	if depth > maxEncodingDepth {
		return nil, fmt.Errorf("%w: encoding tree deeper than %d", errPB, maxEncodingDepth)
	}
	var e *arrayEncoding
	err := pbWalk(b, func(p pbField) error {
		if e != nil {
			return fmt.Errorf("%w: ArrayEncoding sets more than one variant", errPB)
		}
		if name, ok := unsupportedEncodings[p.num]; ok {
			return fmt.Errorf("%w: 2.0 encoding %q", ErrUnsupported, name)
		}
		if err := p.want(protowire.BytesType); err != nil {
			return err
		}
		var err error
		switch p.num {
		case 1:
			e, err = decodeFlat(p.b)
		case 2:
			e, err = decodeNullable(p.b, depth)
		case 3:
			e = &arrayEncoding{kind: encFixedSizeList}
			err = pbWalk(p.b, func(q pbField) error {
				var err error
				switch q.num {
				case 1:
					err = q.want(protowire.VarintType)
					e.dim = uint32(q.v)
				case 2:
					if err = q.want(protowire.BytesType); err == nil {
						e.items, err = decodeArrayEncoding(q.b, depth+1)
					}
				}
				return err
			})
		case 4:
			e = &arrayEncoding{kind: encList}
			err = pbWalk(p.b, func(q pbField) error {
				var err error
				switch q.num {
				case 1:
					if err = q.want(protowire.BytesType); err == nil {
						e.offsets, err = decodeArrayEncoding(q.b, depth+1)
					}
				case 2:
					err = q.want(protowire.VarintType)
					e.nullAdj = q.v
				case 3:
					err = q.want(protowire.VarintType)
					e.numItems = q.v
				}
				return err
			})
		case 5:
			e = &arrayEncoding{kind: encStruct}
		case 6:
			e = &arrayEncoding{kind: encBinary}
			err = pbWalk(p.b, func(q pbField) error {
				var err error
				switch q.num {
				case 1, 2:
					if err = q.want(protowire.BytesType); err == nil {
						var sub *arrayEncoding
						sub, err = decodeArrayEncoding(q.b, depth+1)
						if q.num == 1 {
							e.indices = sub
						} else {
							e.bytes = sub
						}
					}
				case 3:
					err = q.want(protowire.VarintType)
					e.nullAdj = q.v
				}
				return err
			})
		case 7:
			e = &arrayEncoding{kind: encDictionary}
			err = pbWalk(p.b, func(q pbField) error {
				var err error
				switch q.num {
				case 1, 2:
					if err = q.want(protowire.BytesType); err == nil {
						var sub *arrayEncoding
						sub, err = decodeArrayEncoding(q.b, depth+1)
						if q.num == 1 {
							e.indices = sub
						} else {
							e.items = sub
						}
					}
				case 3:
					err = q.want(protowire.VarintType)
					e.dictSize = uint32(q.v)
				}
				return err
			})
		default:
			return fmt.Errorf("%w: ArrayEncoding variant %d (not a 2.0 encoding)", ErrUnsupported, p.num)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: empty ArrayEncoding", errPB)
	}
	return e, e.check()
}

// check verifies that the sub-encodings a variant needs are present, so that
// decoders can follow them without nil checks.
func (e *arrayEncoding) check() error {
	missing := func(what string) error {
		return fmt.Errorf("%w: encoding without %s", errPB, what)
	}
	switch e.kind {
	case encFlat:
		if e.bits == 0 {
			return missing("bits_per_value")
		}
	case encNullable:
		if e.nulls == 0 {
			return missing("nullability")
		}
		if e.nulls != allNulls && e.values == nil {
			return missing("values")
		}
		if e.nulls == someNulls && e.validity == nil {
			return missing("validity")
		}
	case encFixedSizeList:
		if e.items == nil || e.dim == 0 {
			return missing("items or dimension")
		}
	case encList:
		if e.offsets == nil {
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

func decodeFlat(b []byte) (*arrayEncoding, error) {
	e := &arrayEncoding{kind: encFlat}
	err := pbWalk(b, func(q pbField) error {
		var err error
		switch q.num {
		case 1:
			err = q.want(protowire.VarintType)
			e.bits = q.v
		case 2:
			if err = q.want(protowire.BytesType); err != nil {
				return err
			}
			err = pbWalk(q.b, func(r pbField) error {
				var err error
				switch r.num {
				case 1:
					err = r.want(protowire.VarintType)
					e.buffer = uint32(r.v)
				case 2:
					// Only page buffers are written by Lance's 2.0 encoders;
					// column and file buffers would be read from elsewhere.
					if err = r.want(protowire.VarintType); err == nil && r.v != 0 {
						err = fmt.Errorf("%w: flat buffer of type %d (only page buffers)", ErrUnsupported, r.v)
					}
				}
				return err
			})
		case 3:
			if err = q.want(protowire.BytesType); err != nil {
				return err
			}
			err = pbWalk(q.b, func(r pbField) error {
				if r.num == 1 {
					if err := r.want(protowire.BytesType); err != nil {
						return err
					}
					e.compression = string(r.b)
				}
				return nil
			})
		}
		return err
	})
	return e, err
}

func decodeNullable(b []byte, depth int) (*arrayEncoding, error) {
	e := &arrayEncoding{kind: encNullable}
	err := pbWalk(b, func(q pbField) error {
		if err := q.want(protowire.BytesType); err != nil {
			return err
		}
		switch q.num {
		case 1:
			e.nulls = noNulls
		case 2:
			e.nulls = someNulls
		case 3:
			e.nulls = allNulls
			return nil
		default:
			return nil
		}
		return pbWalk(q.b, func(r pbField) error {
			if err := r.want(protowire.BytesType); err != nil {
				return err
			}
			sub, err := decodeArrayEncoding(r.b, depth+1)
			if err != nil {
				return err
			}
			switch {
			case e.nulls == noNulls && r.num == 1, e.nulls == someNulls && r.num == 2:
				e.values = sub
			case e.nulls == someNulls && r.num == 1:
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
	b = pbUint(b, 1, bits)
	b = pbMsg(b, 2, pbUint(nil, 1, uint64(buf)))
	if compression != "" {
		b = pbMsg(b, 3, pbString(nil, 1, compression))
	}
	return pbMsg(nil, 1, b)
}

func encNoNulls(values []byte) []byte {
	return pbMsg(nil, 2, pbMsg(nil, 1, pbMsg(nil, 1, values)))
}

func encSomeNulls(validity, values []byte) []byte {
	return pbMsg(nil, 2, pbMsg(nil, 2, pbMsg(pbMsg(nil, 1, validity), 2, values)))
}

func encAllNulls() []byte {
	return pbMsg(nil, 2, pbMsg(nil, 3, nil))
}

func encFSLBytes(dim int, items []byte) []byte {
	return pbMsg(nil, 3, pbMsg(pbUint(nil, 1, uint64(dim)), 2, items))
}

func encListBytes(offsets []byte, nullAdj, numItems uint64) []byte {
	return pbMsg(nil, 4, pbUint(pbUint(pbMsg(nil, 1, offsets), 2, nullAdj), 3, numItems))
}

func encStructBytes() []byte {
	return pbMsg(nil, 5, nil)
}

func encBinaryBytes(indices, bytes []byte, nullAdj uint64) []byte {
	return pbMsg(nil, 6, pbUint(pbMsg(pbMsg(nil, 1, indices), 2, bytes), 3, nullAdj))
}
