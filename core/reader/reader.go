// Package reader opens persisting's datasets for reading without the
// writer's lock: one Lance dataset, one bucket directory, or a queue's
// storage path with all its bucket_* directories. A Reader holds an
// immutable View (one dataset version per bucket); Refresh moves it to the
// latest versions and Checkout to older ones. Scans stream batches, counts
// and searches run in parallel over fragment chunks.
//
// A path is a local directory or an object-store URI (s3://bucket/prefix):
// a URI is listed and read through the store lance.Options.Store opens for
// it (engine.ReadOptions builds one from pylance-style storage options).
package reader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/store"
)

// ErrInvalid marks a bad argument (unknown version, column, dimension...).
var ErrInvalid = errors.New("invalid read request")

// DatasetName is the Lance dataset inside a bucket directory (engine.DatasetName).
const DatasetName = "data.lance"

// Source is one dataset the reader reads: a bucket (Bucket >= 0) or a bare
// Lance dataset (Bucket -1).
type Source struct {
	Bucket int    `json:"bucket"`
	Path   string `json:"path"` // the Lance dataset directory
}

// Part is one source at one version, or rows held in memory (a writer's
// buffer). Rows of a memory part have no Lance row id.
type Part struct {
	Bucket int
	DS     *lance.Dataset
	Mem    []arrow.RecordBatch
}

// View is what reads see: one part per source that has data. Immutable.
type View struct {
	Parts  []Part
	Schema *arrow.Schema // the union of the parts' schemas
}

// NewView builds a view over parts and unifies their schemas by name: a
// column missing from a part reads as nulls there; a column with two
// different types is an error.
func NewView(parts []Part) (*View, error) {
	v := &View{Parts: parts}
	var fields []arrow.Field
	seen := map[string]arrow.DataType{}
	add := func(s *arrow.Schema) error {
		if s == nil {
			return nil
		}
		for _, f := range s.Fields() {
			if t, ok := seen[f.Name]; ok {
				if !arrow.TypeEqual(t, f.Type) {
					return fmt.Errorf("%w: column %q is %s in one bucket and %s in another", ErrInvalid, f.Name, t, f.Type)
				}
				continue
			}
			seen[f.Name] = f.Type
			f.Nullable = true
			fields = append(fields, f)
		}
		return nil
	}
	for _, p := range parts {
		if p.DS != nil {
			if err := add(p.DS.Schema()); err != nil {
				return nil, err
			}
		}
		for _, r := range p.Mem {
			if err := add(r.Schema()); err != nil {
				return nil, err
			}
		}
	}
	v.Schema = arrow.NewSchema(fields, nil)
	return v, nil
}

// Reader is an open dataset. Safe for concurrent use.
type Reader struct {
	root    string
	opts    lance.Options
	mu      sync.Mutex
	sources []Source
	view    *View
}

// Open discovers the datasets under path and opens the latest version of
// each. path may be a Lance dataset, a bucket directory holding data.lance,
// or a storage path holding bucket_<id> directories (buckets without data
// yet are picked up by Refresh).
func Open(path string, opts lance.Options) (*Reader, error) {
	r := &Reader{root: path, opts: opts}
	if err := r.Refresh(); err != nil {
		return nil, err
	}
	return r, nil
}

// IsDataset tells whether dir is a Lance dataset (it has _versions/).
func IsDataset(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "_versions"))
	return err == nil && st.IsDir()
}

