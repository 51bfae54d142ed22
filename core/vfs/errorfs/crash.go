package errorfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/persisting/persisting/core/vfs"
)

// The crash model, after RocksDB's FaultInjectionTestFS:
//
//   - File data: for every file opened for writing through the FS, the size
//     at its last successful Sync is "synced"; bytes below it that were
//     overwritten or truncated since are saved in an undo log. Crash replays
//     the undo log backwards and truncates the file to the synced size, so it
//     holds exactly what the last Sync covered. Files that existed before
//     they were first opened here count as synced in full.
//   - Directory entries: Create of a new file, Rename, Link and Remove are
//     logged per directory until a SyncDir of that directory succeeds; Crash
//     undoes the logged ones, newest first. A removed file is kept under a
//     hidden stash name (filtered from ReadDir) until then, so it can come
//     back; so is a file that a Rename replaced.
//
// Limits: a Rename across directories is made durable by a SyncDir of the
// target directory alone; data written through a hard link is tracked under
// the name it was opened by; directory creation is never undone.

type fileState struct {
	path   string // current name (follows renames and removes into stashes)
	synced int64
	undo   []undoRec // oldest first
}

type undoRec struct {
	off  int64
	data []byte
}

type dirOpKind int

const (
	opCreated dirOpKind = iota
	opRenamed
	opRemoved
	opLinked
)

type dirOp struct {
	kind  dirOpKind
	dir   string // SyncDir of this directory makes the change durable
	path  string // created, removed or linked name; for a rename the new name
	from  string // rename: the old name
	stash string // remove: where the file is kept; rename: the replaced target
}

const stashPrefix = ".errorfs-stash-"

func isStash(name string) bool { return strings.HasPrefix(name, stashPrefix) }

func (fs *FS) newStash(dir string) string {
	fs.stashes++
	return filepath.Join(dir, fmt.Sprintf("%s%d", stashPrefix, fs.stashes))
}

// openLocked opens a file and starts tracking it if it is writable.
func (fs *FS) openLocked(name string, flag int, perm os.FileMode) (vfs.File, error) {
	clean := filepath.Clean(name)
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	var existed bool
	var size int64
	if fi, err := fs.inner.Stat(clean); err == nil {
		existed, size = true, fi.Size()
	}
	var st *fileState
	if writable {
		st = fs.files[clean]
		if st == nil {
			st = &fileState{path: clean, synced: size}
			fs.files[clean] = st
		}
		if existed && flag&os.O_TRUNC != 0 {
			if err := fs.captureLocked(st, 0, size); err != nil {
				return nil, err
			}
		}
	}
	inner, err := fs.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if !existed && flag&os.O_CREATE != 0 {
		fs.dirOps = append(fs.dirOps, dirOp{kind: opCreated, dir: filepath.Dir(clean), path: clean})
	}
	f := &file{fs: fs, inner: inner, name: name, st: st, appendMode: flag&os.O_APPEND != 0, gen: fs.gen}
	fs.open[f] = struct{}{}
	return f, nil
}

// captureLocked saves the synced bytes in [off, off+n) before they change.
func (fs *FS) captureLocked(st *fileState, off, n int64) error {
	end := min(off+n, st.synced)
	if off >= end {
		return nil
	}
	r, err := fs.inner.Open(st.path)
	if err != nil {
		return fmt.Errorf("errorfs: capture %s: %w", st.path, err)
	}
	defer r.Close()
	buf := make([]byte, end-off)
	m, err := r.ReadAt(buf, off)
	if m < len(buf) && err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("errorfs: capture %s: %w", st.path, err)
	}
	// Bytes past the current end are already gone; an older record (from
	// the truncation that removed them) restores them.
	st.undo = append(st.undo, undoRec{off: off, data: buf[:m]})
	return nil
}

