// Package verify checks persisting data read-only: every manifest, every
// page of every data file of every fragment of every retained version, and
// every write-ahead-log frame. It repairs, moves and locks nothing, so it
// runs beside a live writer (files a writer releases meanwhile are reported
// as gone, not as damage).
//
// Work is split into a Plan (the buckets, their manifests, and the list of
// files to read) and one Check per item, so that a caller can show progress
// and stop between files.
package verify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/wal"
)

// DatasetName is the Lance dataset inside a bucket directory; WALDir its log.
const (
	DatasetName = "data.lance"
	WALDir      = "wal"
)

// ErrNotFound is wrapped when a path holds no persisting data.
var ErrNotFound = os.ErrNotExist

// Problem is one piece of damage.
type Problem struct {
	Bucket int    `json:"bucket"`
	File   string `json:"file"`
	Offset int64  `json:"offset"` // byte offset in File, -1 when none applies
	// Length, for a data page, is the span of its buffers from Offset.
	Length int64 `json:"length,omitempty"`
	// Kind: "corrupt", "torn_tail" (a WAL tail the next open cuts),
	// "missing" (a file a retained version needs), "unsupported" (an
	// encoding this reader cannot check: a warning, not damage).
	Kind   string `json:"kind"`
	What   string `json:"what"` // "manifest", "data", "wal"
	Reason string `json:"reason"`
}

// Item is one unit of Check: a data file or a bucket's log directory.
type Item struct {
	Kind    string `json:"kind"` // "data" or "wal"
	Bucket  int    `json:"bucket"`
	Path    string `json:"path"`
	Dataset string `json:"dataset,omitempty"` // data: the dataset holding the file
	Size    int64  `json:"size"`              // bytes to read (manifest size for data files, 0 unknown)
}

// Bucket is one bucket (or bare dataset, Bucket -1) the plan covers.
type Bucket struct {
	Bucket    int    `json:"bucket"`
	Dir       string `json:"dir"`
	Dataset   string `json:"dataset,omitempty"` // "" when nothing was flushed yet
	WAL       string `json:"wal,omitempty"`     // "" when there is no log directory
	Versions  int    `json:"versions"`
	Manifests int64  `json:"manifest_bytes"`
}

// Plan is what Check will read.
type Plan struct {
	Path     string    `json:"path"`
	Buckets  []Bucket  `json:"buckets"`
	Items    []Item    `json:"items"`
	Problems []Problem `json:"problems"` // found while reading the manifests
}

// Result is what one Check found.
type Result struct {
	Problems []Problem `json:"problems"`
	Pages    int       `json:"pages"`
	Frames   int       `json:"frames"`
	Rows     uint64    `json:"rows"`
	Bytes    int64     `json:"bytes"`
	Gone     bool      `json:"gone,omitempty"` // released by a live writer meanwhile
	// WAL is the log's report (wal items).
	WAL *wal.VerifyReport `json:"wal,omitempty"`
}

func isDataset(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "_versions"))
	return err == nil && st.IsDir()
}

