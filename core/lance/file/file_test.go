package file

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/lance/encoding"
)

func nf(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

// typesSchema has every type the writer supports.
var typesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	nf("b", arrow.FixedWidthTypes.Boolean),
	nf("i8", arrow.PrimitiveTypes.Int8), nf("i16", arrow.PrimitiveTypes.Int16),
	nf("i32", arrow.PrimitiveTypes.Int32), nf("i64", arrow.PrimitiveTypes.Int64),
	nf("u8", arrow.PrimitiveTypes.Uint8), nf("u16", arrow.PrimitiveTypes.Uint16),
	nf("u32", arrow.PrimitiveTypes.Uint32), nf("u64", arrow.PrimitiveTypes.Uint64),
	nf("f32", arrow.PrimitiveTypes.Float32), nf("f64", arrow.PrimitiveTypes.Float64),
	nf("s", arrow.BinaryTypes.String), nf("ls", arrow.BinaryTypes.LargeString),
	nf("bin", arrow.BinaryTypes.Binary), nf("lbin", arrow.BinaryTypes.LargeBinary),
	nf("d32", arrow.FixedWidthTypes.Date32), nf("d64", arrow.FixedWidthTypes.Date64),
	nf("ts", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}),
	nf("tsn", &arrow.TimestampType{Unit: arrow.Nanosecond}),
	nf("t64", arrow.FixedWidthTypes.Time64us), nf("dur", arrow.FixedWidthTypes.Duration_ms),
	nf("vec", arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float32)),
	nf("ivec", arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int64)),
	nf("li", arrow.ListOf(arrow.PrimitiveTypes.Int64)),
	nf("lls", arrow.LargeListOf(arrow.BinaryTypes.String)),
	nf("nested", arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int32))),
	nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int32), nf("s", arrow.BinaryTypes.String),
		nf("inner", arrow.StructOf(nf("x", arrow.PrimitiveTypes.Float64))), nf("l", arrow.ListOf(arrow.PrimitiveTypes.Int8)))),
	nf("lst", arrow.ListOf(arrow.StructOf(nf("x", arrow.PrimitiveTypes.Int64), nf("y", arrow.BinaryTypes.String)))),
	nf("allnull", arrow.PrimitiveTypes.Float64),
	nf("nul", arrow.Null),
}, nil)

