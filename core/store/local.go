package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"

	"github.com/persisting/persisting/core/vfs"
)

// Local is a Store on a directory of a vfs.FS (vfs.Default when fs is nil).
// Files are fsynced before they count as written and directories after
// names in them change; PutIfAbsent writes a staging file and hard-links it
// into place, which fails when the name exists (a rename would replace it).
func Local(fs vfs.FS, root string) Store {
	if fs == nil {
		fs = vfs.Default
	}
	return &local{fs: fs, root: root}
}

type local struct {
	fs   vfs.FS
	root string
}

func (s *local) Root() string { return s.root }

func (s *local) path(name string) string { return filepath.Join(s.root, filepath.FromSlash(name)) }

func (s *local) Create(name string) (Writer, error) {
	p := s.path(name)
	f, err := s.fs.Create(p)
	if err != nil {
		return nil, err
	}
	return &localWriter{fs: s.fs, f: f, path: p}, nil
}

type localWriter struct {
	fs   vfs.FS
	f    vfs.File
	path string
}

func (w *localWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

func (w *localWriter) Commit() error {
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	if err := w.f.Close(); err != nil {
		w.fs.Remove(w.path)
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}

func (w *localWriter) Abort() {
	w.f.Close()
	w.fs.Remove(w.path)
}

func (s *local) Put(name string, data []byte) error {
	if err := s.fs.MkdirAll(filepath.Dir(s.path(name)), 0o755); err != nil {
		return err
	}
	return vfs.WriteFileSync(s.fs, s.path(name), data)
}

func (s *local) PutIfAbsent(name string, data []byte) error {
	final := s.path(name)
	dir := filepath.Dir(final)
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The staging name does not end like the final one, so readers
	// listing the directory ignore it.
	tmp := final + "-" + stagingSuffix()
	w, err := s.Create(filepath.ToSlash(mustRel(s.root, tmp)))
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	if err := s.fs.Link(tmp, final); err != nil {
		s.fs.Remove(tmp) // staging name: invisible to readers, nothing refers to it
		return fmt.Errorf("link %s: %w", final, err)
	}
	// The object exists once the link is durable. A staging file left
	// behind by a failed remove only costs disk space.
	_ = s.fs.Remove(tmp)
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("%w: sync %s after linking %s: %w", ErrUncertain, dir, final, err)
	}
	return nil
}

func mustRel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		panic(err) // p is always below root
	}
	return r
}

func stagingSuffix() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func (s *local) Open(name string) (Object, error) {
	f, err := s.fs.Open(s.path(name))
	if err != nil {
		return nil, err
	}
	return localObject{f}, nil
}

type localObject struct{ vfs.File }

func (o localObject) Size() (int64, error) {
	st, err := o.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (s *local) Get(name string) ([]byte, error) {
	f, err := s.fs.Open(s.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (s *local) List(dir string) ([]string, error) {
	ents, err := s.fs.ReadDir(s.path(dir))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (s *local) Remove(name string) error { return s.fs.Remove(s.path(name)) }

func (s *local) MkdirAll(dir string) error { return s.fs.MkdirAll(s.path(dir), 0o755) }

func (s *local) SyncDir(dir string) error { return s.fs.SyncDir(s.path(dir)) }

func (s *local) SyncRoot() error {
	if err := s.fs.SyncDir(filepath.Dir(filepath.Clean(s.root))); err != nil {
		return err
	}
	return s.fs.SyncDir(s.root)
}