// BucketOf is the id in a bucket_<id> directory name, or -1.
func BucketOf(dir string) int {
	name := filepath.Base(filepath.Clean(dir))
	if s, ok := strings.CutPrefix(name, "bucket_"); ok {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

// discover lists the sources under the reader's root.
func (r *Reader) discover() ([]Source, error) {
	if store.IsURI(r.root) {
		return discoverStore(r.root, r.opts)
	}
	return discover(r.root)
}

// discover lists the sources under a local root.
func discover(root string) ([]Source, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("persisting: open_dataset %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrInvalid, root)
	}
	if IsDataset(root) {
		b := -1
		if filepath.Base(filepath.Clean(root)) == DatasetName {
			b = BucketOf(filepath.Dir(filepath.Clean(root)))
		}
		return []Source{{Bucket: b, Path: root}}, nil
	}
	if _, err := os.Stat(filepath.Join(root, DatasetName)); err == nil || BucketOf(root) >= 0 {
		return []Source{{Bucket: BucketOf(root), Path: filepath.Join(root, DatasetName)}}, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("persisting: open_dataset %s: %w", root, err)
	}
	var out []Source
	for _, e := range entries {
		if b := BucketOf(e.Name()); e.IsDir() && b >= 0 {
			out = append(out, Source{Bucket: b, Path: filepath.Join(root, e.Name(), DatasetName)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("persisting: open_dataset %s: no Lance dataset, data.lance or bucket_* directory there: %w", root, os.ErrNotExist)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bucket < out[j].Bucket })
	return out, nil
}

// Refresh re-lists the buckets and moves the view to the latest version of
// every dataset.
func (r *Reader) Refresh() error {
	sources, err := r.discover()
	if err != nil {
		return err
	}
	parts, err := r.open(sources, nil, time.Time{})
	if err != nil {
		return err
	}
	return r.set(sources, parts)
}

func (r *Reader) set(sources []Source, parts []Part) error {
	v, err := NewView(parts)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sources, r.view = sources, v
	r.mu.Unlock()
	return nil
}

// open opens every source at the version versions names (latest when
// absent), or, with asOf set, at the newest version committed at or
// before asOf. A source without a dataset is left out unless a version
// was asked for it.
func (r *Reader) open(sources []Source, versions map[int]uint64, asOf time.Time) ([]Part, error) {
	parts := make([]Part, len(sources))
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ds *lance.Dataset
			var err error
			want, pinned := versions[s.Bucket]
			switch {
			case pinned:
				ds, err = lance.OpenVersion(s.Path, want, r.opts)
				if errors.Is(err, os.ErrNotExist) {
					err = fmt.Errorf("%w: %s has no version %d (it never existed or was cleaned up)", ErrInvalid, s.Path, want)
				}
			case !asOf.IsZero():
				var vs []lance.VersionInfo
				vs, err = lance.ListVersions(s.Path, r.opts)
				if errors.Is(err, os.ErrNotExist) {
					return
				}
				if err == nil {
					k := sort.Search(len(vs), func(j int) bool { return vs[j].Timestamp.Truncate(time.Microsecond).After(asOf) })
					if k == 0 {
						return // nothing committed yet at asOf
					}
					ds, err = lance.OpenVersion(s.Path, vs[k-1].Version, r.opts)
				}
			default:
				ds, err = lance.Open(s.Path, r.opts)
				if errors.Is(err, os.ErrNotExist) {
					return // nothing flushed yet
				}
			}
			if err != nil {
				errs[i] = err
				return
			}
			parts[i] = Part{Bucket: s.Bucket, DS: ds}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := parts[:0]
	for _, p := range parts {
		if p.DS != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Checkout moves the view to the given versions (bucket -> version; a
// single dataset or bucket also takes the key -1 or its bucket id).
// Buckets not named are left out of the view unless latest is set, in
// which case they read their latest version.
func (r *Reader) Checkout(versions map[int]uint64) error {
	sources, err := r.currentSources()
	if err != nil {
		return err
	}
	if len(sources) == 1 {
		if v, ok := versions[-1]; ok {
			versions = map[int]uint64{sources[0].Bucket: v}
		}
	}
	known := map[int]bool{}
	for _, s := range sources {
		known[s.Bucket] = true
	}
	var pick []Source
	for b := range versions {
		if !known[b] {
			return fmt.Errorf("%w: %s has no bucket %d", ErrInvalid, r.root, b)
		}
	}
	for _, s := range sources {
		if _, ok := versions[s.Bucket]; ok {
			pick = append(pick, s)
		}
	}
	parts, err := r.open(pick, versions, time.Time{})
	if err != nil {
		return err
	}
	return r.set(sources, parts)
}

// CheckoutTime moves every bucket to its newest version committed at or
// before t (buckets with nothing committed then are left out).
func (r *Reader) CheckoutTime(t time.Time) error {
	sources, err := r.currentSources()
	if err != nil {
		return err
	}
	parts, err := r.open(sources, nil, t)
	if err != nil {
		return err
	}
	return r.set(sources, parts)
}

func (r *Reader) currentSources() ([]Source, error) {
	sources, err := r.discover()
	if err != nil {
		return nil, err
	}
	return sources, nil
}

// Sources are the datasets found under the root at the last Refresh or
// Checkout, with data or not yet.
func (r *Reader) Sources() []Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sources)
}

// View is the current view.
func (r *Reader) View() *View {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}

// VersionInfo is one committed version of one bucket.
type VersionInfo struct {
	Bucket    int    `json:"bucket"`
	Version   uint64 `json:"version"`
	Timestamp int64  `json:"timestamp_us"`
	Rows      int64  `json:"rows"`
}

// Versions lists every retained version of every bucket, oldest first per
// bucket.
func (r *Reader) Versions() ([]VersionInfo, error) {
	sources, err := r.discover()
	if err != nil {
		return nil, err
	}
	var out []VersionInfo
	for _, s := range sources {
		vs, err := lance.ListVersions(s.Path, r.opts)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out = append(out, VersionInfo{Bucket: s.Bucket, Version: v.Version, Timestamp: v.Timestamp.UnixMicro(), Rows: v.Rows})
		}
	}
	return out, nil
}

// PartInfo describes one part of a view.
type PartInfo struct {
	Bucket    int    `json:"bucket"`
	Path      string `json:"path"`
	Version   uint64 `json:"version"`
	Rows      int64  `json:"rows"`
	Fragments int    `json:"fragments"`
	Indexed   bool   `json:"indexed"`
}

// Info describes the parts of v.
func (v *View) Info() []PartInfo {
	out := make([]PartInfo, 0, len(v.Parts))
	for _, p := range v.Parts {
		if p.DS == nil {
			continue
		}
		out = append(out, PartInfo{Bucket: p.Bucket, Path: p.DS.Path(), Version: p.DS.Version(),
			Rows: p.DS.CountRows(), Fragments: p.DS.Fragments(), Indexed: p.DS.HasIndices()})
	}
	return out
}