// typesRow renders row r of typesSchema as JSON; every column has nulls,
// empty values and values that vary in size.
func typesRow(r int) string {
	n := func(every int, v string) string {
		if r%every == every-1 {
			return "null"
		}
		return v
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	var list []string
	for k := 0; k < r%4; k++ {
		list = append(list, fmt.Sprint(r*10+k))
	}
	var strs []string
	for k := 0; k < r%3; k++ {
		strs = append(strs, q(strings.Repeat("x", k)+fmt.Sprint(r)))
	}
	var structs []string
	for k := 0; k < (r+1)%3; k++ {
		structs = append(structs, fmt.Sprintf(`{"x": %d, "y": %s}`, r+k, n(2, q(fmt.Sprint("y", k)))))
	}
	fields := []string{
		fmt.Sprintf(`"id": %d`, r),
		`"b": ` + n(3, fmt.Sprint(r%2 == 0)),
		`"i8": ` + n(4, fmt.Sprint(int8(r))), `"i16": ` + n(5, fmt.Sprint(int16(r*300))),
		`"i32": ` + n(3, fmt.Sprint(-r*70000)), `"i64": ` + n(6, fmt.Sprint(int64(r)<<40)),
		`"u8": ` + n(4, fmt.Sprint(uint8(r))), `"u16": ` + n(4, fmt.Sprint(uint16(r*7))),
		`"u32": ` + n(4, fmt.Sprint(uint32(r)*100000)), `"u64": ` + n(4, fmt.Sprint(uint64(r)<<50)),
		`"f32": ` + n(5, fmt.Sprint(float32(r)/8)), `"f64": ` + n(2, fmt.Sprint(float64(r)*1.25)),
		`"s": ` + n(3, q(strings.Repeat("é", r%5))), `"ls": ` + n(4, q(fmt.Sprint("large", r))),
		`"bin": ` + n(3, q([]string{"", "AQ==", "AQID"}[r%3])), `"lbin": ` + n(5, q("/w==")),
		`"d32": ` + n(3, q("2024-01-0"+fmt.Sprint(1+r%9))), `"d64": ` + n(3, q("2000-02-0"+fmt.Sprint(1+r%9))),
		`"ts": ` + n(4, q(fmt.Sprintf("2024-01-01T00:00:%02d.%06dZ", r%60, r))),
		`"tsn": ` + n(4, q(fmt.Sprintf("1999-12-31T23:59:%02d.%09d", r%60, r))),
		`"t64": ` + n(4, fmt.Sprint(r*1000)), `"dur": ` + n(4, fmt.Sprint(r*17)),
		`"vec": ` + n(5, fmt.Sprintf("[%d, %d.5, -%d]", r, r, r)),
		`"ivec": ` + n(3, fmt.Sprintf("[%d, null]", r)),
		`"li": ` + n(5, "["+strings.Join(list, ",")+"]"),
		`"lls": ` + n(6, "["+strings.Join(strs, ",")+"]"),
		`"nested": ` + n(4, fmt.Sprintf("[[%d], [], null, [1, 2]]", r)),
		`"st": ` + fmt.Sprintf(`{"a": %s, "s": %s, "inner": {"x": %s}, "l": %s}`,
			n(2, fmt.Sprint(r)), n(3, q(fmt.Sprint("s", r))), n(4, "0.5"), n(5, "[1, -1]")),
		`"lst": ` + n(7, "["+strings.Join(structs, ",")+"]"),
		`"allnull": null`, `"nul": null`,
	}
	return "{" + strings.Join(fields, ", ") + "}"
}

func typesRecord(t testing.TB, start, n int) arrow.RecordBatch {
	t.Helper()
	rows := make([]string, n)
	for i := range rows {
		rows[i] = typesRow(start + i)
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, typesSchema, strings.NewReader("["+strings.Join(rows, ",")+"]"))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	return rec
}

// writeRecordFile writes rec as a standalone data file and opens it.
func writeRecordFile(t testing.TB, rec arrow.RecordBatch, o WriteOptions) (*FileReader, *Reader) {
	t.Helper()
	next := int32(0)
	all, err := encoding.FieldsFromArrow(rec.Schema().Fields(), &next, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f.lance")
	size, err := writeFile(path, encoding.TopOf(all), rec.Columns(), int(rec.NumRows()), o)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(data)) != size {
		t.Fatalf("writeDataFile returned size %d, file has %d bytes", size, len(data))
	}
	fr, err := OpenFile(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		t.Fatal(err)
	}
	return fr, fr.r
}

func checkColumnsEqual(t *testing.T, want, got arrow.RecordBatch, what string) {
	t.Helper()
	if want.NumRows() != got.NumRows() {
		t.Fatalf("%s: %d rows, want %d", what, got.NumRows(), want.NumRows())
	}
	for i := 0; i < int(want.NumCols()); i++ {
		if !array.Equal(want.Column(i), got.Column(i)) {
			t.Errorf("%s: column %q differs:\nwant %v\ngot  %v", what, want.ColumnName(i), want.Column(i), got.Column(i))
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	rec := typesRecord(t, 0, 300)
	for _, comp := range []string{"", encoding.CompressionZstd, encoding.CompressionLZ4} {
		for _, pageBytes := range []int{1 << 20, 96} {
			name := fmt.Sprintf("compression=%q/page=%d", comp, pageBytes)
			t.Run(name, func(t *testing.T) {
				fr, r := writeRecordFile(t, rec, WriteOptions{Compression: comp, MaxPageBytes: pageBytes})
				if !fr.Schema().Equal(normalizedSchema(t, rec.Schema())) {
					t.Fatalf("schema:\n%v\nwant\n%v", fr.Schema(), rec.Schema())
				}
				got, err := fr.Read(0, fr.NumRows())
				if err != nil {
					t.Fatal(err)
				}
				checkColumnsEqual(t, rec, got, "full read")
				if pageBytes < 1000 {
					for c, col := range r.columns {
						if len(col.pages) < 2 && c != 0 && !isHeaderOrNull(r, c) {
							t.Errorf("column %d (%s) has %d pages, want several", c, r.fields[c].Name, len(col.pages))
						}
					}
				}
				rnd := rand.New(rand.NewSource(1))
				for k := 0; k < 40; k++ {
					s := rnd.Int63n(300)
					e := s + rnd.Int63n(301-s)
					got, err := fr.Read(s, e)
					if err != nil {
						t.Fatalf("Read(%d, %d): %v", s, e, err)
					}
					checkColumnsEqual(t, rec.NewSlice(s, e), got, fmt.Sprintf("Read(%d, %d)", s, e))
				}
			})
		}
	}
}

// isHeaderOrNull reports columns that legitimately have a single page: struct
// headers, null-typed columns and 300 bools (38 bytes).
func isHeaderOrNull(r *Reader, c int) bool {
	l := r.fields[c].Logical
	return l == "struct" || l == "null" || l == "bool"
}

// normalizedSchema is the schema as Lance reads it back: fixed-size list
// items are named "item" and nullable.
func normalizedSchema(t testing.TB, s *arrow.Schema) *arrow.Schema {
	next := int32(0)
	all, err := encoding.FieldsFromArrow(s.Fields(), &next, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := encoding.BuildSchema(all)
	if err != nil {
		t.Fatal(err)
	}
	return sc.ArrowSchema(nil)
}

func TestFileEmptyAndAllNull(t *testing.T) {
	empty := typesRecord(t, 0, 0)
	fr, r := writeRecordFile(t, empty, WriteOptions{MaxPageBytes: 1 << 20})
	if fr.NumRows() != 0 {
		t.Fatalf("rows = %d", fr.NumRows())
	}
	for c, col := range r.columns {
		if len(col.pages) != 0 {
			t.Errorf("column %d of an empty file has %d pages", c, len(col.pages))
		}
	}
	got, err := fr.Read(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkColumnsEqual(t, empty, got, "empty")

	// A page whose values are all null has no buffers (nullable.all_nulls).
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		nf("f", arrow.PrimitiveTypes.Float64), nf("v", arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float32)),
		nf("s", arrow.BinaryTypes.String), nf("l", arrow.ListOf(arrow.PrimitiveTypes.Int64))}, nil))
	for i := 0; i < 10; i++ {
		for _, fb := range b.Fields() {
			fb.AppendNull()
		}
	}
	rec := b.NewRecordBatch()
	fr, r = writeRecordFile(t, rec, WriteOptions{MaxPageBytes: 1 << 20})
	if e := r.columns[0].pages[0].enc; e.Kind != encoding.EncNullable || e.Nulls != encoding.AllNulls || len(r.columns[0].pages[0].offs) != 0 {
		t.Errorf("all-null float column encoded as %+v", e)
	}
	got, err = fr.Read(3, 9)
	if err != nil {
		t.Fatal(err)
	}
	checkColumnsEqual(t, rec.NewSlice(3, 9), got, "all null")
	// A list without items still gives its item column one empty page, as
	// Lance does: Lance's decoder indexes the first page of every column.
	if items := r.columns[4].pages; len(items) != 1 || items[0].length != 0 {
		t.Errorf("item column of an all-null list has pages %+v", items)
	}
}

// A null struct is not representable in 2.0: it reads back as a struct
// whose children are null (§9 notes), never as the values under the slot.
func TestFileNullStruct(t *testing.T) {
	st := arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int32))
	sc := arrow.NewSchema([]arrow.Field{nf("st", st)}, nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(`[{"st": {"a": 1}}, {"st": null}, {"st": {"a": null}}]`))
	if err != nil {
		t.Fatal(err)
	}
	fr, _ := writeRecordFile(t, rec, WriteOptions{MaxPageBytes: 1 << 20})
	got, err := fr.Read(0, 3)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := got.MarshalJSON()
	if want := `[{"st":{"a":1}}` + "\n" + `,{"st":{"a":null}}` + "\n" + `,{"st":{"a":null}}` + "\n" + `]`; string(js) != want {
		t.Fatalf("got %s", js)
	}
}

