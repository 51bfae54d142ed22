package file

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"

	"github.com/apache/arrow-go/v18/arrow"

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
//
// Leaf pages arrive as PageFuncs and are encoded (and compressed) by up to
// GOMAXPROCS goroutines at a time while the calling goroutine writes the
// finished ones in order; at most window pages are in flight, which bounds
// the memory held by encoded pages not yet written.
type fileWriter struct {
	path  string
	w     *bufio.Writer
	pos   uint64
	pages [][]byte // per column: concatenated Page messages
	rows  []uint64 // per column: slots written so far (page priority)

	queue  []*pendingPage // pages added but not yet written, in file order
	window int
	cpu    chan struct{} // one token per encoding goroutine allowed to run
}

// pendingPage is a page being encoded; done is closed when p and err are set.
type pendingPage struct {
	col  int
	done chan struct{}
	p    encoding.Page
	err  error
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// writebackEvery is how many bytes the writer hands to the file between two
// writeback hints (see writebackWriter).
const writebackEvery = 1 << 20

// writebackWriter passes writes through and, every writebackEvery bytes,
// asks the file to start writing them to disk (sync_file_range), so that
// the disk works while later pages are still being encoded and the final
// fsync has only the tail left to wait for.
type writebackWriter struct {
	w              io.Writer
	wb             interface{ StartWriteback(off, n int64) }
	written, start int64
}

func (x *writebackWriter) Write(p []byte) (int, error) {
	n, err := x.w.Write(p)
	x.written += int64(n)
	if x.written-x.start >= writebackEvery {
		x.wb.StartWriteback(x.start, x.written-x.start)
		x.start = x.written
	}
	return n, err
}

func newFileWriter(w io.Writer, path string, columns int) *fileWriter {
	if wb, ok := w.(interface{ StartWriteback(off, n int64) }); ok {
		w = &writebackWriter{w: w, wb: wb}
	}
	procs := max(1, runtime.GOMAXPROCS(0))
	return &fileWriter{path: path, w: bufio.NewWriterSize(w, 64<<10),
		pages: make([][]byte, columns), rows: make([]uint64, columns),
		window: 2*procs + 2, cpu: make(chan struct{}, procs)}
}

// AddPageFunc queues a page to encode concurrently, writing the pages ahead
// of it once the window is full.
func (w *fileWriter) AddPageFunc(col int, f encoding.PageFunc) error {
	pp := &pendingPage{col: col, done: make(chan struct{})}
	w.queue = append(w.queue, pp)
	go func() {
		w.cpu <- struct{}{}
		defer func() { <-w.cpu }()
		pp.p, pp.err = f()
		close(pp.done)
	}()
	return w.drain(w.window)
}

// AddPage queues an already encoded page.
func (w *fileWriter) AddPage(col int, p encoding.Page) error {
	w.queue = append(w.queue, &pendingPage{col: col, done: closedChan, p: p})
	return w.drain(w.window)
}

// drain writes queued pages in order until at most keep are left.
func (w *fileWriter) drain(keep int) error {
	for len(w.queue) > keep {
		pp := w.queue[0]
		<-pp.done
		w.queue[0] = nil
		w.queue = w.queue[1:]
		if pp.err != nil {
			return pp.err
		}
		if err := w.writePage(pp.col, pp.p); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for the pages still being encoded (after an error, so that no
// goroutine outlives Write and the arrays it reads).
func (w *fileWriter) wait() {
	for _, pp := range w.queue {
		<-pp.done
	}
	w.queue = nil
}

func (w *fileWriter) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("lance: %s at offset %d: %w", w.path, w.pos, err)
	}
	w.pos += uint64(len(b))
	return nil
}

// writePage writes the buffers of a page and records its metadata.
func (w *fileWriter) writePage(col int, p encoding.Page) error {
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
	VarWidthOnly bool // see encoding.Encoder
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
	fw := newFileWriter(w, path, len(all))
	defer fw.wait()
	enc := &encoding.Encoder{Sink: fw, Compression: o.Compression, MaxPageBytes: o.MaxPageBytes, VarWidthOnly: o.VarWidthOnly}
	col := 0
	for i, t := range top {
		if err := enc.EncodeField(t, &col, cols[i]); err != nil {
			return 0, err
		}
	}
	if err := fw.drain(0); err != nil {
		return 0, err
	}
	if err := fw.finish(fileDescriptor(all, uint64(rows))); err != nil {
		return 0, err
	}
	return fw.pos, nil
}
