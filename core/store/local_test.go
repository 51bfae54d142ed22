package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/vfs/errorfs"
)

func mustPut(t *testing.T, s Store, name, data string) {
	t.Helper()
	if err := s.Put(name, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s Store, name string) string {
	t.Helper()
	b, err := s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedList(t *testing.T, s Store, dir string) []string {
	t.Helper()
	names, err := s.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestPutIfAbsentRefusesExisting(t *testing.T) {
	s := Local(nil, t.TempDir())
	if err := s.PutIfAbsent("_versions/1.manifest", []byte("first")); err != nil {
		t.Fatal(err)
	}
	err := s.PutIfAbsent("_versions/1.manifest", []byte("second"))
	if !errors.Is(err, os.ErrExist) || errors.Is(err, ErrUncertain) {
		t.Fatalf("second PutIfAbsent: %v, want an error wrapping os.ErrExist", err)
	}
	if got := mustGet(t, s, "_versions/1.manifest"); got != "first" {
		t.Fatalf("object is %q after a refused PutIfAbsent", got)
	}
	// Put replaces; PutIfAbsent still refuses what Put wrote.
	mustPut(t, s, "_versions/2.manifest", "put")
	if err := s.PutIfAbsent("_versions/2.manifest", nil); !errors.Is(err, os.ErrExist) {
		t.Fatalf("PutIfAbsent over Put: %v", err)
	}
	// No staging file is left behind, won or lost.
	if got := sortedList(t, s, "_versions"); !slices.Equal(got, []string{"1.manifest", "2.manifest"}) {
		t.Fatalf("_versions holds %q", got)
	}
}

func TestRangedReads(t *testing.T) {
	s := Local(nil, t.TempDir())
	data := []byte("0123456789abcdef")
	if err := s.MkdirAll("data"); err != nil { // Create makes no directory
		t.Fatal(err)
	}
	w, err := s.Create("data/f.lance")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range [][]byte{data[:5], data[5:]} {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open("data/f.lance")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if n, err := o.Size(); err != nil || n != int64(len(data)) {
		t.Fatalf("Size = %d, %v", n, err)
	}
	for _, r := range []struct{ off, n int }{{0, 4}, {4, 8}, {12, 4}, {15, 1}} {
		buf := make([]byte, r.n)
		if _, err := o.ReadAt(buf, int64(r.off)); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", r.off, r.n, err)
		}
		if !bytes.Equal(buf, data[r.off:r.off+r.n]) {
			t.Fatalf("ReadAt(%d, %d) = %q", r.off, r.n, buf)
		}
	}
	// A range past the end is short and says io.EOF.
	buf := make([]byte, 8)
	if n, err := o.ReadAt(buf, 12); n != 4 || !errors.Is(err, io.EOF) || string(buf[:n]) != "cdef" {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if got := mustGet(t, s, "data/f.lance"); got != string(data) {
		t.Fatalf("Get = %q", got)
	}
	if _, err := s.Open("data/missing.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing object: %v", err)
	}
	if _, err := s.Get("data/missing.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get of a missing object: %v", err)
	}
}

func TestListAndRemove(t *testing.T) {
	root := t.TempDir()
	s := Local(nil, root)
	mustPut(t, s, "data/a.lance", "a")
	mustPut(t, s, "data/b.lance", "b")
	mustPut(t, s, "data/sub/c.lance", "c") // a sub-directory is not listed
	aborted, err := s.Create("data/partial.lance")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aborted.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if got := sortedList(t, s, "data"); !slices.Equal(got, []string{"a.lance", "b.lance"}) {
		t.Fatalf("List(data) = %q", got)
	}
	if got := sortedList(t, s, "data/sub"); !slices.Equal(got, []string{"c.lance"}) {
		t.Fatalf("List(data/sub) = %q", got)
	}
	if _, err := s.List("nothing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("List of a missing directory: %v", err)
	}
	if err := s.Remove("data/a.lance"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data/a.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if got := sortedList(t, s, "data"); !slices.Equal(got, []string{"b.lance"}) {
		t.Fatalf("List after Remove = %q", got)
	}
	if err := s.Remove("data/a.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second Remove: %v", err)
	}
	// Names are slash-separated keys below the root.
	if _, err := os.Stat(filepath.Join(root, "data", "b.lance")); err != nil {
		t.Fatal(err)
	}
	if s.Root() != root {
		t.Fatalf("Root = %q", s.Root())
	}
}

// A fault of the filesystem under the store surfaces as an error naming the
// path it hit; a PutIfAbsent that fails before the link leaves no object.
func TestFaultsNameThePath(t *testing.T) {
	root := t.TempDir()
	efs := errorfs.Wrap(vfs.Default)
	s := Local(efs, root)
	mustPut(t, s, "data/f.lance", "0123456789")
	manifest := filepath.Join(root, "_versions", "1.manifest")
	isManifest := func(p string) bool { return strings.HasPrefix(p, manifest) }
	eio := errors.New("EIO")
	for _, c := range []struct {
		name string
		rule errorfs.Rule
		call func() error
		path string // the error names it
	}{
		{"put-if-absent write", errorfs.Rule{Op: errorfs.OpWrite, Match: isManifest, Err: eio},
			func() error { return s.PutIfAbsent("_versions/1.manifest", []byte("m")) }, manifest},
		{"put-if-absent sync", errorfs.Rule{Op: errorfs.OpSync, Match: isManifest, Err: eio},
			func() error { return s.PutIfAbsent("_versions/1.manifest", []byte("m")) }, manifest},
		{"put-if-absent link", errorfs.Rule{Op: errorfs.OpLink, Err: eio},
			func() error { return s.PutIfAbsent("_versions/1.manifest", []byte("m")) }, manifest},
		{"put sync", errorfs.Rule{Op: errorfs.OpSync, Err: eio},
			func() error { return s.Put("data/g.lance", []byte("g")) }, filepath.Join(root, "data", "g.lance")},
		{"get read", errorfs.Rule{Op: errorfs.OpRead, Err: eio},
			func() error { _, err := s.Get("data/f.lance"); return err }, filepath.Join(root, "data", "f.lance")},
		{"ranged read", errorfs.Rule{Op: errorfs.OpRead, Err: eio},
			func() error {
				o, err := s.Open("data/f.lance")
				if err != nil {
					return err
				}
				defer o.Close()
				_, err = o.ReadAt(make([]byte, 4), 2)
				return err
			}, filepath.Join(root, "data", "f.lance")},
		{"list", errorfs.Rule{Op: errorfs.OpReadDir, Err: eio},
			func() error { _, err := s.List("data"); return err }, filepath.Join(root, "data")},
		{"remove", errorfs.Rule{Op: errorfs.OpRemove, Err: eio},
			func() error { return s.Remove("data/f.lance") }, filepath.Join(root, "data", "f.lance")},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := efs.Inject(c.rule)
			defer efs.ClearRules()
			err := c.call()
			if in.Fired() != 1 || !errors.Is(err, eio) || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("fired %d, error %v; want EIO naming %s", in.Fired(), err, c.path)
			}
		})
	}
	// None of the failed PutIfAbsent calls left an object or a staging file.
	if names, err := s.List("_versions"); err != nil || len(names) != 0 {
		t.Fatalf("_versions holds %q (%v)", names, err)
	}
	if got := mustGet(t, s, "data/f.lance"); got != "0123456789" {
		t.Fatalf("data/f.lance = %q", got)
	}
}

// A PutIfAbsent whose object was linked but whose directory sync failed
// cannot know whether the object survives a crash: ErrUncertain, naming the
// object; the object is there.
func TestPutIfAbsentSyncDirFailureIsUncertain(t *testing.T) {
	root := t.TempDir()
	efs := errorfs.Wrap(vfs.Default)
	s := Local(efs, root)
	dir := filepath.Join(root, "_versions")
	in := efs.Inject(errorfs.Rule{Op: errorfs.OpSyncDir, Match: func(p string) bool { return p == dir }, Err: errors.New("EIO")})
	err := s.PutIfAbsent("_versions/1.manifest", []byte("m"))
	if in.Fired() != 1 || !errors.Is(err, ErrUncertain) || errors.Is(err, os.ErrExist) ||
		!strings.Contains(err.Error(), filepath.Join(dir, "1.manifest")) {
		t.Fatalf("fired %d, error %v", in.Fired(), err)
	}
	efs.ClearRules()
	if got := mustGet(t, s, "_versions/1.manifest"); got != "m" {
		t.Fatalf("object %q", got)
	}
	if err := s.PutIfAbsent("_versions/1.manifest", []byte("again")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("retry: %v", err)
	}
}