func bucketOf(dir string) int {
	name := filepath.Base(filepath.Clean(dir))
	if s, ok := strings.CutPrefix(name, "bucket_"); ok {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

func isBucketDir(dir string) bool {
	for _, n := range []string{DatasetName, WALDir, "LOCK"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// Discover resolves path to buckets: a Lance dataset, a bucket directory
// (data.lance, wal/, LOCK or a bucket_<id> name), or a storage path holding
// bucket_<id> directories. Nothing there wraps ErrNotFound.
func Discover(path string) ([]Bucket, error) {
	path = filepath.Clean(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("persisting: %s: %w", path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("persisting: %s is not a directory: %w", path, ErrNotFound)
	}
	one := func(dir string, b int) Bucket {
		out := Bucket{Bucket: b, Dir: dir}
		if isDataset(filepath.Join(dir, DatasetName)) {
			out.Dataset = filepath.Join(dir, DatasetName)
		}
		if s, err := os.Stat(filepath.Join(dir, WALDir)); err == nil && s.IsDir() {
			out.WAL = filepath.Join(dir, WALDir)
		}
		return out
	}
	if isDataset(path) {
		if filepath.Base(path) == DatasetName {
			return []Bucket{one(filepath.Dir(path), bucketOf(filepath.Dir(path)))}, nil
		}
		return []Bucket{{Bucket: -1, Dir: path, Dataset: path}}, nil
	}
	if isBucketDir(path) || bucketOf(path) >= 0 {
		return []Bucket{one(path, bucketOf(path))}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("persisting: %s: %w", path, err)
	}
	var out []Bucket
	for _, e := range entries {
		if b := bucketOf(e.Name()); e.IsDir() && b >= 0 {
			out = append(out, one(filepath.Join(path, e.Name()), b))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("persisting: %s: no Lance dataset, bucket directory or bucket_* directory there: %w", path, ErrNotFound)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bucket < out[j].Bucket })
	return out, nil
}

// MakePlan discovers the buckets under path, reads every retained
// manifest (reporting the damaged ones) and lists the data files of every
// fragment of every retained version, then the log directories.
func MakePlan(path string) (*Plan, error) {
	buckets, err := Discover(path)
	if err != nil {
		return nil, err
	}
	p := &Plan{Path: filepath.Clean(path), Buckets: buckets, Items: []Item{}, Problems: []Problem{}}
	for i := range p.Buckets {
		b := &p.Buckets[i]
		if b.Dataset != "" {
			p.planDataset(b)
		}
	}
	for _, b := range p.Buckets {
		if b.WAL != "" {
			p.Items = append(p.Items, Item{Kind: "wal", Bucket: b.Bucket, Path: b.WAL, Size: dirBytes(b.WAL)})
		}
	}
	return p, nil
}

func (p *Plan) planDataset(b *Bucket) {
	mfs, err := lance.Manifests(b.Dataset, lance.Options{})
	if err != nil {
		p.Problems = append(p.Problems, Problem{Bucket: b.Bucket, File: filepath.Join(b.Dataset, "_versions"), Offset: -1,
			Kind: "corrupt", What: "manifest", Reason: err.Error()})
		return
	}
	b.Versions = len(mfs)
	seen := map[string]bool{}
	for _, mf := range mfs {
		if st, err := os.Stat(mf.Path); err == nil {
			b.Manifests += st.Size()
		}
		ds, err := lance.OpenVersion(b.Dataset, mf.Version, lance.Options{})
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && !exists(mf.Path) {
				continue // cleaned up by a live writer since the listing
			}
			p.Problems = append(p.Problems, Problem{Bucket: b.Bucket, File: mf.Path, Offset: offsetIn(err),
				Kind: kindOf(err), What: "manifest", Reason: fmt.Sprintf("version %d: %v", mf.Version, err)})
			continue
		}
		for _, df := range ds.DataFiles() {
			if seen[df.Path] {
				continue
			}
			seen[df.Path] = true
			p.Items = append(p.Items, Item{Kind: "data", Bucket: b.Bucket, Path: df.Path, Dataset: b.Dataset, Size: int64(df.Size)})
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func dirBytes(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() {
			n += info.Size()
		}
	}
	return n
}

var offsetRE = regexp.MustCompile(`at offset (\d+)`)

// offsetIn is the byte offset an error of the file or wal packages names
// in its message ("... at offset N ..."), or -1.
func offsetIn(err error) int64 {
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		return ce.Offset
	}
	m := offsetRE.FindStringSubmatch(err.Error())
	if m == nil {
		return -1
	}
	n, perr := strconv.ParseInt(m[1], 10, 64)
	if perr != nil {
		return -1
	}
	return n
}

func kindOf(err error) string {
	switch {
	case errors.Is(err, encoding.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, os.ErrNotExist):
		return "missing"
	}
	return "corrupt"
}

// Check reads one item.
func Check(it Item) (*Result, error) {
	switch it.Kind {
	case "data":
		return checkData(it)
	case "wal":
		rep, err := wal.Verify(nil, it.Path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return &Result{Problems: []Problem{}, Gone: true}, nil
			}
			return nil, err
		}
		res := &Result{Problems: []Problem{}, Frames: rep.Frames, Rows: rep.Rows, Bytes: rep.Bytes, WAL: rep}
		for _, pr := range rep.Problems {
			res.Problems = append(res.Problems, Problem{Bucket: it.Bucket, File: pr.File, Offset: pr.Offset,
				Kind: pr.Kind, What: "wal", Reason: pr.Reason})
		}
		return res, nil
	}
	return nil, fmt.Errorf("verify: unknown item kind %q", it.Kind)
}

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
