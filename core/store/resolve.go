package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/persisting/persisting/core/vfs"
)

// Resolver opens the Store of a path: an s3:// URI through one S3 client
// shared by every Store it opens (built on first use from the storage
// options), anything else as Local on fs. Stores are cached by path, so
// the sizes an S3 store learned are kept. Its For method is what
// table.Options.Store wants.
type Resolver struct {
	fs   vfs.FS
	opts map[string]string

	mu     sync.Mutex
	client *S3Client
	stores map[string]Store
}

// NewResolver checks the storage options (an unknown name is an error) and
// returns a Resolver that uses them for s3:// paths.
func NewResolver(fs vfs.FS, storageOptions map[string]string) (*Resolver, error) {
	if _, err := S3OptionsFrom(storageOptions); err != nil {
		return nil, err
	}
	return &Resolver{fs: fs, opts: storageOptions, stores: map[string]Store{}}, nil
}

// Open returns the Store of path.
func (r *Resolver) Open(path string) (Store, error) {
	if !IsURI(path) {
		return Local(r.fs, path), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.stores[path]; ok {
		return st, nil
	}
	bucket, prefix, err := ParseS3URI(path)
	if err != nil {
		return nil, err
	}
	if r.client == nil {
		o, err := S3OptionsFrom(r.opts)
		if err != nil {
			return nil, err
		}
		if r.client, err = NewS3Client(context.Background(), o); err != nil {
			return nil, err
		}
	}
	st := r.client.Store(bucket, prefix)
	r.stores[path] = st
	return st, nil
}

// For is Open for callers that cannot take an error (table.Options.Store):
// a path that cannot be opened gives a Store whose every call fails with
// the reason.
func (r *Resolver) For(path string) Store {
	st, err := r.Open(path)
	if err != nil {
		return failed{root: path, err: err}
	}
	return st
}

type failed struct {
	root string
	err  error
}

func (f failed) fail() error                      { return fmt.Errorf("store %s: %w", f.root, f.err) }
func (f failed) Root() string                     { return f.root }
func (f failed) Create(string) (Writer, error)    { return nil, f.fail() }
func (f failed) Put(string, []byte) error         { return f.fail() }
func (f failed) PutIfAbsent(string, []byte) error { return f.fail() }
func (f failed) Open(string) (Object, error)      { return nil, f.fail() }
func (f failed) Get(string) ([]byte, error)       { return nil, f.fail() }
func (f failed) List(string) ([]string, error)    { return nil, f.fail() }
func (f failed) Remove(string) error              { return f.fail() }
func (f failed) MkdirAll(string) error            { return f.fail() }
func (f failed) SyncDir(string) error             { return f.fail() }
func (f failed) SyncRoot() error                  { return f.fail() }
func (f failed) ListInfo(string) ([]Info, error)  { return nil, f.fail() }
