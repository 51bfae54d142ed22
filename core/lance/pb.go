package lance

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// Lance's Rust decoder unwraps many sub-messages, so an empty sub-message must
// still be emitted (tag + zero length): pbMsg always emits. Scalars follow
// proto3 implicit presence (omitted when zero) except where a field is proto3
// `optional`, which pbUintAlways serves.

func pbUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return pbUintAlways(b, num, v)
}

func pbUintAlways(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// pbInt32 encodes an int32 the way protobuf does: a negative value is
// sign-extended to 64 bits (a 10-byte varint), not zigzagged.
func pbInt32(b []byte, num protowire.Number, v int32) []byte {
	return pbUint(b, num, uint64(int64(v)))
}

func pbBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return pbUintAlways(b, num, 1)
}

func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return pbMsg(b, num, v)
}

func pbString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func pbMsg(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// pbPacked writes a packed repeated varint field; int32 values must be passed
// sign-extended (uint64(int64(v))).
func pbPacked(b []byte, num protowire.Number, vals []uint64) []byte {
	if len(vals) == 0 {
		return b
	}
	var body []byte
	for _, v := range vals {
		body = protowire.AppendVarint(body, v)
	}
	return pbMsg(b, num, body)
}

// pbStringMap writes a map<string,string> (or map<string,bytes>) with sorted
// keys so that equal maps encode to equal bytes.
func pbStringMap(b []byte, num protowire.Number, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var e []byte
		e = pbString(e, 1, k)
		e = pbString(e, 2, m[k])
		b = pbMsg(b, num, e)
	}
	return b
}

// pbAny encodes a google.protobuf.Any.
func pbAny(typeURL string, value []byte) []byte {
	return pbBytes(pbString(nil, 1, typeURL), 2, value)
}

var errPB = errors.New("malformed protobuf")

// pbField is one decoded field. For varint fields v holds the value; for
// length-delimited fields b holds the payload. raw is the whole field
// (tag included) so that a caller can carry it forward byte for byte.
type pbField struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
	raw []byte
}

// pbWalk calls fn for every field of the message in b. It never panics on
// corrupt input: every length is checked by protowire.
func pbWalk(b []byte, fn func(f pbField) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %w", errPB, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("%w: field %d: %w", errPB, num, protowire.ParseError(m))
		}
		f := pbField{num: num, typ: typ, raw: b[:n+m]}
		val := b[n : n+m]
		switch typ {
		case protowire.VarintType:
			f.v, _ = protowire.ConsumeVarint(val)
		case protowire.BytesType:
			f.b, _ = protowire.ConsumeBytes(val)
		case protowire.Fixed64Type:
			f.v, _ = protowire.ConsumeFixed64(val)
		case protowire.Fixed32Type:
			v, _ := protowire.ConsumeFixed32(val)
			f.v = uint64(v)
		}
		if err := fn(f); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// want checks that a known field has the wire type its schema gives it.
func (f pbField) want(t protowire.Type) error {
	if f.typ != t {
		return fmt.Errorf("%w: field %d has wire type %d, want %d", errPB, f.num, f.typ, t)
	}
	return nil
}

// varints decodes a repeated varint field, accepting both the packed and the
// unpacked wire form as protobuf requires.
func (f pbField) varints(dst []uint64) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, f.v), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: packed field %d: %w", errPB, f.num, protowire.ParseError(n))
			}
			dst = append(dst, v)
			b = b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%w: repeated field %d has wire type %d", errPB, f.num, f.typ)
}

// mapEntry decodes a map<string, string|bytes> entry.
func (f pbField) mapEntry() (string, []byte, error) {
	if err := f.want(protowire.BytesType); err != nil {
		return "", nil, err
	}
	var k string
	var v []byte
	err := pbWalk(f.b, func(e pbField) error {
		switch e.num {
		case 1:
			if err := e.want(protowire.BytesType); err != nil {
				return err
			}
			k = string(e.b)
		case 2:
			if err := e.want(protowire.BytesType); err != nil {
				return err
			}
			v = e.b
		}
		return nil
	})
	return k, v, err
}

// int32Of narrows a varint that protobuf declared int32 (sign-extended).
func int32Of(v uint64) (int32, error) {
	i := int64(v)
	if i < -1<<31 || i > 1<<31-1 {
		return 0, fmt.Errorf("%w: int32 out of range: %d", errPB, i)
	}
	return int32(i), nil
}
