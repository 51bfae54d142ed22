package table

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"

	"github.com/persisting/persisting/core/lance/encoding"
)

// Lance's ARROW_ARRAY deletion files are Arrow IPC files with one batch of
// one non-null 32-bit integer column, "row_id" (§5 DeletionFile). Reading
// them needs only a sliver of the IPC format, so it is decoded here with a
// minimal bounds-checked flatbuffer reader rather than pulling in arrow's ipc
// package and its flatbuffers dependency.

var arrowMagic = []byte("ARROW1")

// fbTable is a flatbuffer table at pos in buf.
type fbTable struct {
	buf []byte
	pos int
	vt  int // vtable position
	vtn int // vtable length in bytes
}

func fbErr(format string, args ...any) error {
	return fmt.Errorf("arrow ipc: "+format, args...)
}

func (t fbTable) in(pos, n int) bool { return pos >= 0 && n >= 0 && pos <= len(t.buf)-n }

// fbTableAt follows the uoffset stored at ref to a table.
func fbTableAt(buf []byte, ref int) (fbTable, error) {
	t := fbTable{buf: buf}
	if !t.in(ref, 4) {
		return t, fbErr("offset at %d out of range", ref)
	}
	t.pos = ref + int(binary.LittleEndian.Uint32(buf[ref:]))
	if !t.in(t.pos, 4) {
		return t, fbErr("table at %d out of range", t.pos)
	}
	t.vt = t.pos - int(int32(binary.LittleEndian.Uint32(buf[t.pos:])))
	if !t.in(t.vt, 4) {
		return t, fbErr("vtable at %d out of range", t.vt)
	}
	t.vtn = int(binary.LittleEndian.Uint16(buf[t.vt:]))
	if t.vtn < 4 || !t.in(t.vt, t.vtn) {
		return t, fbErr("vtable at %d of %d bytes out of range", t.vt, t.vtn)
	}
	return t, nil
}

// field returns the position of field i and whether it is present.
func (t fbTable) field(i, size int) (int, bool, error) {
	at := 4 + 2*i
	if at+2 > t.vtn {
		return 0, false, nil
	}
	off := int(binary.LittleEndian.Uint16(t.buf[t.vt+at:]))
	if off == 0 {
		return 0, false, nil
	}
	if !t.in(t.pos+off, size) {
		return 0, false, fbErr("field %d out of range", i)
	}
	return t.pos + off, true, nil
}

func (t fbTable) uint(i, size int) (uint64, error) {
	p, ok, err := t.field(i, size)
	if err != nil || !ok {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(t.buf[p]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(t.buf[p:])), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(t.buf[p:])), nil
	}
	return binary.LittleEndian.Uint64(t.buf[p:]), nil
}

func (t fbTable) table(i int) (fbTable, bool, error) {
	p, ok, err := t.field(i, 4)
	if err != nil || !ok {
		return fbTable{}, false, err
	}
	sub, err := fbTableAt(t.buf, p)
	return sub, err == nil, err
}

// vector returns the start and length of a vector field of elem-byte items.
func (t fbTable) vector(i, elem int) (int, int, error) {
	p, ok, err := t.field(i, 4)
	if err != nil || !ok {
		return 0, 0, err
	}
	v := p + int(binary.LittleEndian.Uint32(t.buf[p:]))
	if !t.in(v, 4) {
		return 0, 0, fbErr("vector at %d out of range", v)
	}
	n := int(binary.LittleEndian.Uint32(t.buf[v:]))
	if n < 0 || n > (len(t.buf)-v-4)/max(elem, 1) {
		return 0, 0, fbErr("vector of %d items at %d out of range", n, v)
	}
	return v + 4, n, nil
}

