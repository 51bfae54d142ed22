package file

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/lance/encoding"
)

func recordOf(t *testing.T, js string, fields ...arrow.Field) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, arrow.NewSchema(fields, nil), bytes.NewReader([]byte(js)))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func u64s(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// writeFile writes a data file at path with Write.
func writeFile(path string, top []*encoding.Field, cols []arrow.Array, rows int, o WriteOptions) (uint64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	size, err := Write(f, path, top, cols, rows, o)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return size, err
}
