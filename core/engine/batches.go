package engine

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/persisting/persisting/core/schema"
)

func deepCopy(rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	st := array.RecordToStructArray(rec)
	defer st.Release()
	cp, err := array.Concatenate([]arrow.Array{st}, mem)
	if err != nil {
		return nil, fmt.Errorf("copy batch: %w", err)
	}
	defer cp.Release()
	return array.RecordFromStructArray(cp.(*array.Struct), rec.Schema()), nil
}

func concatRecords(recs []arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	parts := make([]arrow.Array, len(recs))
	for i, r := range recs {
		parts[i] = array.RecordToStructArray(r)
		defer parts[i].Release()
	}
	cat, err := array.Concatenate(parts, mem)
	if err != nil {
		return nil, fmt.Errorf("concatenate batches: %w", err)
	}
	defer cat.Release()
	return array.RecordFromStructArray(cat.(*array.Struct), recs[0].Schema()), nil
}

func conformAll(recs []arrow.RecordBatch, table *arrow.Schema, mem memory.Allocator) ([]arrow.RecordBatch, error) {
	out := make([]arrow.RecordBatch, 0, len(recs))
	for _, r := range recs {
		c, err := schema.Conform(r, table, mem)
		if err != nil {
			for _, o := range out {
				o.Release()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
