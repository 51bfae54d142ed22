package encoding

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// This file turns Arrow arrays into 2.0 pages (§9). Every field gets its own
// column in pre-order: a struct gets a header column (one page, no buffers)
// and then its children's columns; a list gets an offsets column and then its
// item's columns; a fixed-size list is a single column.

// metaCompression is the Lance field metadata key naming a field's buffer
// compression. Lance's own writers (compaction) honour it too.
const metaCompression = "lance-encoding:compression"

// Page is one encoded page of one column.
type Page struct {
	Enc    []byte // ArrayEncoding message
	Bufs   [][]byte
	Length uint64
}

// span is a half-open range of slots of an array.
type span struct{ Start, End int }

// PageSink receives the pages of an Encoder, column by column (the file
// layer writes them into a data file).
type PageSink interface {
	AddPage(col int, p Page) error
}

// PageFunc computes one page. An AsyncPageSink may run it on another
// goroutine, concurrently with other PageFuncs: it only reads its arrays.
type PageFunc func() (Page, error)

// AsyncPageSink is a PageSink that also takes pages still to be computed;
// it must place them in the order it receives them, as if AddPage had been
// called with the result at that point.
type AsyncPageSink interface {
	PageSink
	AddPageFunc(col int, f PageFunc) error
}

// Encoder turns Arrow arrays into pages: Compression is the default buffer
// compression (a field's metadata may name another), MaxPageBytes the page
// size it aims at. VarWidthOnly compresses only the data buffers of strings
// and binary, as Lance's own writer does: fixed-width values and vectors stay
// plain, which writes several times faster (they are most of a table's bytes
// and, integers especially, the slowest to compress) and larger.
type Encoder struct {
	Sink         PageSink
	Compression  string
	MaxPageBytes int
	VarWidthOnly bool
}

// EncodeField writes the columns of f (starting at column *col, which it
// advances past them) for arr, sending each page to e.Sink.
func (e *Encoder) EncodeField(f *Field, col *int, arr arrow.Array) error {
	return e.encodeField(f, col, arr, nil)
}

// encodeField is EncodeField with forced page boundaries: spans, when
// non-nil, are the pages' slot ranges; list items use the spans of their
// offsets pages so that every items page belongs to one offsets page.
func (e *Encoder) encodeField(f *Field, col *int, arr arrow.Array, spans []span) error {
	c := *col
	*col++
	switch a := arr.(type) {
	case *array.Struct:
		// The 2.0 reader supports exactly one page per struct header column,
		// covering every slot of the column. Children page themselves unless
		// the struct sits under a list (forced spans); there, even zero items
		// get a page, as Lance writes.
		n := arr.Len()
		if spans != nil {
			n = 0
			for _, s := range spans {
				n += s.End - s.Start
			}
		}
		if n > 0 || spans != nil {
			if err := e.Sink.AddPage(c, Page{Enc: encStructBytes(), Length: uint64(n)}); err != nil {
				return err
			}
		}
		for i, child := range f.Children {
			if err := e.encodeField(child, col, pushDownNulls(a, a.Field(i)), spans); err != nil {
				return err
			}
		}
		return nil
	case array.ListLike:
		if _, fsl := arr.(*array.FixedSizeList); !fsl {
			if spans == nil {
				spans = e.split(arr)
			}
			return e.encodeList(f, c, col, a, spans)
		}
	}
	if spans == nil {
		spans = e.split(arr)
	}
	async, _ := e.Sink.(AsyncPageSink)
	for _, s := range spans {
		page := func() (Page, error) {
			p, err := e.leafPage(f, arr, s)
			if err != nil {
				return p, fmt.Errorf("lance: column %q: %w", f.Name, err)
			}
			return p, nil
		}
		if async != nil {
			if err := async.AddPageFunc(c, page); err != nil {
				return err
			}
			continue
		}
		p, err := page()
		if err != nil {
			return err
		}
		if err := e.Sink.AddPage(c, p); err != nil {
			return err
		}
	}
	return nil
}

