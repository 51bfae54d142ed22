package file

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
)

// FileReader reads one Lance 2.0 data file on its own, without a manifest,
// using the schema stored in the file's FileDescriptor. Datasets do not need
// it (they read through the manifest's field ids); it serves tools and the
// fuzz tests of the data-file reader.
type FileReader struct {
	ra   io.ReaderAt
	r    *Reader
	s    *encoding.Schema
	cols map[int32]int
}

// OpenFile parses the footer and metadata of the data file in ra.
func OpenFile(ra io.ReaderAt, size int64, name string) (*FileReader, error) {
	if size < 0 {
		return nil, fmt.Errorf("lance: %s: negative size %d", name, size)
	}
	r, err := OpenReader(ra, uint64(size), name)
	if err != nil {
		return nil, err
	}
	s, err := encoding.BuildSchema(r.fields)
	if err != nil {
		return nil, fmt.Errorf("lance: %s: file schema: %w", name, err)
	}
	// In 2.0 every field, parents included, has its own column in pre-order.
	if len(s.All) != len(r.columns) {
		return nil, fmt.Errorf("lance: %s: %d schema fields but %d columns", name, len(s.All), len(r.columns))
	}
	cols := make(map[int32]int, len(s.All))
	for i, f := range s.All {
		cols[f.ID] = i
	}
	return &FileReader{ra: ra, r: r, s: s, cols: cols}, nil
}

// Schema is the Arrow schema of the file.
func (f *FileReader) Schema() *arrow.Schema { return f.s.ArrowSchema(nil) }

// NumRows is the row count of the FileDescriptor.
func (f *FileReader) NumRows() int64 { return int64(f.r.rows) }

// Read returns rows [start, end) of the file.
func (f *FileReader) Read(start, end int64) (arrow.RecordBatch, error) {
	if start < 0 || end < start || uint64(end) > f.r.rows {
		return nil, fmt.Errorf("lance: %s: rows [%d, %d) outside [0, %d)", f.r.path, start, end, f.r.rows)
	}
	cols := make([]arrow.Array, len(f.s.Top))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, fl := range f.s.Top {
		a, err := f.r.ReadField(f.ra, fl, f.cols, uint64(start), uint64(end))
		if err != nil {
			return nil, err
		}
		if a.Len() != int(end-start) {
			a.Release()
			return nil, fmt.Errorf("lance: %s: field %q read %d rows, want %d", f.r.path, fl.Name, a.Len(), end-start)
		}
		cols[i] = a
	}
	return array.NewRecordBatch(f.Schema(), cols, end-start), nil
}