// readArrowRowIDs decodes the row offsets of an ARROW_ARRAY deletion file.
func readArrowRowIDs(data []byte) ([]uint32, error) {
	if len(data) < 2*len(arrowMagic)+4 || !bytes.HasPrefix(data, arrowMagic) || !bytes.HasSuffix(data, arrowMagic) {
		return nil, fbErr("not an Arrow IPC file")
	}
	flen := int(int32(binary.LittleEndian.Uint32(data[len(data)-10:])))
	fstart := len(data) - 10 - flen
	if flen <= 0 || fstart < len(arrowMagic) {
		return nil, fbErr("footer length %d out of range", flen)
	}
	footer, err := fbTableAt(data[fstart:len(data)-10], 0)
	if err != nil {
		return nil, err
	}
	if err := checkRowIDSchema(footer); err != nil {
		return nil, err
	}
	// recordBatches: vector of Block{offset i64, metaDataLength i32, pad, bodyLength i64}.
	bstart, nb, err := footer.vector(3, 24)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for k := 0; k < nb; k++ {
		blk := footer.buf[bstart+24*k:]
		off := int64(binary.LittleEndian.Uint64(blk))
		metaLen := int64(int32(binary.LittleEndian.Uint32(blk[8:])))
		if off < 0 || metaLen < 8 || off > int64(len(data))-metaLen {
			return nil, fbErr("record batch block %d (%d, %d) out of range", k, off, metaLen)
		}
		ids, err := readRowIDBatch(data, int(off), int(metaLen))
		if err != nil {
			return nil, fmt.Errorf("record batch %d: %w", k, err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// checkRowIDSchema insists on one 32-bit integer column.
func checkRowIDSchema(footer fbTable) error {
	schema, ok, err := footer.table(1)
	if err != nil || !ok {
		return fbErr("footer without schema")
	}
	fstart, nf, err := schema.vector(1, 4)
	if err != nil {
		return err
	}
	if nf != 1 {
		return fbErr("deletion file has %d columns, want 1", nf)
	}
	fld, err := fbTableAt(schema.buf, fstart)
	if err != nil {
		return err
	}
	typeType, err := fld.uint(2, 1)
	if err != nil {
		return err
	}
	const typeInt = 2
	if typeType != typeInt {
		return fbErr("row_id column has type %d, want Int", typeType)
	}
	it, ok, err := fld.table(3)
	if err != nil || !ok {
		return fbErr("row_id column without Int type")
	}
	bits, err := it.uint(0, 4)
	if err != nil || bits != 32 {
		return fbErr("row_id column of %d bits, want 32", bits)
	}
	return nil
}

func readRowIDBatch(data []byte, off, metaLen int) ([]uint32, error) {
	fbAt := off + 4
	if binary.LittleEndian.Uint32(data[off:]) == 0xFFFFFFFF { // continuation marker
		fbAt = off + 8
	}
	msg, err := fbTableAt(data[:off+metaLen], fbAt)
	if err != nil {
		return nil, err
	}
	headerType, err := msg.uint(1, 1)
	if err != nil {
		return nil, err
	}
	const headerRecordBatch = 3
	if headerType != headerRecordBatch {
		return nil, fbErr("message of type %d, want RecordBatch", headerType)
	}
	rb, ok, err := msg.table(2)
	if err != nil || !ok {
		return nil, fbErr("message without RecordBatch header")
	}
	// arrow-rs (Lance) may declare body compression; each buffer then starts
	// with an i64 uncompressed length, -1 meaning "stored uncompressed".
	codec := int64(-1)
	if bc, present, err := rb.table(3); err != nil {
		return nil, err
	} else if present {
		c, err := bc.uint(0, 1)
		if err != nil {
			return nil, err
		}
		codec = int64(c)
	}
	length, err := rb.uint(0, 8)
	if err != nil {
		return nil, err
	}
	bstart, nbuf, err := rb.vector(2, 16)
	if err != nil {
		return nil, err
	}
	if nbuf != 2 {
		return nil, fbErr("row_id batch has %d buffers, want 2", nbuf)
	}
	body := int64(off + metaLen)
	vb := rb.buf[bstart+16:]
	vOff, vLen := int64(binary.LittleEndian.Uint64(vb)), int64(binary.LittleEndian.Uint64(vb[8:]))
	if vOff < 0 || vLen < 0 || body+vOff > int64(len(data))-vLen {
		return nil, fbErr("row_id values (%d, %d) out of range", vOff, vLen)
	}
	vals, err := ipcBuffer(data[body+vOff:body+vOff+vLen], codec)
	if err != nil {
		return nil, err
	}
	if length > uint64(len(vals))/4 {
		return nil, fbErr("row_id buffer of %d bytes for %d rows", len(vals), length)
	}
	out := make([]uint32, length)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(vals[4*i:])
	}
	return out, nil
}

// ipcBuffer undoes Arrow IPC buffer compression (codec 0 = LZ4 frame,
// 1 = zstd; -1 = the batch declares no compression).
func ipcBuffer(b []byte, codec int64) ([]byte, error) {
	if codec < 0 {
		return b, nil
	}
	if len(b) < 8 {
		return nil, fbErr("compressed buffer of %d bytes", len(b))
	}
	n := int64(binary.LittleEndian.Uint64(b))
	if n == -1 {
		return b[8:], nil
	}
	if n < 0 || n > encoding.MaxDecompressed {
		return nil, fbErr("buffer claims %d uncompressed bytes", n)
	}
	var out []byte
	var err error
	switch codec {
	case 0:
		out, err = io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(b[8:])), n+1))
	case 1:
		out, err = encoding.DecompressBuffer(encoding.CompressionZstd, b[8:])
	default:
		return nil, fmt.Errorf("%w: Arrow IPC compression codec %d", encoding.ErrUnsupported, codec)
	}
	if err != nil {
		return nil, fbErr("decompress: %v", err)
	}
	if int64(len(out)) != n {
		return nil, fbErr("buffer decompressed to %d bytes, want %d", len(out), n)
	}
	return out, nil
}