func (e *Encoder) encodeList(f *Field, c int, col *int, a array.ListLike, spans []span) error {
	d := a.Data()
	large := isLargeOffsets(a.DataType())
	var itemSpans []span
	for _, s := range spans {
		var base int64
		var numItems uint64
		if s.End > s.Start { // an empty span may come with empty buffers
			base = offsetAt(d, large, s.Start)
			numItems = uint64(offsetAt(d, large, s.End) - base)
		}
		// null_offset_adjustment = num_items + 1: never a valid end offset.
		adj := numItems + 1
		n := s.End - s.Start
		ends := make([]byte, 8*n)
		for r := s.Start; r < s.End; r++ {
			end := uint64(offsetAt(d, large, r+1) - base)
			if a.IsNull(r) {
				end += adj
			}
			binary.LittleEndian.PutUint64(ends[8*(r-s.Start):], end)
		}
		p := Page{
			Enc:    encListBytes(encNoNulls(encFlatBytes(64, 0, "")), adj, numItems),
			Bufs:   [][]byte{ends},
			Length: uint64(n),
		}
		if err := e.Sink.AddPage(c, p); err != nil {
			return err
		}
		if numItems > 0 {
			itemSpans = append(itemSpans, span{int(base), int(base) + int(numItems)})
		}
	}
	values := a.ListValues()
	if itemSpans == nil && len(spans) > 0 {
		// No items at all: Lance still writes one empty page per item column
		// (and its reader indexes the first page of every column).
		itemSpans = []span{{0, 0}}
	}
	return e.encodeField(f.Children[0], col, values, itemSpans)
}

// leafPage encodes slots [s.start, s.end) of a single-column array.
func (e *Encoder) leafPage(f *Field, arr arrow.Array, s span) (Page, error) {
	n := s.End - s.Start
	p := Page{Length: uint64(n)}
	t := arr.DataType()
	if t.ID() == arrow.NULL {
		p.Enc = encAllNulls()
		return p, nil
	}
	validity, nulls := validitySlice(arr, s)
	comp := e.fieldCompression(f)
	switch {
	case isBinaryLike(t):
		return e.binaryPage(arr, s, comp)
	case nulls == n:
		p.Enc = encAllNulls()
		return p, nil
	}
	var valuesEnc []byte
	var valueBufs [][]byte
	if e.VarWidthOnly {
		comp = ""
	}
	next := 0
	if nulls > 0 {
		next = 1
	}
	switch t := t.(type) {
	case *arrow.FixedSizeListType:
		itemsEnc, bufs, err := fslItems(arr.(*array.FixedSizeList), s, t, next, comp)
		if err != nil {
			return p, err
		}
		valuesEnc, valueBufs = encFSLBytes(int(t.Len()), itemsEnc), bufs
	default:
		if !isFixedWidth(t) {
			return p, fmt.Errorf("%w: arrow type %s", ErrUnsupported, t)
		}
		raw := fixedValues(arr, s)
		enc, buf, err := flatBuffer(raw, uint64(bitWidth(t)), next, comp)
		if err != nil {
			return p, err
		}
		valuesEnc, valueBufs = enc, [][]byte{buf}
	}
	if nulls == 0 {
		p.Enc = encNoNulls(valuesEnc)
		p.Bufs = valueBufs
	} else {
		p.Enc = encSomeNulls(encFlatBytes(1, 0, ""), valuesEnc)
		p.Bufs = append([][]byte{validity}, valueBufs...)
	}
	return p, nil
}

// flatBuffer builds a flat encoding for one buffer, compressing it when the
// scheme is set and the values are byte aligned (never 1-bit buffers: Lance's
// bitmap decoder ignores compression).
func flatBuffer(raw []byte, bits uint64, bufIndex int, comp string) ([]byte, []byte, error) {
	if comp != "" && bits%8 == 0 {
		out, ok, err := compressBuffer(comp, raw)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return encFlatBytes(bits, bufIndex, comp), out, nil
		}
	}
	return encFlatBytes(bits, bufIndex, ""), raw, nil
}

