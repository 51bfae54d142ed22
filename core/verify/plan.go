package verify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/reader"
)

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
		if reader.IsDataset(filepath.Join(dir, DatasetName)) {
			out.Dataset = filepath.Join(dir, DatasetName)
		}
		if s, err := os.Stat(filepath.Join(dir, WALDir)); err == nil && s.IsDir() {
			out.WAL = filepath.Join(dir, WALDir)
		}
		return out
	}
	if reader.IsDataset(path) {
		if filepath.Base(path) == DatasetName {
			return []Bucket{one(filepath.Dir(path), reader.BucketOf(filepath.Dir(path)))}, nil
		}
		return []Bucket{{Bucket: -1, Dir: path, Dataset: path}}, nil
	}
	if isBucketDir(path) || reader.BucketOf(path) >= 0 {
		return []Bucket{one(path, reader.BucketOf(path))}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("persisting: %s: %w", path, err)
	}
	var out []Bucket
	for _, e := range entries {
		if b := reader.BucketOf(e.Name()); e.IsDir() && b >= 0 {
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
