// Package benchdata builds the tables of bench/bench_lance.py for the Go
// benchmarks of the Lance writer.
package benchdata

import (
	"fmt"
	"math/rand"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The tables of bench/bench_lance.py: narrow is (id, ts, name) x 100,000
// rows, wide is id, 13 int64, 13 float64 and 13 string columns x 20,000 rows.

func Narrow(rows int) arrow.RecordBatch {
	rng := rand.New(rand.NewSource(1))
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "ts", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := 0; i < rows; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Int64Builder).Append(1_700_000_000_000_000 + int64(i)*37)
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("user-%d", rng.Intn(100_000)))
	}
	return b.NewRecordBatch()
}

func Wide(rows int) arrow.RecordBatch {
	rng := rand.New(rand.NewSource(1))
	mem := memory.DefaultAllocator
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	fields := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	for c := 1; c < 14; c++ {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("i%02d", c), Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	}
	for c := 0; c < 13; c++ {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("f%02d", c), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	for c := 0; c < 13; c++ {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("s%02d", c), Type: arrow.BinaryTypes.String, Nullable: true})
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i := 0; i < rows; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		for c := 1; c < 14; c++ {
			b.Field(c).(*array.Int64Builder).Append(rng.Int63n(1 << 40))
		}
		for c := 14; c < 27; c++ {
			b.Field(c).(*array.Float64Builder).Append(rng.Float64() * 1000)
		}
		for c := 27; c < 40; c++ {
			b.Field(c).(*array.StringBuilder).Append(fmt.Sprintf("%s-%06d", words[rng.Intn(len(words))], rng.Intn(1_000_000)))
		}
	}
	return b.NewRecordBatch()
}
