package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/persisting/persisting/core/remotewal"
	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/wal"
)

// ErrFenced: a newer owner took the bucket (remote log); this one stopped
// writing. Wrapped by *remotewal.FencedError.
var ErrFenced = remotewal.ErrFenced

// walLog is what the engine needs of a write-ahead log: *wal.Log (local
// segments) or *remotewal.Log (group objects on the object store).
type walLog interface {
	Append(wal.Frame) (int64, error)
	Sync() error
	ReleaseBefore(offset uint64) error
	Size() int64
	Segments() int
	NextOffset() (uint64, bool)
	Replay(fromOffset uint64, fn func(wal.Frame) error) error
	Close() error
}

var (
	_ walLog = (*wal.Log)(nil)
	_ walLog = (*remotewal.Log)(nil)
)

// RemoteConfig is set for a bucket on an object store: Config.Dir is then
// its URI (s3://bucket/prefix/bucket_N), which is never locked or created
// as a local directory.
type RemoteConfig struct {
	// LogRoot is {bucket}/wal on the object store: the log's groups when
	// it is there, and the owners' epochs whatever the log's location (an
	// owner's epoch fences the one before it).
	LogRoot store.Store
	// LogOnStore puts the log in LogRoot: a group commit is one object.
	// False keeps the log local, in LocalDir/wal.
	LogOnStore bool
	// LocalDir holds the local log and its LOCK when LogOnStore is false.
	LocalDir string
	// Owner describes this process in its epoch object.
	Owner string
}

// lockTarget is the local directory to create and lock, "" for none (a
// remote bucket whose log is on the object store: fencing replaces the
// lock there).
func (c *Config) lockTarget() string {
	if c.Remote == nil {
		return c.Dir
	}
	return c.Remote.LocalDir
}

// walDir is the local log's directory.
func (c *Config) walDir() string {
	if c.Remote != nil {
		return filepath.Join(c.Remote.LocalDir, "wal")
	}
	return filepath.Join(c.Dir, "wal")
}

// remoteLog reports whether the log lives on the object store.
func (c *Config) remoteLog() bool { return c.Remote != nil && c.Remote.LogOnStore }

// walPreallocate is how far a local log's active segment is kept zero-filled
// ahead of its frames (wal.Options.Preallocate): a 1 MiB step costs one
// write and fdatasync of about 2 ms every 1 MiB of log, and saves ~60 µs on
// every fdatasync in between.
const walPreallocate = 1 << 20

// openLog opens the bucket's log, local or remote; info is in the local
// log's terms either way.
func (e *Engine) openLog(walCfg *WALConfig) (walLog, wal.RecoveryInfo, error) {
	if e.cfg.remoteLog() {
		l, ri, err := remotewal.Open(e.cfg.Remote.LogRoot, remotewal.Options{Owner: e.cfg.Remote.Owner})
		if err != nil {
			return nil, wal.RecoveryInfo{}, err
		}
		return l, wal.RecoveryInfo{Segments: ri.Groups, Frames: ri.Frames, Rows: ri.Rows,
			FirstOffset: ri.FirstOffset, NextOffset: ri.NextOffset}, nil
	}
	l, info, err := wal.Open(wal.Options{
		FS:              e.cfg.FS,
		Dir:             e.cfg.walDir(),
		SegmentSize:     walCfg.SegmentSize,
		Preallocate:     walPreallocate,
		TruncateCorrupt: walCfg.TruncateCorrupt,
	})
	if err != nil {
		return nil, info, err
	}
	return l, info, nil
}

// hasLog reports whether a log an earlier open left may hold rows.
func (e *Engine) hasLog() bool {
	if e.cfg.remoteLog() {
		left, err := remotewal.HasGroups(e.cfg.Remote.LogRoot)
		return err == nil && left
	}
	return hasSegments(e.cfg.walDir())
}

// logError wraps a failure of the log for the caller: ErrWAL always, and
// the fencing error kept as such so that callers can tell it apart.
func (e *Engine) logError(op string, err error) error {
	if errors.Is(err, remotewal.ErrFenced) {
		return fmt.Errorf("persisting: bucket %s: %w: %w", e.cfg.Dir, ErrWAL, err)
	}
	return fmt.Errorf("persisting: bucket %s: %w: %s%v", e.cfg.Dir, ErrWAL, op, err)
}

// mkdirLock creates and locks the bucket's local directory, if it has one.
func mkdirLock(cfg *Config) (*dirLock, error) {
	dir := cfg.lockTarget()
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("persisting: create bucket directory: %w", err)
	}
	return lockDir(dir)
}
