package table

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/vfs"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/file"
)

// Options configure reading and writing a dataset.
type Options struct {
	// FS is the filesystem of the local store; nil means vfs.Default.
	FS vfs.FS
	// Store, when set, opens the storage of the dataset at a path in place
	// of store.Local on FS (an object store, say).
	Store func(path string) store.Store
	// Compression of page buffers written by Append: "", "zstd" or "lz4".
	// A field's own lance-encoding:compression metadata takes precedence.
	Compression string
	// CompressVarWidthOnly limits Compression to the data buffers of strings
	// and binary, as Lance's writer does (encoding.Encoder.VarWidthOnly).
	CompressVarWidthOnly bool
	// MaxPageBytes is the target encoded size of one page; 0 means 1 MiB.
	// Compressed buffers are read whole, so pages stay modest.
	MaxPageBytes int
	// CheckCommit, when set, is called by Append with the config of the
	// version it is about to commit on top of (at every attempt, so also
	// after a rebase); an error stops the Append uncommitted. A writer
	// fences itself with it (see UpdateConfig).
	CheckCommit func(config map[string]string) error
	// MustExist makes Append refuse (ErrNoDataset) to create the dataset:
	// for a writer that had one, its disappearance is an error, not a
	// reason to start again at row 0.
	MustExist bool
}

const defaultMaxPageBytes = 1 << 20

// store opens the storage of the dataset at path.
func (o Options) store(path string) store.Store {
	if o.Store != nil {
		return o.Store(path)
	}
	return store.Local(o.FS, path)
}

func (o Options) normalize() (Options, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = defaultMaxPageBytes
	}
	switch o.Compression {
	case "", encoding.CompressionZstd, encoding.CompressionLZ4:
	default:
		return o, fmt.Errorf("%w: compression %q (Lance 2.0 has zstd and lz4)", encoding.ErrUnsupported, o.Compression)
	}
	return o, nil
}

// VersionInfo describes one committed version.
type VersionInfo struct {
	Version   uint64
	Timestamp time.Time
	Rows      int64 // live rows (deletions honoured)
}

// Dataset is one version of a Lance dataset, opened for reading. It is
// immutable apart from a cache of data-file metadata, and safe for
// concurrent use.
type Dataset struct {
	path   string
	opts   Options
	st     store.Store
	naming naming
	m      *Manifest
	schema *encoding.Schema
	arrow  *arrow.Schema
	frags  []fragState
	// cum[i] is the number of live rows before fragment i; cum[len(frags)]
	// is the total. ReadRange binary-searches it.
	cum []int64

	mu      sync.Mutex
	readers map[string]*file.Reader
}

type fragState struct {
	f       *fragment
	deleted []uint32 // sorted deleted row offsets
	live    int64
	// fileOf maps a schema field id to the data file (index into f.files)
	// holding it; cols maps it to the column inside that file.
	fileOf map[int32]int
	cols   []map[int32]int
}

// Open opens the latest version of the dataset at path. It returns an error
// wrapping os.ErrNotExist when there is no dataset.
func Open(path string, opts Options) (*Dataset, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	versions, n, err := listVersionNumbers(opts.store(path))
	if err != nil {
		return nil, err
	}
	return openVersion(path, opts, n, versions[len(versions)-1])
}

// OpenVersion opens the given version (time travel). A version that does not
// exist (or was cleaned up) wraps os.ErrNotExist.
func OpenVersion(path string, version uint64, opts Options) (*Dataset, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	_, n, err := listVersionNumbers(opts.store(path))
	if err != nil {
		return nil, err
	}
	return openVersion(path, opts, n, version)
}

func openVersion(path string, opts Options, n naming, version uint64) (*Dataset, error) {
	m, err := readManifest(opts.store(path), n, version)
	if err != nil {
		return nil, err
	}
	return load(path, opts, n, m)
}

// versionsAt normalizes opts and lists the version numbers of the dataset at
// path through its store.
func versionsAt(path string, opts Options) (Options, store.Store, []uint64, naming, error) {
	opts, err := opts.normalize()
	if err != nil {
		return opts, nil, nil, 0, err
	}
	st := opts.store(path)
	versions, n, err := listVersionNumbers(st)
	return opts, st, versions, n, err
}

