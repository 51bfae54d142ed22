package file

import (
	"bufio"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"io"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/pb"
)

// The 2.0 data-file container (§8):
//
//	page buffers, each padded to 64 bytes
//	global buffer 0 = FileDescriptor           <- must precede the column metadata
//	column metadata 0..C-1
//	CMO table: C x (u64 position, u64 size)
//	GBO table: G x (u64 position, u64 size)
//	footer: u64 column_meta_start, u64 cmo_table_start, u64 gbo_table_start,
//	        u32 num_global_buffers, u32 num_columns, u16 major=0, u16 minor=3, "LANC"

const (
	footerLen = 40
	pageAlign = 64
	// A 2.0 file says (0,3) in its footer and (2,0) in the manifest.
	footerMajor20 = 0
	footerMinor20 = 3
)

var Magic = []byte("LANC")

// padding is what Lance pads page buffers with ('H'); any content is valid.
var padding = []byte("HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH")

// fileWriter streams pages to a data file and keeps each column's page
// metadata until the end, where it writes the metadata sections and footer.
type fileWriter struct {
	path  string
	w     *bufio.Writer
	pos   uint64
	pages [][]byte // per column: concatenated Page messages
	rows  []uint64 // per column: slots written so far (page priority)
}

func (w *fileWriter) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("lance: %s at offset %d: %w", w.path, w.pos, err)
	}
	w.pos += uint64(len(b))
	return nil
}

func (w *fileWriter) AddPage(col int, p encoding.Page) error {
	offs := make([]uint64, len(p.Bufs))
	sizes := make([]uint64, len(p.Bufs))
	for i, b := range p.Bufs {
		offs[i], sizes[i] = w.pos, uint64(len(b))
		if err := w.write(b); err != nil {
			return err
		}
		if err := w.write(padding[:(pageAlign-len(b)%pageAlign)%pageAlign]); err != nil {
			return err
		}
	}
	var pg []byte
	pg = pb.AppendPacked(pg, pb.PageBufferOffsets, offs)
	pg = pb.AppendPacked(pg, pb.PageBufferSizes, sizes)
	pg = pb.AppendUint(pg, pb.PageLength, p.Length)
	pg = pb.AppendMessage(pg, pb.PageEncoding, directEncoding(pb.TypeURLArrayEncoding, p.Enc))
	// priority is an I/O scheduling hint; the first row of the page is what
	// the reference writer puts there and Lance accepts it (§8).
	pg = pb.AppendUint(pg, pb.PagePriority, w.rows[col])
	w.rows[col] += p.Length
	w.pages[col] = pb.AppendMessage(w.pages[col], pb.ColumnPages, pg)
	return nil
}

// directEncoding builds Encoding{direct: DirectEncoding{encoding: Any}}. The
// reader leaves `indirect` unimplemented, so direct is the only choice.
func directEncoding(typeURL string, value []byte) []byte {
	return pb.AppendMessage(nil, pb.EncodingDirect, pb.AppendBytes(nil, pb.DirectEncodingEncoding, pb.Any(typeURL, value)))
}

// finish writes FileDescriptor, column metadata, offset tables and footer.
func (w *fileWriter) finish(fd []byte) error {
	gb0 := w.pos
	if err := w.write(fd); err != nil {
		return err
	}
	colEnc := pb.AppendMessage(nil, pb.ColumnEncoding, directEncoding(pb.TypeURLColumnEncoding, columnEncodingValues))
	metaStart := w.pos
	cmo := make([]byte, 0, 16*len(w.pages))
	for _, pages := range w.pages {
		cm := append(append([]byte(nil), colEnc...), pages...)
		cmo = binary.LittleEndian.AppendUint64(cmo, w.pos)
		cmo = binary.LittleEndian.AppendUint64(cmo, uint64(len(cm)))
		if err := w.write(cm); err != nil {
			return err
		}
	}
	cmoStart := w.pos
	if err := w.write(cmo); err != nil {
		return err
	}
	gboStart := w.pos
	var tail []byte
	tail = binary.LittleEndian.AppendUint64(tail, gb0)
	tail = binary.LittleEndian.AppendUint64(tail, uint64(len(fd)))
	tail = binary.LittleEndian.AppendUint64(tail, metaStart)
	tail = binary.LittleEndian.AppendUint64(tail, cmoStart)
	tail = binary.LittleEndian.AppendUint64(tail, gboStart)
	tail = binary.LittleEndian.AppendUint32(tail, 1)
	tail = binary.LittleEndian.AppendUint32(tail, uint32(len(w.pages)))
	tail = binary.LittleEndian.AppendUint16(tail, footerMajor20)
	tail = binary.LittleEndian.AppendUint16(tail, footerMinor20)
	tail = append(tail, Magic...)
	if err := w.write(tail); err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("lance: %s at offset %d: %w", w.path, w.pos, err)
	}
	return nil
}

// fileDescriptor encodes lance.file.FileDescriptor{schema{fields}, length}.
func fileDescriptor(fields []*encoding.Field, rows uint64) []byte {
	var fs []byte
	for _, f := range fields {
		fs = pb.AppendMessage(fs, pb.SchemaFields, f.Encode())
	}
	return pb.AppendUint(pb.AppendMessage(nil, pb.FileDescriptorSchema, fs), pb.FileDescriptorLength, rows)
}

// WriteOptions are the encoder settings of one data file.
type WriteOptions struct {
	Compression  string
	MaxPageBytes int
}

// Write writes cols (one Arrow array per top-level field in top, all of
// length rows) to w as a Lance 2.0 data file and returns its size; path
// names the file in errors. Making the file durable, and removing it on
// error, is the caller's business.
func Write(w io.Writer, path string, top []*encoding.Field, cols []arrow.Array, rows int, o WriteOptions) (size uint64, err error) {
	var all []*encoding.Field
	for _, t := range top {
		all = append(all, encoding.Subtree(t)...)
	}
	fw := &fileWriter{path: path, w: bufio.NewWriterSize(w, 1<<20),
		pages: make([][]byte, len(all)), rows: make([]uint64, len(all))}
	enc := &encoding.Encoder{Sink: fw, Compression: o.Compression, MaxPageBytes: o.MaxPageBytes}
	col := 0
	for i, t := range top {
		if err := enc.EncodeField(t, &col, cols[i]); err != nil {
			return 0, err
		}
	}
	if err := fw.finish(fileDescriptor(all, uint64(rows))); err != nil {
		return 0, err
	}
	return fw.pos, nil
}
