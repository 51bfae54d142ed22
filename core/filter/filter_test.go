package filter

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func testBatch(t *testing.T) arrow.RecordBatch {
	t.Helper()
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	s := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u", Type: arrow.PrimitiveTypes.Uint32},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32},
		{Name: "t", Type: ts},
		{Name: "v", Type: arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float32)},
		{Name: "odd name", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer b.Release()
	valid := []bool{true, true, false, true, true}
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 0, 4, 5}, valid)
	b.Field(1).(*array.Uint32Builder).AppendValues([]uint32{10, 20, 30, 40, 50}, nil)
	b.Field(2).(*array.Float64Builder).AppendValues([]float64{0.5, 1.5, 2.5, 0, 4.5}, []bool{true, true, true, false, true})
	b.Field(3).(*array.StringBuilder).AppendValues([]string{"a", "b", "it's", "", "e"}, []bool{true, true, true, false, true})
	b.Field(4).(*array.BooleanBuilder).AppendValues([]bool{true, false, true, false, false}, []bool{true, true, true, true, false})
	day := func(s string) arrow.Date32 {
		tm, _ := time.Parse("2006-01-02", s)
		return arrow.Date32FromTime(tm)
	}
	b.Field(5).(*array.Date32Builder).AppendValues([]arrow.Date32{day("2024-01-01"), day("2024-01-02"), day("2024-01-03"), day("2024-01-04"), day("2024-01-05")}, nil)
	us := func(s string) arrow.Timestamp {
		tm, _ := time.Parse(time.RFC3339, s)
		return arrow.Timestamp(tm.UnixMicro())
	}
	b.Field(6).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{us("2024-01-01T00:00:00Z"), us("2024-01-01T12:00:00Z"), us("2024-01-02T00:00:00Z"), us("2024-01-03T00:00:00Z"), us("2024-01-04T00:00:00Z")}, nil)
	lb := b.Field(7).(*array.FixedSizeListBuilder)
	for i := 0; i < 5; i++ {
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{1, 2}, nil)
	}
	b.Field(8).(*array.Int64Builder).AppendValues([]int64{7, 8, 9, 10, 11}, nil)
	return b.NewRecordBatch()
}

func rows(sel []bool) []int {
	var out []int
	for i, s := range sel {
		if s {
			out = append(out, i)
		}
	}
	return out
}

func TestOperators(t *testing.T) {
	rec := testBatch(t)
	defer rec.Release()
	cases := map[string][]int{
		"i = 2":                               {1},
		"i == 2":                              {1},
		"i != 2":                              {0, 3, 4}, // the null row is unknown
		"i <> 2":                              {0, 3, 4},
		"i < 4":                               {0, 1},
		"i <= 4":                              {0, 1, 3},
		"i > 4":                               {4},
		"i >= 4":                              {3, 4},
		"i > 1.5":                             {1, 3, 4},
		"i BETWEEN 2 AND 4":                   {1, 3},
		"i NOT BETWEEN 2 AND 4":               {0, 4},
		"i IN (1, 5)":                         {0, 4},
		"i NOT IN (1, 5)":                     {1, 3},
		"i IS NULL":                           {2},
		"i IS NOT NULL":                       {0, 1, 3, 4},
		"NOT i IS NULL":                       {0, 1, 3, 4},
		"u >= 30 AND u < 50":                  {2, 3},
		"u > -1":                              {0, 1, 2, 3, 4},
		"f > 1":                               {1, 2, 4},
		"f IS NULL OR f < 1":                  {0, 3},
		"s = 'it''s'":                         {2},
		"s >= 'b'":                            {1, 2, 4},
		"s IN ('a', 'e')":                     {0, 4},
		"b = TRUE":                            {0, 2},
		"b = false":                           {1, 3},
		"b IS NULL":                           {4},
		"d = DATE '2024-01-02'":               {1},
		"d >= '2024-01-04'":                   {3, 4},
		"t < TIMESTAMP '2024-01-02 00:00:00'": {0, 1},
		"t = '2024-01-01T12:00:00Z'":          {1},
		"t >= '2024-01-01T13:00:00+01:00'":    {1, 2, 3, 4},
		"(i = 1 OR i = 2) AND NOT (s = 'a')":  {1},
		"i = 1 OR i = 2 AND s = 'a'":          {0},
		"NOT (i > 100)":                       {0, 1, 3, 4},
		"\"odd name\" > 9":                    {3, 4},
		"`odd name` = 7":                      {0},
		"v IS NOT NULL":                       {0, 1, 2, 3, 4},
		"i = 1 or I is null":                  nil, // I is another column: error below
	}
	for expr, want := range cases {
		f, err := Compile(expr, rec.Schema())
		if expr == "i = 1 or I is null" {
			var fe *Error
			if !errors.As(err, &fe) || fe.Column != "I" {
				t.Errorf("%s: err %v, want a filter error naming I", expr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		sel, err := f.Eval(rec)
		if err != nil {
			t.Errorf("%s: eval: %v", expr, err)
			continue
		}
		if got := rows(sel); !slices.Equal(got, want) {
			t.Errorf("%s: rows %v, want %v", expr, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	rec := testBatch(t)
	defer rec.Release()
	cases := map[string]string{ // expression -> column named ("" for syntax)
		"nope = 1":       "nope",
		"i = 'x'":        "i",
		"s > 3":          "s",
		"b = 1":          "b",
		"v = 1":          "v",
		"d = 'tomorrow'": "d",
		"i = NULL":       "i",
		"i =":            "",
		"i":              "i",
		"i = 1 AND":      "",
		"(i = 1":         "",
		"i ~ 1":          "",
		"'x' = i":        "",
		"i IN ()":        "",
		"s = 'open":      "",
	}
	for expr, col := range cases {
		_, err := Compile(expr, rec.Schema())
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("%s: err %v, want *Error", expr, err)
			continue
		}
		if fe.Column != col {
			t.Errorf("%s: column %q, want %q (%v)", expr, fe.Column, col, err)
		}
	}
	if f, err := Compile("  ", rec.Schema()); f != nil || err != nil {
		t.Errorf("blank filter: %v %v", f, err)
	}
}