func (fs *FS) removeLocked(name string) error {
	clean := filepath.Clean(name)
	fi, err := fs.inner.Stat(clean)
	if err != nil || fi.IsDir() {
		return fs.inner.Remove(name)
	}
	stash := fs.newStash(filepath.Dir(clean))
	if err := fs.inner.Rename(clean, stash); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	if st := fs.files[clean]; st != nil {
		delete(fs.files, clean)
		st.path = stash
		fs.files[stash] = st
	}
	fs.dirOps = append(fs.dirOps, dirOp{kind: opRemoved, dir: filepath.Dir(clean), path: clean, stash: stash})
	return nil
}

func (fs *FS) renameLocked(oldname, newname string) error {
	oc, nc := filepath.Clean(oldname), filepath.Clean(newname)
	var stash string
	if fi, err := fs.inner.Stat(nc); err == nil && !fi.IsDir() {
		stash = fs.newStash(filepath.Dir(nc))
		if err := fs.inner.Link(nc, stash); err != nil {
			stash = ""
		}
	}
	if err := fs.inner.Rename(oldname, newname); err != nil {
		if stash != "" {
			fs.inner.Remove(stash)
		}
		return err
	}
	if st := fs.files[nc]; st != nil && stash != "" {
		delete(fs.files, nc)
		st.path = stash
		fs.files[stash] = st
	}
	if st := fs.files[oc]; st != nil {
		delete(fs.files, oc)
		st.path = nc
		fs.files[nc] = st
	}
	fs.dirOps = append(fs.dirOps, dirOp{kind: opRenamed, dir: filepath.Dir(nc), path: nc, from: oc, stash: stash})
	return nil
}

func (fs *FS) linkLocked(oldname, newname string) error {
	if err := fs.inner.Link(oldname, newname); err != nil {
		return err
	}
	nc := filepath.Clean(newname)
	fs.dirOps = append(fs.dirOps, dirOp{kind: opLinked, dir: filepath.Dir(nc), path: nc})
	return nil
}

// dirSyncedLocked makes dir's logged entry changes durable.
func (fs *FS) dirSyncedLocked(dir string) error {
	kept := fs.dirOps[:0]
	var errs []error
	for _, op := range fs.dirOps {
		if op.dir != dir {
			kept = append(kept, op)
			continue
		}
		if op.stash != "" {
			delete(fs.files, op.stash)
			if err := fs.inner.Remove(op.stash); err != nil {
				errs = append(errs, err)
			}
		}
	}
	fs.dirOps = kept
	return errors.Join(errs...)
}

// Crash simulates a power loss: every file opened before it fails with
// ErrCrashed from now on; unsynced data and entry changes are dropped as
// described above. The FS stays usable afterwards, with everything on disk
// counted as durable. The returned error reports undo steps that failed.
func (fs *FS) Crash() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.gen++
	for f := range fs.open {
		f.inner.Close()
	}
	fs.open = map[*file]struct{}{}
	var errs []error
	for _, st := range fs.files {
		errs = append(errs, fs.dropUnsynced(st))
	}
	for i := len(fs.dirOps) - 1; i >= 0; i-- {
		op := fs.dirOps[i]
		switch op.kind {
		case opCreated, opLinked:
			errs = append(errs, ignoreNotExist(fs.inner.Remove(op.path)))
		case opRenamed:
			errs = append(errs, fs.inner.Rename(op.path, op.from))
			if op.stash != "" {
				errs = append(errs, fs.inner.Rename(op.stash, op.path))
			}
		case opRemoved:
			errs = append(errs, fs.inner.Rename(op.stash, op.path))
		}
	}
	fs.files = map[string]*fileState{}
	fs.dirOps = nil
	return errors.Join(errs...)
}

