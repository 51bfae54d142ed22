package lance_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
)

var errInjected = errors.New("injected fault")

// faultFS fails SyncDir of directories ending in syncDirSuffix and Sync of
// files whose name contains syncFile.
type faultFS struct {
	vfs.FS
	syncDirSuffix string
	syncFile      string
}

type faultFile struct {
	vfs.File
	fail bool
}

func (f faultFile) Sync() error {
	if f.fail {
		return errInjected
	}
	return f.File.Sync()
}

func (fs *faultFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return faultFile{File: f, fail: fs.syncFile != "" && strings.Contains(name, fs.syncFile)}, nil
}

func (fs *faultFS) SyncDir(dir string) error {
	if fs.syncDirSuffix != "" && strings.HasSuffix(dir, fs.syncDirSuffix) {
		return errInjected
	}
	return fs.FS.SyncDir(dir)
}

func TestDataFileSyncFailureCommitsNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	if _, err := lance.Append(dir, genRecord(0, 3), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := lance.Append(dir, genRecord(3, 3), nil, lance.Options{FS: &faultFS{FS: vfs.Default, syncFile: ".lance"}})
	if !errors.Is(err, errInjected) {
		t.Fatalf("Append: %v", err)
	}
	d, err := lance.Open(dir, lance.Options{})
	if err != nil || d.Version() != 1 {
		t.Fatalf("after failed append: %v, %v", d, err)
	}
	if n := countFiles(t, filepath.Join(dir, "data")); n != 1 {
		t.Fatalf("%d data files: the unreferenced one must be removed", n)
	}
}

func TestUncertainCommitKeepsFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	_, err := lance.Append(dir, genRecord(0, 3), nil, lance.Options{FS: &faultFS{FS: vfs.Default, syncDirSuffix: "_versions"}})
	if !errors.Is(err, lance.ErrCommitUncertain) {
		t.Fatalf("Append: %v", err)
	}
	// The link happened, so the version is visible and must stay readable.
	d, err := lance.Open(dir, lance.Options{})
	if err != nil || d.CountRows() != 3 || len(readRows(t, d, 0, 3)) != 3 {
		t.Fatalf("after uncertain commit: %v", err)
	}
}
