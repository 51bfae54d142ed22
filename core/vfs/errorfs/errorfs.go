// Package errorfs wraps a vfs.FS to inject faults that real disks produce
// rarely and never on demand, in the manner of pebble's vfs/errorfs and
// RocksDB's FaultInjectionTestFS:
//
//   - Inject makes the Nth matching call of an operation (write, sync,
//     create, rename, remove, link, SyncDir, ...) fail, optionally only for
//     paths matching a predicate, optionally after a short write.
//   - Crash simulates a power loss: it drops every byte written since the
//     file's last successful Sync and undoes every create, rename, link and
//     remove not yet made durable by a SyncDir of its directory.
//
// It is a test tool: every call takes one mutex, and unsynced state is
// tracked for every file written through the FS.
package errorfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/persisting/persisting/core/vfs"
)

// Op names an operation that can fail.
type Op int

const (
	OpCreate   Op = iota + 1 // FS.Create, FS.OpenFile with O_CREATE
	OpOpen                   // FS.Open, FS.OpenFile without O_CREATE
	OpRead                   // File.Read, File.ReadAt
	OpWrite                  // File.Write
	OpSync                   // File.Sync
	OpTruncate               // File.Truncate
	OpClose                  // File.Close
	OpRename                 // FS.Rename
	OpRemove                 // FS.Remove
	OpLink                   // FS.Link
	OpMkdirAll               // FS.MkdirAll
	OpReadDir                // FS.ReadDir
	OpStat                   // FS.Stat, File.Stat
	OpSyncDir                // FS.SyncDir
	numOps
)

var opNames = [...]string{"", "create", "open", "read", "write", "sync", "truncate", "close",
	"rename", "remove", "link", "mkdirall", "readdir", "stat", "syncdir"}

func (o Op) String() string {
	if o > 0 && o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

var (
	// ErrInjected is the default injected error.
	ErrInjected = errors.New("errorfs: injected error")
	// ErrCrashed is returned by every File opened before a Crash.
	ErrCrashed = errors.New("errorfs: file belongs to a crashed filesystem")
)

// Rule describes one injected fault.
type Rule struct {
	Op Op
	// N: the Nth matching call after the rule is added fails (1-based;
	// 0 means 1).
	N int
	// Match restricts the rule to paths for which it returns true; nil
	// matches every path. For Rename and Link the path is the new name.
	Match func(path string) bool
	// Err is returned instead of ErrInjected when set. The returned error
	// wraps it in an *os.PathError naming the operation and path.
	Err error
	// Sticky keeps failing every matching call after the Nth.
	Sticky bool
	// Partial, for OpWrite only, writes the first Partial bytes of the
	// buffer before failing, as a full disk does.
	Partial int
}

// Injection is the handle of an added Rule.
type Injection struct {
	rule  Rule
	seen  int
	fired int
}

// Fired reports how many calls the rule has failed so far.
func (in *Injection) Fired() int { return in.fired }

// FS is a fault-injecting vfs.FS. Use Wrap to make one.
type FS struct {
	inner vfs.FS

	mu     sync.Mutex
	rules  []*Injection
	counts [numOps]int

	// Crash simulation state (crash.go).
	files   map[string]*fileState // by current path, files written through the FS
	dirOps  []dirOp               // entry changes not yet made durable by SyncDir
	open    map[*file]struct{}
	stashes int
	gen     int // bumped by Crash; files of an older generation fail
}

var _ vfs.FS = (*FS)(nil)

// Wrap returns a fault-injecting FS over inner.
func Wrap(inner vfs.FS) *FS {
	return &FS{inner: inner, files: map[string]*fileState{}, open: map[*file]struct{}{}}
}

// Inject adds a rule and returns its handle.
func (fs *FS) Inject(r Rule) *Injection {
	if r.N <= 0 {
		r.N = 1
	}
	in := &Injection{rule: r}
	fs.mu.Lock()
	fs.rules = append(fs.rules, in)
	fs.mu.Unlock()
	return in
}

// ClearRules removes every rule.
func (fs *FS) ClearRules() {
	fs.mu.Lock()
	fs.rules = nil
	fs.mu.Unlock()
}

// Count reports how many calls of op the FS has seen, failed or not.
func (fs *FS) Count(op Op) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.counts[op]
}

// check counts a call and returns the injected error, if any, and the
// rule that fired. fs.mu must be held.
func (fs *FS) check(op Op, path string) (*Injection, error) {
	fs.counts[op]++
	for _, in := range fs.rules {
		r := &in.rule
		if r.Op != op || (r.Match != nil && !r.Match(path)) {
			continue
		}
		in.seen++
		if in.seen == r.N || (r.Sticky && in.seen > r.N) {
			in.fired++
			err := r.Err
			if err == nil {
				err = ErrInjected
			}
			return in, &os.PathError{Op: op.String(), Path: path, Err: err}
		}
	}
	return nil, nil
}

func (fs *FS) Create(name string) (vfs.File, error) {
	return fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (fs *FS) Open(name string) (vfs.File, error) {
	return fs.OpenFile(name, os.O_RDONLY, 0)
}

func (fs *FS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	op := OpOpen
	if flag&os.O_CREATE != 0 {
		op = OpCreate
	}
	if _, err := fs.check(op, name); err != nil {
		return nil, err
	}
	return fs.openLocked(name, flag, perm)
}

func (fs *FS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpRemove, name); err != nil {
		return err
	}
	return fs.removeLocked(name)
}

func (fs *FS) Rename(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpRename, newname); err != nil {
		return err
	}
	return fs.renameLocked(oldname, newname)
}

func (fs *FS) Link(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpLink, newname); err != nil {
		return err
	}
	return fs.linkLocked(oldname, newname)
}

func (fs *FS) MkdirAll(dir string, perm os.FileMode) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpMkdirAll, dir); err != nil {
		return err
	}
	// Directory creation is not tracked for Crash: new directories survive.
	return fs.inner.MkdirAll(dir, perm)
}

func (fs *FS) ReadDir(dir string) ([]os.DirEntry, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpReadDir, dir); err != nil {
		return nil, err
	}
	ents, err := fs.inner.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := ents[:0]
	for _, e := range ents {
		if !isStash(e.Name()) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (fs *FS) Stat(name string) (os.FileInfo, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpStat, name); err != nil {
		return nil, err
	}
	return fs.inner.Stat(name)
}

func (fs *FS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, err := fs.check(OpSyncDir, dir); err != nil {
		return err
	}
	if err := fs.inner.SyncDir(dir); err != nil {
		return err
	}
	return fs.dirSyncedLocked(filepath.Clean(dir))
}