// The byte layout of a one-column file matches the 269-byte example of §8.
func TestFileLayoutMatchesSpec(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(`[{"id":1},{"id":2},{"id":3}]`))
	if err != nil {
		t.Fatal(err)
	}
	next := int32(0)
	all, _ := encoding.FieldsFromArrow(sc.Fields(), &next, -1, 0)
	path := filepath.Join(t.TempDir(), "a.lance")
	if _, err := writeFile(path, all, rec.Columns(), 3, WriteOptions{MaxPageBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := unhex(t, `
0100000000000000 0200000000000000 0300000000000000`+strings.Repeat("48", 40)+`
0a180a161202 6964 20ffffffffffffffffff01 2a05 696e74363410 03
0a2912270a250a1f 2f6c616e63652e656e636f64696e67732e436f6c756d6e456e636f64696e67 12020a00
123c0a0100120118 1803 22321230 0a2e0a1e 2f6c616e63652e656e636f64696e67732e4172726179456e636f64696e67 120c120a0a080a060a0408401200
5c00000000000000 6900000000000000
4000000000000000 1c00000000000000
5c00000000000000 c500000000000000 d500000000000000 01000000 01000000 0000 0300 4c414e43`)
	if !bytes.Equal(got, want) {
		t.Fatalf("file bytes differ from §8:\n got %x\nwant %x", got, want)
	}
}

func unhex(t testing.TB, s string) []byte {
	s = strings.Join(strings.Fields(s), "")
	b := make([]byte, len(s)/2)
	if _, err := fmt.Sscanf(s, "%x", &b); err != nil {
		t.Fatal(err)
	}
	return b
}
