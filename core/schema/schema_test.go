package schema

import (
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func sch(fields ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fields, nil) }
func fld(name string, dt arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: dt, Nullable: true}
}

var (
	i64  = arrow.PrimitiveTypes.Int64
	f64  = arrow.PrimitiveTypes.Float64
	str  = arrow.BinaryTypes.String
	null = arrow.Null
)

func TestUnify(t *testing.T) {
	cases := []struct {
		name      string
		table, in *arrow.Schema
		want      *arrow.Schema
		changed   bool
		errField  string
	}{
		{"same", sch(fld("a", i64)), sch(fld("a", i64)), sch(fld("a", i64)), false, ""},
		{"new field appended", sch(fld("a", i64)), sch(fld("b", str), fld("a", i64)), sch(fld("a", i64), fld("b", str)), true, ""},
		{"int widens", sch(fld("a", i64)), sch(fld("a", f64)), sch(fld("a", f64)), true, ""},
		{"float takes ints", sch(fld("a", f64)), sch(fld("a", i64)), sch(fld("a", f64)), false, ""},
		{"null takes type", sch(fld("a", null)), sch(fld("a", str)), sch(fld("a", str)), true, ""},
		{"null incoming", sch(fld("a", str)), sch(fld("a", null)), sch(fld("a", str)), false, ""},
		{"struct field added", sch(fld("s", arrow.StructOf(fld("x", i64)))), sch(fld("s", arrow.StructOf(fld("y", str)))),
			sch(fld("s", arrow.StructOf(fld("x", i64), fld("y", str)))), true, ""},
		{"list elem widens", sch(fld("l", arrow.ListOf(i64))), sch(fld("l", arrow.ListOf(f64))), sch(fld("l", arrow.ListOf(f64))), true, ""},
		{"other time zone keeps the table's", sch(fld("t", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})),
			sch(fld("t", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "+01:00"})),
			sch(fld("t", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})), false, ""},
		{"naive meets aware", sch(fld("t", &arrow.TimestampType{Unit: arrow.Microsecond})),
			sch(fld("t", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})), nil, false, "t"},
		{"int to str", sch(fld("a", i64)), sch(fld("a", str)), nil, false, "a"},
		{"str to int", sch(fld("a", str)), sch(fld("a", i64)), nil, false, "a"},
		{"scalar to list", sch(fld("a", i64)), sch(fld("a", arrow.ListOf(i64))), nil, false, "a"},
		{"struct to scalar", sch(fld("s", arrow.StructOf(fld("x", i64)))), sch(fld("s", i64)), nil, false, "s"},
		{"nested conflict", sch(fld("s", arrow.StructOf(fld("x", i64)))), sch(fld("s", arrow.StructOf(fld("x", str)))), nil, false, "s.x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, changed, err := Unify(c.table, c.in)
			if c.errField != "" {
				var se *Error
				if !errors.As(err, &se) || se.Field != c.errField {
					t.Fatalf("want error on %q, got %v", c.errField, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != c.changed || !got.Equal(c.want) {
				t.Fatalf("got %v (changed=%v), want %v (changed=%v)", got, changed, c.want, c.changed)
			}
		})
	}
}

func TestConformFillsWidensAndReorders(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	// rec: {b: str, a: int64}, with a null in a.
	ab := array.NewInt64Builder(mem)
	ab.AppendValues([]int64{1, 0}, []bool{true, false})
	a := ab.NewArray()
	ab.Release()
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"x", "y"}, nil)
	s := sb.NewArray()
	sb.Release()
	rec := array.NewRecordBatch(sch(fld("b", str), fld("a", i64)), []arrow.Array{s, a}, 2)
	a.Release()
	s.Release()
	defer rec.Release()

	target := sch(fld("a", f64), fld("b", str), fld("c", str))
	out, err := Conform(rec, target, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if !out.Schema().Equal(target) {
		t.Fatalf("schema %v", out.Schema())
	}
	fa := out.Column(0).(*array.Float64)
	if fa.Value(0) != 1.0 || !fa.IsNull(1) {
		t.Fatalf("widened column %v", fa)
	}
	if out.Column(1).(*array.String).Value(1) != "y" || out.Column(2).NullN() != 2 {
		t.Fatal("reorder or null fill wrong")
	}
}

func TestConformSlicedStructAndList(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	st := arrow.StructOf(fld("x", i64))
	sb := array.NewStructBuilder(mem, st)
	xb := sb.FieldBuilder(0).(*array.Int64Builder)
	for i := int64(0); i < 4; i++ {
		sb.Append(true)
		xb.Append(i)
	}
	sarr := sb.NewArray()
	sb.Release()
	lb := array.NewListBuilder(mem, i64)
	vb := lb.ValueBuilder().(*array.Int64Builder)
	for i := int64(0); i < 4; i++ {
		lb.Append(true)
		vb.AppendValues([]int64{i, i * 10}, nil)
	}
	larr := lb.NewArray()
	lb.Release()
	full := array.NewRecordBatch(sch(fld("s", st), fld("l", arrow.ListOf(i64))), []arrow.Array{sarr, larr}, 4)
	sarr.Release()
	larr.Release()
	rec := full.NewSlice(2, 4) // offsets matter
	full.Release()
	defer rec.Release()

	target := sch(fld("s", arrow.StructOf(fld("x", f64), fld("y", str))), fld("l", arrow.ListOf(f64)))
	out, err := Conform(rec, target, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	s := out.Column(0).(*array.Struct)
	if x := s.Field(0).(*array.Float64); x.Value(0) != 2 || x.Value(1) != 3 {
		t.Fatalf("struct child %v", x)
	}
	if s.Field(1).NullN() != 2 {
		t.Fatal("added struct field should be null")
	}
	l := out.Column(1).(*array.List)
	vals := l.ListValues().(*array.Float64)
	start, end := l.ValueOffsets(1)
	if vals.Value(int(start)) != 3 || vals.Value(int(end-1)) != 30 {
		t.Fatalf("list values %v", l)
	}
}
