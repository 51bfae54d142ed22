package verify

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
	lance "github.com/persisting/persisting/core/lance/table"
)

// stillReferenced tells whether a retained version of the dataset still
// uses the data file (a live writer's cleanup may have removed it).
func stillReferenced(dataset, path string) bool {
	mfs, err := lance.Manifests(dataset, lance.Options{})
	if err != nil {
		return true
	}
	for _, mf := range mfs {
		ds, err := lance.OpenVersion(dataset, mf.Version, lance.Options{})
		if err != nil {
			continue
		}
		for _, df := range ds.DataFiles() {
			if df.Path == path {
				return true
			}
		}
	}
	return false
}

func checkData(it Item) (*Result, error) {
	res := &Result{Problems: []Problem{}}
	add := func(off int64, kind, reason string) {
		res.Problems = append(res.Problems, Problem{Bucket: it.Bucket, File: it.Path, Offset: off, Kind: kind, What: "data", Reason: reason})
	}
	f, err := os.Open(it.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if it.Dataset != "" && !stillReferenced(it.Dataset, it.Path) {
				res.Gone = true
				return res, nil
			}
			add(-1, "missing", "a retained version lists this data file, but it does not exist")
			return res, nil
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	res.Bytes = size
	if it.Size > 0 && it.Size != size {
		add(-1, "corrupt", fmt.Sprintf("the manifest gives %d bytes, the file has %d", it.Size, size))
		if size < it.Size {
			return res, nil
		}
	}
	r, err := file.OpenReader(f, uint64(size), it.Path)
	if err != nil {
		add(offsetIn(err), kindOf(err), err.Error())
		return res, nil
	}
	s, err := encoding.BuildSchema(r.Fields())
	if err != nil {
		add(-1, "corrupt", fmt.Sprintf("file schema: %v", err))
		return res, nil
	}
	if len(s.All) != r.NumColumns() {
		add(-1, "corrupt", fmt.Sprintf("%d schema fields but %d columns", len(s.All), r.NumColumns()))
		return res, nil
	}
	for c, fl := range s.All {
		pages := r.Pages(c)
		var total uint64
		for i, pg := range pages {
			total += pg.Length
			res.Pages++
			if err := checkPage(r, f, fl, c, i, pg); err != nil {
				off, length := pageSpan(r, f, c, i)
				add(off, kindOf(err), fmt.Sprintf("column %q (%d) page %d: %v", fl.Name, c, i, err))
				res.Problems[len(res.Problems)-1].Length = length
			}
		}
		if fl.Type.ID() != arrow.STRUCT && total != r.Rows() && len(fl.Children) == 0 && !isListItem(s, fl) {
			add(-1, "corrupt", fmt.Sprintf("column %q (%d) holds %d values, the file %d rows", fl.Name, c, total, r.Rows()))
		}
	}
	return res, nil
}

// pageSpan is the byte range of a page's buffers: the first offset and the
// length up to the end of the last buffer (-1, 0 for a page without any).
// The buffers are read again for their sizes (only for a damaged page).
func pageSpan(r *file.Reader, ra io.ReaderAt, c, i int) (int64, int64) {
	pg := r.Pages(c)[i]
	if len(pg.BufferOffsets) == 0 {
		return -1, 0
	}
	lo, hi := pg.BufferOffsets[0], pg.BufferOffsets[0]
	bufs, _ := r.PageBuffers(ra, c, i)
	for k, o := range pg.BufferOffsets {
		lo = min(lo, o)
		if k < len(bufs) {
			hi = max(hi, o+uint64(len(bufs[k])))
		}
	}
	return int64(lo), int64(hi - lo)
}

// isListItem tells whether fl is (under) the item field of a list: its
// column holds items, not rows.
func isListItem(s *encoding.Schema, fl *encoding.Field) bool {
	for p := fl; p != nil; {
		parent, ok := s.ByID[p.ParentID]
		if !ok || p.ParentID < 0 {
			return false
		}
		switch parent.Type.ID() {
		case arrow.LIST, arrow.LARGE_LIST:
			return true
		}
		p = parent
	}
	return false
}

// checkPage reads and decodes one page: leaf pages to Arrow data that must
// pass full validation (offsets, UTF-8), list pages to their offsets.
func checkPage(r *file.Reader, ra io.ReaderAt, fl *encoding.Field, c, i int, pg file.PageInfo) (err error) {
	defer func() {
		if p := recover(); p != nil { // a decoder that panics on garbage is damage too
			err = fmt.Errorf("decoding panicked: %v", p)
		}
	}()
	bufs, err := r.PageBuffers(ra, c, i)
	if err != nil {
		return err
	}
	switch {
	case pg.Encoding.Kind == encoding.EncList:
		ends, err := encoding.DecodeUints(pg.Encoding.Offsets, pg.Length, bufs)
		if err != nil {
			return fmt.Errorf("list offsets: %w", err)
		}
		adj := pg.Encoding.NullAdj
		prev := uint64(0)
		for k, v := range ends {
			if adj > 0 && v >= adj {
				v -= adj
			}
			if v < prev || v > pg.Encoding.NumItems {
				return fmt.Errorf("list end offset %d of row %d out of order or beyond %d items", v, k, pg.Encoding.NumItems)
			}
			prev = v
		}
		return nil
	case fl.Type.ID() == arrow.STRUCT:
		return nil // a 2.0 struct header column holds nothing to decode
	}
	d, err := encoding.DecodeLeaf(pg.Encoding, fl.Type, pg.Length, bufs)
	if err != nil {
		return err
	}
	a := array.MakeFromData(d)
	d.Release()
	defer a.Release()
	if v, ok := a.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			return fmt.Errorf("invalid values: %w", err)
		}
	}
	return nil
}
