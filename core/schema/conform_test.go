package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func fromJSON(t *testing.T, mem memory.Allocator, dt arrow.DataType, js string) arrow.Array {
	t.Helper()
	a, _, err := array.FromJSON(mem, dt, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func conformJSON(t *testing.T, mem memory.Allocator, src arrow.Array, dt arrow.DataType) string {
	t.Helper()
	c, err := ConformArray("c", src, dt, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if !arrow.TypeEqual(c.DataType(), dt) {
		t.Fatalf("type %s, want %s", c.DataType(), dt)
	}
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\n", "")
}

// Large lists conform like lists, sliced or empty, nulls kept.
func TestConformLargeList(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	full := fromJSON(t, mem, arrow.LargeListOf(i64), `[[1,2],null,[],[null,4],[5]]`)
	defer full.Release()
	sl := array.NewSlice(full, 1, 4)
	defer sl.Release()
	if got := conformJSON(t, mem, sl, arrow.LargeListOf(f64)); got != `[null,[],[null,4]]` {
		t.Fatalf("got %s", got)
	}
	empty := array.NewSlice(full, 2, 2)
	defer empty.Release()
	if got := conformJSON(t, mem, empty, arrow.LargeListOf(f64)); got != `[]` {
		t.Fatalf("got %s", got)
	}
	// A list does not become a large list, nor the other way round.
	if _, err := ConformArray("c", sl, arrow.ListOf(f64), mem); err == nil {
		t.Fatal("large_list conformed to list")
	}
}

// A fixed-size list whose item field differs only in name or nullability
// takes the target's item field; a different size or item type does not.
func TestConformFixedSizeListItemField(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	src := arrow.FixedSizeListOfField(2, arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Float32})
	a := fromJSON(t, mem, src, `[[1,2],null,[3,4]]`)
	defer a.Release()
	target := arrow.FixedSizeListOfField(2, arrow.Field{Name: "item", Type: arrow.PrimitiveTypes.Float32, Nullable: true})
	if got := conformJSON(t, mem, a, target); got != `[[1,2],null,[3,4]]` {
		t.Fatalf("got %s", got)
	}
	for _, dt := range []arrow.DataType{
		arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float32),
		arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float64),
	} {
		var se *Error
		if _, err := ConformArray("v", a, dt, mem); !errors.As(err, &se) || se.Field != "v" {
			t.Errorf("%s: %v", dt, err)
		}
	}
}

// A timestamp takes the target's zone, never its unit.
func TestConformTimestampZoneNotUnit(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	a := fromJSON(t, mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "+01:00"}, `[1000000,null]`)
	defer a.Release()
	utc := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	c, err := ConformArray("t", a, utc, mem)
	if err != nil {
		t.Fatal(err)
	}
	if !arrow.TypeEqual(c.DataType(), utc) || c.(*array.Timestamp).Value(0) != 1000000 || c.NullN() != 1 {
		t.Fatalf("got %s %v", c.DataType(), c)
	}
	c.Release()
	if _, err := ConformArray("t", a, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, mem); err == nil {
		t.Fatal("microseconds relabelled as nanoseconds")
	}
}

// Nested conversions report the path of the field that cannot be stored.
func TestConformArrayErrorPath(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	a := fromJSON(t, mem, arrow.StructOf(fld("l", arrow.ListOf(str))), `[{"l":["x"]}]`)
	defer a.Release()
	var se *Error
	_, err := ConformArray("s", a, arrow.StructOf(fld("l", arrow.ListOf(i64))), mem)
	if !errors.As(err, &se) || se.Field != "s.l[]" {
		t.Fatalf("got %v", err)
	}
}