// binaryPage encodes strings/binary: u64 end offsets relative to the page,
// with null rows stored as previous_end + A where A = data bytes + 1.
func (e *Encoder) binaryPage(arr arrow.Array, s span, comp string) (Page, error) {
	d := arr.Data()
	large := isLargeOffsets(arr.DataType())
	var data []byte
	if bufs := d.Buffers(); len(bufs) > 2 && bufs[2] != nil {
		data = bufs[2].Bytes()
	}
	n := s.End - s.Start
	var payload []byte
	ends := make([]byte, 8*n)
	if n == 0 {
		// An empty page (list items of a page without items).
	} else if offs := viewOffsets(d, large); arr.NullN() == 0 {
		payload = data[offs.at(s.Start):offs.at(s.End)]
		offs.putEnds(ends, s.Start, s.End)
	} else {
		// Arrow allows bytes under null slots; Lance must not see them.
		for r := s.Start; r < s.End; r++ {
			if arr.IsValid(r) {
				payload = append(payload, data[offs.at(r):offs.at(r+1)]...)
			}
		}
		adj := uint64(len(payload)) + 1
		var end uint64
		for r := s.Start; r < s.End; r++ {
			v := end
			if arr.IsValid(r) {
				end += uint64(offs.at(r+1) - offs.at(r))
				v = end
			} else {
				v += adj
			}
			binary.LittleEndian.PutUint64(ends[8*(r-s.Start):], v)
		}
	}
	adj := uint64(len(payload)) + 1
	bytesEnc, payload, err := flatBuffer(payload, 8, 1, comp)
	if err != nil {
		return Page{}, err
	}
	return Page{
		Enc:    encBinaryBytes(encNoNulls(encFlatBytes(64, 0, "")), bytesEnc, adj),
		Bufs:   [][]byte{ends, payload},
		Length: uint64(n),
	}, nil
}

// fieldCompression is the field's own lance-encoding:compression metadata if
// set (so that a column keeps the scheme Lance would use for it), else the
// writer option.
func (e *Encoder) fieldCompression(f *Field) string {
	switch string(f.Metadata[metaCompression]) {
	case CompressionZstd:
		return CompressionZstd
	case CompressionLZ4:
		return CompressionLZ4
	case "none":
		return ""
	}
	return e.Compression
}

// split cuts the slots of arr into pages of about maxPageBytes encoded bytes
// (at least one slot per page).
func (e *Encoder) split(arr arrow.Array) []span {
	n := arr.Len()
	out := []span{}
	if n == 0 {
		return out
	}
	t := arr.DataType()
	var cost func(i int) int
	switch {
	case t.ID() == arrow.NULL:
		return append(out, span{0, n})
	case isBinaryLike(t):
		// Rows [a, b) cost cum(b) - cum(a) with cum(i) = 8i + offset(i),
		// which grows with i: each page ends before the first row that does
		// not fit, found by binary search (a page has at least one row).
		offs := viewOffsets(arr.Data(), isLargeOffsets(t))
		cum := func(i int) int64 { return 8*int64(i) + offs.at(i) }
		limit := int64(e.MaxPageBytes)
		for start := 0; start < n; {
			base := cum(start)
			k := sort.Search(n-start-1, func(k int) bool { return cum(start+k+2)-base > limit })
			end := start + 1 + k
			out = append(out, span{start, end})
			start = end
		}
		return out
	case t.ID() == arrow.LIST || t.ID() == arrow.LARGE_LIST:
		offs := viewOffsets(arr.Data(), isLargeOffsets(t))
		values := arr.(array.ListLike).ListValues()
		per := 1
		if values.Len() > 0 {
			per = max(1, approxBytes(values.Data())/values.Len())
		}
		cost = func(i int) int { return 8 + per*int(offs.at(i+1)-offs.at(i)) }
	default:
		bits := 64
		if ft, ok := t.(*arrow.FixedSizeListType); ok && isFixedWidth(ft.Elem()) {
			bits = int(ft.Len()) * bitWidth(ft.Elem())
		} else if isFixedWidth(t) {
			bits = bitWidth(t)
		}
		rows := max(1, e.MaxPageBytes*8/(bits+1))
		for s := 0; s < n; s += rows {
			out = append(out, span{s, min(n, s+rows)})
		}
		return out
	}
	start, acc := 0, 0
	for i := 0; i < n; i++ {
		c := cost(i)
		if i > start && acc+c > e.MaxPageBytes {
			out = append(out, span{start, i})
			start, acc = i, 0
		}
		acc += c
	}
	return append(out, span{start, n})
}
