// Package vfs is the filesystem seam of the storage core. Every package that
// touches disk (wal, lance, engine) goes through an FS so that tests can inject
// faults that real disks cannot produce on demand (a failing fsync, a full
// disk at a chosen byte), in the manner of pebble's vfs and errorfs.
package vfs

import (
	"io"
	"os"
	"path/filepath"
)

// File is the subset of *os.File the storage core uses.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	// Sync makes the file's data and size durable (fdatasync or fsync).
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Name() string
}

// FS is the subset of the os package the storage core uses.
type FS interface {
	Create(name string) (File, error)
	// OpenFile opens with os.OpenFile flags.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Open(name string) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	// Link creates newname as a hard link to oldname; it fails with an
	// os.ErrExist-wrapping error when newname exists. Lance commits use it as
	// an atomic create-if-not-exists.
	Link(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	ReadDir(dir string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir fsyncs a directory so that creates, renames and removes of its
	// entries are durable.
	SyncDir(dir string) error
}

// Default is the real operating-system filesystem.
var Default FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) { return os.Create(name) }
func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}
func (osFS) Open(name string) (File, error)              { return os.Open(name) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) Link(oldname, newname string) error          { return os.Link(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]os.DirEntry, error)   { return os.ReadDir(dir) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// WriteFileSync writes data to name, fsyncs it, and fsyncs its directory.
func WriteFileSync(fs FS, name string, data []byte) error {
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}
