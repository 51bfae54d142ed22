package pb

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Number is a protobuf field number.
type Number = protowire.Number

// Lance's Rust decoder unwraps many sub-messages, so an empty sub-message must
// still be emitted (tag + zero length): AppendMessage always emits. Scalars
// follow proto3 implicit presence (omitted when zero) except where a field is
// proto3 `optional`, which AppendUintAlways serves.

// AppendUint appends a varint field, omitted when zero.
func AppendUint(b []byte, num Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return AppendUintAlways(b, num, v)
}

// AppendUintAlways appends a varint field even when zero (proto3 optional).
func AppendUintAlways(b []byte, num Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendInt32 encodes an int32 the way protobuf does: a negative value is
// sign-extended to 64 bits (a 10-byte varint), not zigzagged.
func AppendInt32(b []byte, num Number, v int32) []byte {
	return AppendUint(b, num, uint64(int64(v)))
}

// AppendInt32Always is AppendInt32 even when zero.
func AppendInt32Always(b []byte, num Number, v int32) []byte {
	return AppendUintAlways(b, num, uint64(int64(v)))
}

// AppendBool appends a bool field, omitted when false.
func AppendBool(b []byte, num Number, v bool) []byte {
	if !v {
		return b
	}
	return AppendUintAlways(b, num, 1)
}

// AppendBytes appends a bytes field, omitted when empty.
func AppendBytes(b []byte, num Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return AppendMessage(b, num, v)
}

// AppendString appends a string field, omitted when empty.
func AppendString(b []byte, num Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// AppendMessage appends a sub-message, even an empty one.
func AppendMessage(b []byte, num Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// AppendPacked writes a packed repeated varint field; int32 values must be
// passed sign-extended (SignExtend).
func AppendPacked(b []byte, num Number, vals []uint64) []byte {
	if len(vals) == 0 {
		return b
	}
	var body []byte
	for _, v := range vals {
		body = protowire.AppendVarint(body, v)
	}
	return AppendMessage(b, num, body)
}

// SignExtend widens int32 values for AppendPacked.
func SignExtend(vs []int32) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = uint64(int64(v))
	}
	return out
}

// AppendStringMap writes a map<string,string> with sorted keys so that equal
// maps encode to equal bytes.
func AppendStringMap(b []byte, num Number, m map[string]string) []byte {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = AppendMessage(b, num, AppendString(AppendString(nil, mapKey, k), mapValue, m[k]))
	}
	return b
}

// AppendBytesMap writes a map<string,bytes> with sorted keys.
func AppendBytesMap(b []byte, num Number, m map[string][]byte) []byte {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = AppendMessage(b, num, MapEntry(k, m[k]))
	}
	return b
}

// MapEntry encodes one map<string,bytes> entry.
func MapEntry(k string, v []byte) []byte {
	return AppendBytes(AppendString(nil, mapKey, k), mapValue, v)
}

// Any encodes a google.protobuf.Any.
func Any(typeURL string, value []byte) []byte {
	return AppendBytes(AppendString(nil, AnyTypeURL, typeURL), AnyValue, value)
}

// ErrMalformed is wrapped by every error about bytes that are not the
// protobuf message they should be.
var ErrMalformed = errors.New("malformed protobuf")

// Entry is one decoded field. For varint (and fixed) fields v holds the
// value; for length-delimited fields B holds the payload. Raw is the whole
// field (tag included) so that a caller can carry it forward byte for byte.
type Entry struct {
	Num Number
	typ protowire.Type
	v   uint64
	B   []byte
	Raw []byte
}

// Walk calls fn for every field of the message in b. It never panics on
// corrupt input: every length is checked by protowire.
func Walk(b []byte, fn func(e Entry) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %w", ErrMalformed, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(m))
		}
		e := Entry{Num: num, typ: typ, Raw: b[:n+m]}
		val := b[n : n+m]
		switch typ {
		case protowire.VarintType:
			e.v, _ = protowire.ConsumeVarint(val)
		case protowire.BytesType:
			e.B, _ = protowire.ConsumeBytes(val)
		case protowire.Fixed64Type:
			e.v, _ = protowire.ConsumeFixed64(val)
		case protowire.Fixed32Type:
			v, _ := protowire.ConsumeFixed32(val)
			e.v = uint64(v)
		}
		if err := fn(e); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// want checks that a known field has the wire type its schema gives it.
func (e Entry) want(t protowire.Type) error {
	if e.typ != t {
		return fmt.Errorf("%w: field %d has wire type %d, want %d", ErrMalformed, e.Num, e.typ, t)
	}
	return nil
}

// Uint returns a varint field's value.
func (e Entry) Uint() (uint64, error) {
	return e.v, e.want(protowire.VarintType)
}

// Bytes returns a length-delimited field's payload (a string, bytes or a
// sub-message).
func (e Entry) Bytes() ([]byte, error) {
	return e.B, e.want(protowire.BytesType)
}

// Int32 returns a varint field that protobuf declared int32.
func (e Entry) Int32() (int32, error) {
	if err := e.want(protowire.VarintType); err != nil {
		return 0, err
	}
	return int32Of(e.v)
}

// Varints decodes a repeated varint field, accepting both the packed and the
// unpacked wire form as protobuf requires.
func (e Entry) Varints(dst []uint64) ([]uint64, error) {
	switch e.typ {
	case protowire.VarintType:
		return append(dst, e.v), nil
	case protowire.BytesType:
		b := e.B
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: packed field %d: %w", ErrMalformed, e.Num, protowire.ParseError(n))
			}
			dst = append(dst, v)
			b = b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%w: repeated field %d has wire type %d", ErrMalformed, e.Num, e.typ)
}

// Int32s decodes a repeated int32 field (packed or not).
func (e Entry) Int32s(dst []int32) ([]int32, error) {
	vs, err := e.Varints(nil)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		i, err := int32Of(v)
		if err != nil {
			return nil, err
		}
		dst = append(dst, i)
	}
	return dst, nil
}

// MapEntry decodes a map<string, string|bytes> entry.
func (e Entry) MapEntry() (string, []byte, error) {
	if err := e.want(protowire.BytesType); err != nil {
		return "", nil, err
	}
	var k string
	var v []byte
	err := Walk(e.B, func(f Entry) error {
		switch f.Num {
		case mapKey:
			b, err := f.Bytes()
			k = string(b)
			return err
		case mapValue:
			var err error
			v, err = f.Bytes()
			return err
		}
		return nil
	})
	return k, v, err
}

// int32Of narrows a varint that protobuf declared int32 (sign-extended).
func int32Of(v uint64) (int32, error) {
	i := int64(v)
	if i < -1<<31 || i > 1<<31-1 {
		return 0, fmt.Errorf("%w: int32 out of range: %d", ErrMalformed, i)
	}
	return int32(i), nil
}