func (fs *FS) dropUnsynced(st *fileState) error {
	w, err := fs.inner.OpenFile(st.path, os.O_WRONLY, 0)
	if err != nil {
		return ignoreNotExist(err)
	}
	defer w.Close()
	for i := len(st.undo) - 1; i >= 0; i-- {
		u := st.undo[i]
		if _, err := w.Seek(u.off, io.SeekStart); err != nil {
			return err
		}
		if _, err := w.Write(u.data); err != nil {
			return err
		}
	}
	if err := w.Truncate(st.synced); err != nil {
		return err
	}
	return w.Sync()
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// file is a File of the FS.
type file struct {
	fs         *FS
	inner      vfs.File
	name       string
	st         *fileState // nil when opened read-only
	appendMode bool
	gen        int
}

var _ vfs.File = (*file)(nil)

// begin locks the FS, checks the file is still live and applies the rules
// for op.
func (f *file) begin(op Op) (*Injection, error) {
	f.fs.mu.Lock()
	if f.gen != f.fs.gen {
		return nil, &os.PathError{Op: op.String(), Path: f.name, Err: ErrCrashed}
	}
	return f.fs.check(op, f.name)
}

func (f *file) Read(p []byte) (int, error) {
	defer f.fs.mu.Unlock()
	if _, err := f.begin(OpRead); err != nil {
		return 0, err
	}
	return f.inner.Read(p)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	defer f.fs.mu.Unlock()
	if _, err := f.begin(OpRead); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

func (f *file) Write(p []byte) (int, error) {
	defer f.fs.mu.Unlock()
	in, err := f.begin(OpWrite)
	if err != nil {
		if in != nil && in.rule.Partial > 0 {
			n, _ := f.writeLocked(p[:min(in.rule.Partial, len(p))])
			return n, err
		}
		return 0, err
	}
	return f.writeLocked(p)
}

func (f *file) writeLocked(p []byte) (int, error) {
	if f.st != nil {
		var pos int64
		var err error
		if f.appendMode {
			var fi os.FileInfo
			if fi, err = f.inner.Stat(); err == nil {
				pos = fi.Size()
			}
		} else {
			pos, err = f.inner.Seek(0, io.SeekCurrent)
		}
		if err != nil {
			return 0, err
		}
		if err := f.fs.captureLocked(f.st, pos, int64(len(p))); err != nil {
			return 0, err
		}
	}
	return f.inner.Write(p)
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	defer f.fs.mu.Unlock()
	f.fs.mu.Lock()
	if f.gen != f.fs.gen {
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: ErrCrashed}
	}
	return f.inner.Seek(offset, whence)
}

func (f *file) Sync() error {
	defer f.fs.mu.Unlock()
	if _, err := f.begin(OpSync); err != nil {
		return err
	}
	if err := f.inner.Sync(); err != nil {
		return err
	}
	st := f.st
	if st == nil {
		st = f.fs.files[filepath.Clean(f.name)]
	}
	if st != nil {
		fi, err := f.inner.Stat()
		if err != nil {
			return err
		}
		st.synced = fi.Size()
		st.undo = nil
	}
	return nil
}

func (f *file) Truncate(size int64) error {
	defer f.fs.mu.Unlock()
	if _, err := f.begin(OpTruncate); err != nil {
		return err
	}
	if f.st != nil && size < f.st.synced {
		if err := f.fs.captureLocked(f.st, size, f.st.synced-size); err != nil {
			return err
		}
	}
	return f.inner.Truncate(size)
}

func (f *file) Stat() (os.FileInfo, error) {
	defer f.fs.mu.Unlock()
	if _, err := f.begin(OpStat); err != nil {
		return nil, err
	}
	return f.inner.Stat()
}

func (f *file) Name() string { return f.name }

// Close always releases the underlying file, even when a fault is injected.
func (f *file) Close() error {
	defer f.fs.mu.Unlock()
	_, err := f.begin(OpClose)
	if errors.Is(err, ErrCrashed) {
		return err // already closed by Crash
	}
	delete(f.fs.open, f)
	if cerr := f.inner.Close(); err == nil {
		err = cerr
	}
	return err
}
