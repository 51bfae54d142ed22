package file

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/pb"
)

// Reader holds the parsed metadata of one 2.0 data file: the footer, the
// FileDescriptor and, per column, its pages with their encodings. Page
// buffers are read on demand, one ReadAt per buffer.
type Reader struct {
	path    string
	size    uint64
	rows    uint64
	fields  []*encoding.Field // FileDescriptor schema, pre-order
	columns []columnMeta
}

// Rows is the number of rows the FileDescriptor gives.
func (r *Reader) Rows() uint64 { return r.rows }

// Fields is the FileDescriptor schema, pre-order.
func (r *Reader) Fields() []*encoding.Field { return r.fields }

// NumColumns is the number of columns of the file.
func (r *Reader) NumColumns() int { return len(r.columns) }

// PageInfo describes one page of a column, for tools and tests that
// compare data files page by page.
type PageInfo struct {
	Length        uint64
	Encoding      *encoding.ArrayEncoding
	BufferOffsets []uint64
}

// Pages describes the pages of column col.
func (r *Reader) Pages(col int) []PageInfo {
	out := make([]PageInfo, len(r.columns[col].pages))
	for i, p := range r.columns[col].pages {
		out[i] = PageInfo{Length: p.length, Encoding: p.enc, BufferOffsets: p.offs}
	}
	return out
}

// PageBuffers reads the buffers of page i of column col.
func (r *Reader) PageBuffers(ra io.ReaderAt, col, i int) ([][]byte, error) {
	return r.readBuffers(ra, &r.columns[col].pages[i])
}

type columnMeta struct {
	pages []pageMeta
	// starts[i] is the first slot of page i; starts[len(pages)] is the
	// column length. Binary search over it finds the pages of a range.
	starts []uint64
	// itemStarts[i] is the first list item of offsets page i (list columns).
	itemStarts []uint64
}

type pageMeta struct {
	offs, sizes []uint64
	length      uint64
	enc         *encoding.ArrayEncoding
}

func (r *Reader) errorf(off uint64, format string, args ...any) error {
	return fmt.Errorf("lance: %s at offset %d: %s", r.path, off, fmt.Sprintf(format, args...))
}

func (r *Reader) wrap(off uint64, err error) error {
	return fmt.Errorf("lance: %s at offset %d: %w", r.path, off, err)
}

// OpenReader parses the footer and metadata of a data file of the given
// size (the manifest's file_size_bytes, or a stat).
func OpenReader(ra io.ReaderAt, size uint64, path string) (*Reader, error) {
	r := &Reader{path: path, size: size}
	if size < footerLen {
		return nil, r.errorf(0, "file of %d bytes is shorter than the %d-byte footer", size, footerLen)
	}
	foot := make([]byte, footerLen)
	if _, err := ra.ReadAt(foot, int64(size-footerLen)); err != nil {
		return nil, r.wrap(size-footerLen, err)
	}
	if !bytes.Equal(foot[36:], Magic) {
		return nil, r.errorf(size-4, "bad magic %q", foot[36:])
	}
	metaStart := binary.LittleEndian.Uint64(foot[0:])
	cmoStart := binary.LittleEndian.Uint64(foot[8:])
	gboStart := binary.LittleEndian.Uint64(foot[16:])
	numGB := uint64(binary.LittleEndian.Uint32(foot[24:]))
	numCols := uint64(binary.LittleEndian.Uint32(foot[28:]))
	major, minor := binary.LittleEndian.Uint16(foot[32:]), binary.LittleEndian.Uint16(foot[34:])
	switch {
	case major == 0 && minor == 3, major == 2 && minor == 0:
	case major == 2:
		return nil, fmt.Errorf("%w: %s: data file format 2.%d (only 2.0 is implemented)", encoding.ErrUnsupported, path, minor)
	default:
		return nil, fmt.Errorf("%w: %s: data file version (%d,%d) is not Lance file format 2.0", encoding.ErrUnsupported, path, major, minor)
	}
	end := size - footerLen
	if numGB == 0 {
		return nil, r.errorf(size-footerLen, "no global buffers (the schema must be global buffer 0)")
	}
	if cmoStart > end || numCols > (end-cmoStart)/16 || gboStart > end || numGB > (end-gboStart)/16 {
		return nil, r.errorf(size-footerLen, "offset tables (cmo %d x %d, gbo %d x %d) beyond the footer", cmoStart, numCols, gboStart, numGB)
	}
	// Read from the start of the metadata (global buffer 0 precedes the column
	// metadata) to the footer in one go.
	gbo := make([]byte, 16)
	if _, err := ra.ReadAt(gbo, int64(gboStart)); err != nil {
		return nil, r.wrap(gboStart, err)
	}
	gb0Pos, gb0Len := binary.LittleEndian.Uint64(gbo), binary.LittleEndian.Uint64(gbo[8:])
	tailStart := min(gb0Pos, metaStart, cmoStart)
	if gb0Pos > end || gb0Len > end-gb0Pos || metaStart > end {
		return nil, r.errorf(gboStart, "global buffer 0 (%d, %d) beyond the footer", gb0Pos, gb0Len)
	}
	tail := make([]byte, end-tailStart)
	if _, err := ra.ReadAt(tail, int64(tailStart)); err != nil {
		return nil, r.wrap(tailStart, err)
	}
	at := func(pos, n uint64) []byte { return tail[pos-tailStart : pos-tailStart+n] }
	if err := r.parseDescriptor(at(gb0Pos, gb0Len)); err != nil {
		return nil, r.wrap(gb0Pos, err)
	}
	cmo := at(cmoStart, 16*numCols)
	r.columns = make([]columnMeta, numCols)
	for c := range r.columns {
		pos, n := binary.LittleEndian.Uint64(cmo[16*c:]), binary.LittleEndian.Uint64(cmo[16*c+8:])
		if pos < tailStart || pos > end || n > end-pos {
			return nil, r.errorf(cmoStart+16*uint64(c), "column %d metadata (%d, %d) outside the metadata region", c, pos, n)
		}
		if err := r.parseColumn(&r.columns[c], at(pos, n)); err != nil {
			return nil, r.wrap(pos, fmt.Errorf("column %d: %w", c, err))
		}
	}
	return r, nil
}

