package lance_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// allTypesSchema covers every Arrow type the engine produces.
var allTypesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "vec", Type: arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float32), Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "st", Type: arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	{Name: "lst", Type: arrow.ListOf(arrow.StructOf(
		arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true})), Nullable: true},
	{Name: "nul", Type: arrow.Null, Nullable: true},
}, nil)

const allTypesJSON = `[
{"id": 0, "flag": true, "i32": -5, "u16": 7, "f32": 1.5, "f64": 0.25, "s": "a", "ls": "large", "bin": "AAEC", "ts": "2024-01-01T00:00:00Z", "d": "2024-01-02", "vec": [1, 2, 3], "tags": ["x", "y"], "st": {"a": 1, "b": "p"}, "lst": [{"x": 1}, {"x": null}], "nul": null},
{"id": 1, "flag": null, "i32": null, "u16": null, "f32": null, "f64": null, "s": null, "ls": null, "bin": null, "ts": null, "d": null, "vec": null, "tags": null, "st": {"a": null, "b": "q"}, "lst": null, "nul": null},
{"id": 2, "flag": false, "i32": 2147483647, "u16": 65535, "f32": -0.5, "f64": 1e300, "s": "", "ls": "", "bin": "", "ts": "1970-01-01T00:00:01.000001Z", "d": "1970-01-01", "vec": [4, 5, 6], "tags": [], "st": {"a": 3, "b": null}, "lst": [], "nul": null},
{"id": 3, "flag": true, "i32": 3, "u16": 3, "f32": 3, "f64": 3, "s": "héllo", "ls": "z", "bin": "/w==", "ts": "2030-06-01T12:00:00Z", "d": "2030-06-01", "vec": [7, 8, 9], "tags": ["only"], "st": {"a": 4, "b": "r"}, "lst": [{"x": 9}], "nul": null}
]`

func allTypesRecord(t testing.TB) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, allTypesSchema, strings.NewReader(allTypesJSON))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	return rec
}

// genRecord builds n rows of allTypesSchema with ids start.., with nulls,
// empty values and multi-byte strings in fixed patterns.
func genRecord(start, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, allTypesSchema)
	defer b.Release()
	for r := start; r < start+n; r++ {
		null := r%7 == 3
		b.Field(0).(*array.Int64Builder).Append(int64(r))
		appendOr(b.Field(1), null, func() { b.Field(1).(*array.BooleanBuilder).Append(r%2 == 0) })
		appendOr(b.Field(2), null, func() { b.Field(2).(*array.Int32Builder).Append(int32(r * -3)) })
		appendOr(b.Field(3), null, func() { b.Field(3).(*array.Uint16Builder).Append(uint16(r)) })
		appendOr(b.Field(4), null, func() { b.Field(4).(*array.Float32Builder).Append(float32(r) / 4) })
		appendOr(b.Field(5), null, func() { b.Field(5).(*array.Float64Builder).Append(float64(r) * 1.5) })
		appendOr(b.Field(6), null, func() { b.Field(6).(*array.StringBuilder).Append(strings.Repeat("é", r%5) + "s" + itoa(r)) })
		appendOr(b.Field(7), r%11 == 0, func() { b.Field(7).(*array.LargeStringBuilder).Append(itoa(r * r)) })
		appendOr(b.Field(8), null, func() { b.Field(8).(*array.BinaryBuilder).Append([]byte{byte(r), 0, byte(r >> 8)}[:r%4]) })
		appendOr(b.Field(9), null, func() { b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(r) * 1_000_001)) })
		appendOr(b.Field(10), null, func() { b.Field(10).(*array.Date32Builder).Append(arrow.Date32(r)) })
		vb := b.Field(11).(*array.FixedSizeListBuilder)
		appendOr(vb, r%9 == 4, func() {
			vb.Append(true)
			for k := 0; k < 3; k++ {
				vb.ValueBuilder().(*array.Float32Builder).Append(float32(r*3 + k))
			}
		})
		lb := b.Field(12).(*array.ListBuilder)
		appendOr(lb, r%5 == 1, func() {
			lb.Append(true)
			for k := 0; k < r%4; k++ {
				lb.ValueBuilder().(*array.StringBuilder).Append("t" + itoa(r) + "_" + itoa(k))
			}
		})
		sb := b.Field(13).(*array.StructBuilder)
		sb.Append(true)
		appendOr(sb.FieldBuilder(0), r%3 == 0, func() { sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(r)) })
		appendOr(sb.FieldBuilder(1), r%4 == 0, func() { sb.FieldBuilder(1).(*array.StringBuilder).Append("b" + itoa(r)) })
		llb := b.Field(14).(*array.ListBuilder)
		appendOr(llb, r%6 == 5, func() {
			llb.Append(true)
			is := llb.ValueBuilder().(*array.StructBuilder)
			for k := 0; k < r%3; k++ {
				is.Append(true)
				is.FieldBuilder(0).(*array.Int64Builder).Append(int64(r*10 + k))
			}
		})
		b.Field(15).AppendNull()
	}
	return b.NewRecordBatch()
}

func appendOr(b array.Builder, null bool, f func()) {
	if null {
		b.AppendNull()
		return
	}
	f()
}

func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func recordFromJSON(t testing.TB, s *arrow.Schema, js string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, s, strings.NewReader(js))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	return rec
}

// schemaOf builds a schema of nullable columns from [["name","type"],...].
func schemaOf(t testing.TB, spec string) *arrow.Schema {
	t.Helper()
	var cols [][2]string
	if err := json.Unmarshal([]byte(spec), &cols); err != nil {
		t.Fatal(err)
	}
	types := map[string]arrow.DataType{"int64": arrow.PrimitiveTypes.Int64, "utf8": arrow.BinaryTypes.String,
		"float64": arrow.PrimitiveTypes.Float64, "null": arrow.Null}
	var fs []arrow.Field
	for _, c := range cols {
		fs = append(fs, arrow.Field{Name: c[0], Type: types[c[1]], Nullable: true})
	}
	return arrow.NewSchema(fs, nil)
}

// rowsJSON renders rows with sorted keys.
func rowsJSON(t testing.TB, rows []map[string]any) string {
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