// ListVersions lists every committed version, oldest first.
func ListVersions(path string, opts Options) ([]VersionInfo, error) {
	opts, st, versions, n, err := versionsAt(path, opts)
	if err != nil {
		return nil, err
	}
	out := make([]VersionInfo, 0, len(versions))
	for _, v := range versions {
		m, err := readManifest(st, n, v)
		if err != nil {
			return nil, err
		}
		rows := int64(0)
		for _, fr := range m.fragments {
			deleted := int64(0)
			if fr.deletion != nil {
				deleted = int64(fr.deletion.numDeleted)
				if deleted == 0 { // older writers leave the count unset
					d, err := readDeletions(st, fr)
					if err != nil {
						return nil, err
					}
					deleted = int64(len(d))
				}
			}
			rows += int64(fr.physicalRows) - deleted
		}
		out = append(out, VersionInfo{Version: v, Timestamp: m.timestamp, Rows: rows})
	}
	return out, nil
}

// load validates a manifest and builds the row-range index of its fragments.
func load(path string, opts Options, n naming, m *Manifest) (*Dataset, error) {
	stor := opts.store(path)
	if err := m.checkReadable(); err != nil {
		return nil, fmt.Errorf("lance: %s: %w", path, err)
	}
	s, err := encoding.BuildSchema(m.fields)
	if err != nil {
		return nil, fmt.Errorf("lance: %s version %d: %w", path, m.version, err)
	}
	d := &Dataset{path: path, opts: opts, st: stor, naming: n, m: m, schema: s,
		arrow: s.ArrowSchema(m.schemaMetadata), readers: map[string]*file.Reader{}}
	d.cum = make([]int64, 1, len(m.fragments)+1)
	for _, fr := range m.fragments {
		st := fragState{f: fr, fileOf: map[int32]int{}}
		if fr.deletion != nil {
			if st.deleted, err = readDeletions(stor, fr); err != nil {
				return nil, err
			}
		}
		if fr.physicalRows > 1<<32 {
			return nil, fmt.Errorf("lance: %s: fragment %d has %d rows (row offsets are u32)", path, fr.id, fr.physicalRows)
		}
		st.live = int64(fr.physicalRows) - int64(len(st.deleted))
		for i, df := range fr.files {
			cols := make(map[int32]int, len(df.fields))
			for j, id := range df.fields {
				// Ids not in the schema (replaced or dropped columns,
				// tombstones) are skipped; a later file wins for an id.
				if _, ok := s.ByID[id]; ok && id >= 0 {
					cols[id] = int(df.columns[j])
					st.fileOf[id] = i
				}
			}
			st.cols = append(st.cols, cols)
		}
		d.frags = append(d.frags, st)
		d.cum = append(d.cum, d.cum[len(d.cum)-1]+st.live)
	}
	return d, nil
}

// Version is the dataset version this Dataset reads.
func (d *Dataset) Version() uint64 { return d.m.version }

// Schema is the Arrow schema of this version.
func (d *Dataset) Schema() *arrow.Schema { return d.arrow }

// CountRows is the number of live rows (deletions honoured).
func (d *Dataset) CountRows() int64 { return d.cum[len(d.cum)-1] }

// Fragments is the number of fragments of this version.
func (d *Dataset) Fragments() int { return d.m.NumFragments() }

// Config returns a copy of the manifest's config map.
func (d *Dataset) Config() map[string]string { return maps.Clone(d.m.config) }

// fileReader returns the cached metadata of a data file, reading it on
// first use, and the open file.
func (d *Dataset) fileReader(df *dataFile) (*file.Reader, store.Object, error) {
	name := path.Join(dataDir, df.path)
	full := filepath.Join(d.path, dataDir, df.path)
	f, err := d.st.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("lance: open %s: %w", full, err)
	}
	d.mu.Lock()
	r := d.readers[df.path]
	d.mu.Unlock()
	if r != nil {
		return r, f, nil
	}
	size := df.size
	if size == 0 { // 0 means unknown (§5 DataFile)
		sz, err := f.Size()
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("lance: stat %s: %w", full, err)
		}
		size = uint64(sz)
	}
	if r, err = file.OpenReader(f, size, full); err != nil {
		f.Close()
		return nil, nil, err
	}
	d.mu.Lock()
	d.readers[df.path] = r
	d.mu.Unlock()
	return r, f, nil
}
