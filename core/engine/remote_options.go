package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/remotewal"
	"github.com/persisting/persisting/core/store"
)

// checkRemote checks the object-store options: storage_options names (an
// unknown one is an error, as in pylance), the URI, wal_location.
func (o Options) checkRemote() error {
	remote := store.IsURI(o.StoragePath)
	if _, err := resolver(o.StorageOptions); err != nil {
		return err
	}
	switch o.WALLocation {
	case "", WALObjectStore, WALLocal:
	default:
		return fmt.Errorf("wal_location must be %q or %q, got %q", WALObjectStore, WALLocal, o.WALLocation)
	}
	if err := checkLocation("storage_path", o.StoragePath); err != nil {
		return err
	}
	if !remote {
		if o.WALLocation == WALObjectStore {
			return fmt.Errorf("wal_location=%q needs an object-store storage_path (s3://...)", WALObjectStore)
		}
		return nil
	}
	if o.EnableWAL && o.WALLocation == WALLocal && o.LocalDir == "" {
		return fmt.Errorf("wal_location=%q on an object store needs local_dir (the local directory of the log)", WALLocal)
	}
	return nil
}

// remote fills in the object-store parts of cfg and of the Lance options
// for an s3:// storage_path, and reports whether the log is on the object
// store. Local paths are left as they are.
func (o Options) remote(cfg *Config, page *lance.Options) bool {
	if !store.IsURI(o.StoragePath) {
		return false
	}
	r, err := resolver(o.StorageOptions)
	if err != nil {
		panic(err) // checked by ParseOptions
	}
	page.Store = r.For
	host, _ := os.Hostname()
	rc := &RemoteConfig{Owner: fmt.Sprintf("%s pid %d", host, os.Getpid()), LogRoot: r.For(cfg.Dir + "/wal")}
	cfg.Remote = rc
	if o.WALLocation == WALLocal {
		rc.LocalDir = o.LocalDir
		return false
	}
	rc.LogOnStore = true
	return true
}

// resolver checks the storage options' names and values and returns the
// resolver of the stores of paths (an unknown name is an error naming it).
func resolver(storageOptions map[string]string) (*store.Resolver, error) {
	r, err := store.NewResolver(nil, storageOptions)
	if err != nil {
		return nil, fmt.Errorf("storage_options: %v", err)
	}
	return r, nil
}

// checkLocation checks a local path or an s3:// URI (what names it).
func checkLocation(what, p string) error {
	if !store.IsURI(p) {
		if strings.Contains(p, "://") {
			return fmt.Errorf("%s %q: only s3:// URIs and local paths are supported", what, p)
		}
		return nil
	}
	if _, _, err := store.ParseS3URI(p); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

// ReadOptions are the Lance options of a reader of path (core/reader) with
// the storage options a bucket takes: for an s3:// URI, Store opens its
// objects through one client built from them (built here, so that a bad
// endpoint or configuration fails now); for a local path the options are
// empty (the local filesystem), the storage options checked but unused.
// Errors wrap ErrInvalid and name the option.
func ReadOptions(path string, storageOptions map[string]string) (lance.Options, error) {
	r, err := resolver(storageOptions)
	if err == nil {
		err = checkLocation("path", path)
	}
	if err != nil {
		return lance.Options{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !store.IsURI(path) {
		return lance.Options{}, nil
	}
	if _, err := r.Open(path); err != nil {
		return lance.Options{}, fmt.Errorf("%w: storage_options: %v", ErrInvalid, err)
	}
	return lance.Options{Store: r.For}, nil
}

// datasetPath is the bucket's Lance dataset: {dir}/data.lance, dir being a
// local directory or an s3:// URI.
func datasetPath(dir string) string {
	if store.IsURI(dir) {
		return strings.TrimRight(dir, "/") + "/" + DatasetName
	}
	return filepath.Join(dir, DatasetName)
}

// EpochKey is the manifest config key holding the epoch of the owner that
// last took the dataset (buckets whose log is on the object store).
const EpochKey = "persisting.epoch"

// sinkFence is what a fenced sink checks before each commit: no newer
// epoch, and the watermark it last saw (nobody else appended rows).
type sinkFence struct {
	mu        sync.Mutex
	epoch     uint64
	watermark uint64
}

// fence takes the bucket for this owner: with the epoch its log on the
// object store took, or else (a local log, or none) with an epoch taken in
// the log's place on the store, so that one writer per bucket holds
// whatever the log's location. A previous owner learns it at its next
// commit to the dataset. Only buckets on an object store are fenced (local
// ones are locked).
func (e *Engine) fence(sink Sink, log walLog) error {
	f, ok := sink.(interface{ Fence(epoch uint64) error })
	if !ok || e.cfg.Remote == nil {
		return nil
	}
	if l, ok := log.(interface{ Epoch() uint64 }); ok {
		return f.Fence(l.Epoch())
	}
	root := e.cfg.Remote.LogRoot
	if left, err := remotewal.HasGroups(root); err != nil {
		return err
	} else if left {
		// Rows an earlier owner acknowledged may be there, and this
		// configuration would never replay them.
		return fmt.Errorf("%w: %s holds a write-ahead log that an owner with wal_location=%q left; open the bucket with that wal_location once to replay it (nothing was changed)",
			ErrInvalid, root.Root(), WALObjectStore)
	}
	epoch, err := remotewal.TakeEpoch(root, e.cfg.Remote.Owner)
	if err != nil {
		return err
	}
	return f.Fence(epoch)
}

// Fence takes the dataset for epoch: it commits the epoch into the
// dataset's config (an UpdateConfig version), so that a previous owner's
// append after this point fails (CheckCommit), and from then on checks
// before each of its own commits that no newer owner did the same and that
// nobody else appended rows. A dataset that does not exist yet has nothing
// to fence; if a previous owner creates it later, the watermark check fails
// this owner's first flush instead (reopen to recover from it).
func (s *LanceSink) Fence(epoch uint64) error {
	f := &sinkFence{epoch: epoch}
	if s.current() != nil {
		plain := s.opts
		plain.CheckCommit = nil
		ds, err := lance.UpdateConfig(s.path, map[string]string{EpochKey: strconv.FormatUint(epoch, 10)}, plain)
		if err != nil {
			return fmt.Errorf("fence the dataset with epoch %d: %w", epoch, err)
		}
		s.mu.Lock()
		s.ds = ds
		s.mu.Unlock()
	}
	f.watermark = s.Watermark()
	s.fence = f
	s.opts.CheckCommit = s.checkCommit
	return nil
}

func (s *LanceSink) checkCommit(config map[string]string) error {
	f := s.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, _ := strconv.ParseUint(config[EpochKey], 10, 64); e > f.epoch {
		return &remotewal.FencedError{Root: s.path, Epoch: f.epoch, By: e}
	}
	if wm, _ := strconv.ParseUint(config[WatermarkKey], 10, 64); wm != f.watermark {
		return fmt.Errorf("persisting: dataset %s: %w: it holds rows up to sequence %d, this owner expected %d (another writer appended); this backend no longer writes, reopen it",
			s.path, ErrFenced, wm, f.watermark)
	}
	return nil
}

// fenced records the watermark of the sink's own successful commit.
func (s *LanceSink) fenced(watermark uint64) {
	if f := s.fence; f != nil {
		f.mu.Lock()
		f.watermark = watermark
		f.mu.Unlock()
	}
}