// parseDescriptor decodes the FileDescriptor: the file's schema and rows.
func (r *Reader) parseDescriptor(b []byte) error {
	return pb.Walk(b, func(p pb.Entry) error {
		switch p.Num {
		case pb.FileDescriptorSchema:
			body, err := p.Bytes()
			if err != nil {
				return err
			}
			return pb.Walk(body, func(q pb.Entry) error {
				if q.Num != pb.SchemaFields {
					return nil
				}
				fb, err := q.Bytes()
				if err != nil {
					return err
				}
				f, err := encoding.DecodeField(fb)
				if err != nil {
					return err
				}
				r.fields = append(r.fields, f)
				return nil
			})
		case pb.FileDescriptorLength:
			var err error
			r.rows, err = p.Uint()
			return err
		}
		return nil
	})
}

// columnEncodingValues is ColumnEncoding{values: Empty}, the only column
// encoding of plain 2.0 columns; zone maps and blobs change how pages read.
var columnEncodingValues = pb.AppendMessage(nil, pb.ColumnEncodingValues, nil)

func (r *Reader) parseColumn(c *columnMeta, b []byte) error {
	c.starts = []uint64{0}
	err := pb.Walk(b, func(p pb.Entry) error {
		switch p.Num {
		case pb.ColumnEncoding:
			body, err := p.Bytes()
			if err != nil {
				return err
			}
			url, val, err := decodeDirectEncoding(body)
			if err != nil {
				return err
			}
			if url != pb.TypeURLColumnEncoding || !bytes.Equal(val, columnEncodingValues) {
				return fmt.Errorf("%w: column encoding %s %x", encoding.ErrUnsupported, url, val)
			}
		case pb.ColumnPages:
			body, err := p.Bytes()
			if err != nil {
				return err
			}
			return r.addPage(c, body)
		case pb.ColumnBufferOffsets, pb.ColumnBufferSizes:
			// Column buffers: Lance's plain 2.0 columns have none, and no
			// encoding we decode refers to them.
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.itemStarts != nil && len(c.itemStarts) != len(c.starts) {
		return fmt.Errorf("column mixes list and non-list pages")
	}
	return nil
}

// addPage parses one Page message of a column and indexes its slots (and,
// for list pages, its items).
func (r *Reader) addPage(c *columnMeta, b []byte) error {
	pg, err := parsePage(b)
	if err != nil {
		return fmt.Errorf("page %d: %w", len(c.pages), err)
	}
	for i := range pg.offs {
		if pg.offs[i] > r.size || pg.sizes[i] > r.size-pg.offs[i] {
			return fmt.Errorf("page %d buffer %d (%d, %d) beyond the file", len(c.pages), i, pg.offs[i], pg.sizes[i])
		}
	}
	last := c.starts[len(c.starts)-1]
	if pg.length > math.MaxInt32 || last+pg.length < last {
		return fmt.Errorf("page %d length %d too large", len(c.pages), pg.length)
	}
	c.pages = append(c.pages, pg)
	c.starts = append(c.starts, last+pg.length)
	if pg.enc.Kind == encoding.EncList {
		if c.itemStarts == nil {
			c.itemStarts = []uint64{0}
		}
		li := c.itemStarts[len(c.itemStarts)-1]
		if li+pg.enc.NumItems < li {
			return fmt.Errorf("page %d num_items overflows", len(c.pages)-1)
		}
		c.itemStarts = append(c.itemStarts, li+pg.enc.NumItems)
	}
	return nil
}

// pos is the file offset of a page's first buffer (0 for a page without
// buffers), for error messages.
func (p *pageMeta) pos() uint64 {
	if len(p.offs) == 0 {
		return 0
	}
	return p.offs[0]
}

func parsePage(b []byte) (pageMeta, error) {
	var pg pageMeta
	var encBytes []byte
	err := pb.Walk(b, func(p pb.Entry) error {
		var err error
		switch p.Num {
		case pb.PageBufferOffsets:
			pg.offs, err = p.Varints(pg.offs)
		case pb.PageBufferSizes:
			pg.sizes, err = p.Varints(pg.sizes)
		case pb.PageLength:
			pg.length, err = p.Uint()
		case pb.PageEncoding:
			var body []byte
			if body, err = p.Bytes(); err != nil {
				return err
			}
			var url string
			url, encBytes, err = decodeDirectEncoding(body)
			if err == nil && url != pb.TypeURLArrayEncoding {
				if url == pb.TypeURLPageLayout21 {
					return fmt.Errorf("%w: 2.1 page layout in a 2.0 file", encoding.ErrUnsupported)
				}
				return fmt.Errorf("%w: page encoding %q", encoding.ErrUnsupported, url)
			}
		}
		return err
	})
	if err != nil {
		return pg, err
	}
	if len(pg.offs) != len(pg.sizes) {
		return pg, fmt.Errorf("%d buffer offsets but %d sizes", len(pg.offs), len(pg.sizes))
	}
	if encBytes == nil {
		return pg, fmt.Errorf("page without encoding")
	}
	pg.enc, err = encoding.DecodeArrayEncoding(encBytes, 0)
	return pg, err
}

// decodeDirectEncoding unwraps Encoding{direct{Any}} into the Any's type URL
// and value. Indirect encodings are unimplemented in Lance itself.
func decodeDirectEncoding(b []byte) (url string, val []byte, err error) {
	found := false
	err = pb.Walk(b, func(p pb.Entry) error {
		switch p.Num {
		case pb.EncodingIndirect, pb.EncodingNone:
			return fmt.Errorf("%w: indirect or empty encoding", encoding.ErrUnsupported)
		case pb.EncodingDirect:
			found = true
			direct, err := p.Bytes()
			if err != nil {
				return err
			}
			return pb.Walk(direct, func(q pb.Entry) error {
				if q.Num != pb.DirectEncodingEncoding {
					return nil
				}
				anyMsg, err := q.Bytes()
				if err != nil {
					return err
				}
				url, val, err = decodeAny(anyMsg)
				return err
			})
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("%w: encoding is not direct", pb.ErrMalformed)
	}
	if val == nil {
		val = []byte{}
	}
	return url, val, err
}

// decodeAny decodes a google.protobuf.Any, every field of which must be
// length-delimited.
func decodeAny(b []byte) (url string, val []byte, err error) {
	err = pb.Walk(b, func(a pb.Entry) error {
		v, err := a.Bytes()
		switch a.Num {
		case pb.AnyTypeURL:
			url = string(v)
		case pb.AnyValue:
			val = v
		}
		return err
	})
	return url, val, err
}

// readBuffers reads every buffer of a page.
func (r *Reader) readBuffers(ra io.ReaderAt, p *pageMeta) ([][]byte, error) {
	bufs := make([][]byte, len(p.offs))
	for i := range p.offs {
		bufs[i] = make([]byte, p.sizes[i])
		if _, err := ra.ReadAt(bufs[i], int64(p.offs[i])); err != nil {
			return nil, r.wrap(p.offs[i], err)
		}
	}
	return bufs, nil
}
