package reader

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/store"
)

// discoverStore lists the sources under an object-store URI through the
// store opts.Store opens for it, with the rules of a local root: a Lance
// dataset (it has _versions/), a bucket (it holds data.lance/, or is named
// bucket_<id>), else every bucket_<id>/ under it.
func discoverStore(root string, opts lance.Options) ([]Source, error) {
	root = strings.TrimRight(root, "/")
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: %s is an object-store URI and no store was given for it", ErrInvalid, root)
	}
	lister, ok := opts.Store(root).(store.InfoLister)
	if !ok {
		return nil, fmt.Errorf("%w: the store of %s cannot list directories", ErrInvalid, root)
	}
	ents, err := lister.ListInfo("")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("persisting: open_dataset %s: nothing there: %w", root, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("persisting: open_dataset %s: %w", root, err)
	}
	dirs := map[string]bool{}
	for _, e := range ents {
		if e.Dir {
			dirs[e.Name] = true
		}
	}
	if dirs["_versions"] {
		b := -1
		if path.Base(root) == DatasetName {
			b = BucketOf(path.Dir(root))
		}
		return []Source{{Bucket: b, Path: root}}, nil
	}
	if dirs[DatasetName] || BucketOf(root) >= 0 {
		return []Source{{Bucket: BucketOf(root), Path: root + "/" + DatasetName}}, nil
	}
	var out []Source
	for name := range dirs {
		if b := BucketOf(name); b >= 0 {
			out = append(out, Source{Bucket: b, Path: root + "/" + name + "/" + DatasetName})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("persisting: open_dataset %s: no Lance dataset, data.lance or bucket_* prefix there: %w", root, os.ErrNotExist)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bucket < out[j].Bucket })
	return out, nil
}
