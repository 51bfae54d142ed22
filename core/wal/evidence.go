package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/persisting/persisting/core/vfs"
)

// damagedDir, inside the log directory, holds what recovery cut out of the
// log: Open never reads it, and never deletes anything that could hold an
// acknowledged record, so that an operator can look at the damage.
const damagedDir = "damaged"

// moveAside moves a whole segment into damagedDir, durably.
func (r *recovery) moveAside(path string) error {
	dst, err := r.evidencePath(filepath.Base(path))
	if err != nil {
		return err
	}
	if err := r.fs.Rename(path, dst); err != nil {
		return &WALError{Op: "move damaged segment aside", File: path, Offset: -1, Err: err}
	}
	if err := r.fs.SyncDir(filepath.Dir(dst)); err != nil {
		return &WALError{Op: "sync dir", File: filepath.Dir(dst), Offset: -1, Err: err}
	}
	if err := r.fs.SyncDir(r.dir); err != nil {
		return &WALError{Op: "sync dir", File: r.dir, Offset: -1, Err: err}
	}
	r.info.Evidence = append(r.info.Evidence, dst)
	return nil
}

// keepTail copies the bytes [off, size) of a segment about to be truncated
// into damagedDir, unless they are all zeros (unwritten space holds no
// record).
func (r *recovery) keepTail(f vfs.File, path string, off, size int64) error {
	if size <= off {
		return nil
	}
	tail := make([]byte, size-off)
	if err := readFullAt(f, tail, off); err != nil {
		return &WALError{Op: "read tail", File: path, Offset: off, Err: err}
	}
	if allZero(tail) {
		return nil
	}
	dst, err := r.evidencePath(fmt.Sprintf("%s.tail-at-%d", filepath.Base(path), off))
	if err != nil {
		return err
	}
	if err := vfs.WriteFileSync(r.fs, dst, tail); err != nil {
		return &WALError{Op: "keep cut tail", File: dst, Offset: -1, Err: err}
	}
	if err := r.fs.SyncDir(filepath.Dir(dst)); err != nil {
		return &WALError{Op: "sync dir", File: filepath.Dir(dst), Offset: -1, Err: err}
	}
	r.info.Evidence = append(r.info.Evidence, dst)
	return nil
}

// evidencePath is a new path in damagedDir for name (suffixed if taken).
func (r *recovery) evidencePath(name string) (string, error) {
	dir := filepath.Join(r.dir, damagedDir)
	if err := r.fs.MkdirAll(dir, 0o755); err != nil {
		return "", &WALError{Op: "create dir", File: dir, Offset: -1, Err: err}
	}
	path := filepath.Join(dir, name)
	for i := 1; ; i++ {
		if _, err := r.fs.Stat(path); errors.Is(err, os.ErrNotExist) {
			return path, nil
		}
		path = filepath.Join(dir, fmt.Sprintf("%s.%d", name, i))
	}
}
