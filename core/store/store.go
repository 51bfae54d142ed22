// Package store is the storage seam the Lance table layer (core/lance/table)
// writes through: whole-object puts, an atomic put-if-absent for commits,
// streamed creates for data files, ranged reads, listing and removal. The
// local filesystem implementation (Local) sits on a vfs.FS, so errorfs fault
// injection works through it; an object store (S3-compatible: conditional
// PUT for PutIfAbsent, ranged GET, LIST) can implement the same interface.
//
// Names are slash-separated keys relative to the store's root (a dataset's
// directory), such as "_versions/18446744073709551614.manifest".
//
// Invariants every implementation keeps: an object is visible under its
// name only complete (Writer.Commit, Put, PutIfAbsent return after the data
// is durable); PutIfAbsent never replaces an object, and tells a lost race
// (an error wrapping os.ErrExist) apart from an outcome it cannot know (an
// error wrapping ErrUncertain: the object may exist); Open and Get of a
// missing object, and List of a missing directory, wrap os.ErrNotExist.
package store

import (
	"errors"
	"io"
)

// ErrUncertain is wrapped when a PutIfAbsent placed the object but could
// not make that durable: it may or may not survive a crash.
var ErrUncertain = errors.New("store: outcome uncertain")

// Store is one root of objects; see the package comment for the contract.
type Store interface {
	// Root names the store in messages (a directory, a bucket URL).
	Root() string
	// Create starts a new object. Nothing is promised about its name until
	// Writer.Commit returns; Writer.Abort removes what was written.
	Create(name string) (Writer, error)
	// Put writes a whole object durably, replacing one of that name, and
	// makes its name durable.
	Put(name string, data []byte) error
	// PutIfAbsent writes a whole object durably under name only if no
	// object has that name, atomically with respect to other writers.
	PutIfAbsent(name string, data []byte) error
	// Open opens an object for ranged reads.
	Open(name string) (Object, error)
	// Get reads a whole object.
	Get(name string) ([]byte, error)
	// List returns the names of the objects directly in dir (not
	// sub-directories), in no particular order.
	List(dir string) ([]string, error)
	// Remove removes an object.
	Remove(name string) error
	// MkdirAll makes dir and its parents exist (local directories; object
	// stores have none and do nothing).
	MkdirAll(dir string) error
	// SyncDir makes the creation and removal of names in dir durable, ""
	// being the root (object stores: nothing to do).
	SyncDir(dir string) error
	// SyncRoot makes the root's own name durable in its parent.
	SyncRoot() error
}

// Writer streams a new object.
type Writer interface {
	io.Writer
	// Commit makes the object durable and closes the writer.
	Commit() error
	// Abort closes the writer and removes the partial object.
	Abort()
}

// WritebackStarter is implemented by Writers that can start moving bytes
// already written towards stable storage before Commit makes them durable
// (a hint: Commit still syncs everything).
type WritebackStarter interface {
	StartWriteback(off, n int64)
}

// Object is an open object read by ranges.
type Object interface {
	io.ReaderAt
	// Size is the object's size in bytes.
	Size() (int64, error)
	Close() error
}
