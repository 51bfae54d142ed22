package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", "a.b", "a\x00b", "a`b", "_rowid", "_rowaddr", "_distance", strings.Repeat("x", MaxNameBytes+1), "\xff"} {
		if CheckName(bad) == "" {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"a", "_id", "é", "中文", " ", "a-b", "ROWID", strings.Repeat("x", MaxNameBytes)} {
		if why := CheckName(good); why != "" {
			t.Errorf("%q refused: %s", good, why)
		}
	}
}

func nested(depth int) arrow.DataType {
	var t arrow.DataType = arrow.PrimitiveTypes.Int64
	for i := 1; i < depth; i++ {
		if i%2 == 0 {
			t = arrow.ListOf(t)
		} else {
			t = arrow.StructOf(arrow.Field{Name: "x", Type: t, Nullable: true})
		}
	}
	return t
}

func TestValidateSchema(t *testing.T) {
	field := func(name string, typ arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: typ, Nullable: true}
	}
	cases := []struct {
		name   string
		fields []arrow.Field
		path   string // "" when valid
	}{
		{"flat", []arrow.Field{field("a", arrow.PrimitiveTypes.Int64), field("b", arrow.BinaryTypes.String)}, ""},
		{"deepest allowed", []arrow.Field{field("d", nested(MaxDepth))}, ""},
		{"too deep", []arrow.Field{field("d", nested(MaxDepth+1))}, "d"},
		{"duplicate", []arrow.Field{field("a", arrow.PrimitiveTypes.Int64), field("a", arrow.PrimitiveTypes.Int64)}, "a"},
		{"bad child name", []arrow.Field{field("s", arrow.StructOf(field("in.ner", arrow.PrimitiveTypes.Int64)))}, "s.in.ner"},
		{"duplicate child", []arrow.Field{field("s", arrow.StructOf(field("x", arrow.PrimitiveTypes.Int64), field("x", arrow.PrimitiveTypes.Int64)))}, "s.x"},
		{"empty struct", []arrow.Field{field("s", arrow.StructOf())}, "s"},
		{"dictionary", []arrow.Field{field("d", &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String})}, "d"},
		{"vector", []arrow.Field{field("v", arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Float32))}, ""},
		{"vector of strings", []arrow.Field{field("v", arrow.FixedSizeListOf(4, arrow.BinaryTypes.String))}, "v"},
		{"list of bad names", []arrow.Field{field("l", arrow.ListOf(arrow.StructOf(field("_rowid", arrow.PrimitiveTypes.Int64))))}, "l[]._rowid"},
	}
	for _, c := range cases {
		err := ValidateSchema(arrow.NewSchema(c.fields, nil))
		var ie *InvalidError
		switch {
		case c.path == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.path != "" && !errors.As(err, &ie):
			t.Errorf("%s: want an InvalidError at %q, got %v", c.name, c.path, err)
		case c.path != "" && !strings.HasPrefix(ie.Field, c.path):
			t.Errorf("%s: error at %q, want %q (%v)", c.name, ie.Field, c.path, err)
		}
	}
}

func TestValidateUTF8(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	build := func(values ...string) arrow.RecordBatch {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.AppendValues(values, nil)
		arr := b.NewArray()
		defer arr.Release()
		sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
		return array.NewRecordBatch(sc, []arrow.Array{arr}, int64(arr.Len()))
	}
	for _, c := range []struct {
		values []string
		ok     bool
	}{
		{[]string{"a", "é", "中文", ""}, true},
		{[]string{"a", "\xff"}, false},
		// Each value starts inside the other's multi-byte sequence: the bytes
		// together are valid UTF-8, each value alone is not.
		{[]string{"\xc3", "\xa9"}, false},
	} {
		rec := build(c.values...)
		err := Validate(rec)
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.values, err)
		}
		// A slice starting mid-buffer is checked from its own first byte.
		if c.ok {
			sl := rec.NewSlice(1, rec.NumRows())
			if err := Validate(sl); err != nil {
				t.Errorf("slice of %q: %v", c.values, err)
			}
			sl.Release()
		}
		rec.Release()
	}
}
