package table

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Lance's ARROW_ARRAY deletion files are Arrow IPC files with one or more
// batches of one non-null 32-bit integer column, "row_id" (§5 DeletionFile;
// Lance writes UInt32, the docs say Int32, both are accepted). arrow-rs may
// compress the batch bodies (LZ4 frame or zstd); arrow-go's ipc reader
// undoes that.
func readArrowRowIDs(data []byte) (rows []uint32, err error) {
	// arrow-go's flatbuffer accessors index without bounds checks, so a
	// corrupt file can panic inside the reader: that is an error here, as
	// every other corrupt input of this package is.
	defer func() {
		if r := recover(); r != nil {
			rows, err = nil, fmt.Errorf("arrow ipc: corrupt file: %v", r)
		}
	}()
	r, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, fmt.Errorf("arrow ipc: %w", err)
	}
	defer r.Close()
	sc := r.Schema()
	if sc.NumFields() != 1 {
		return nil, fmt.Errorf("arrow ipc: deletion file has %d columns, want 1", sc.NumFields())
	}
	if id := sc.Field(0).Type.ID(); id != arrow.UINT32 && id != arrow.INT32 {
		return nil, fmt.Errorf("arrow ipc: row_id column has type %s, want a 32-bit integer", sc.Field(0).Type)
	}
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordBatchAt(i)
		if err != nil {
			return nil, fmt.Errorf("arrow ipc: record batch %d: %w", i, err)
		}
		d := rec.Column(0).Data()
		vals := arrow.Uint32Traits.CastFromBytes(d.Buffers()[1].Bytes())
		rows = append(rows, vals[d.Offset():d.Offset()+d.Len()]...)
		rec.Release()
	}
	return rows, nil
}
