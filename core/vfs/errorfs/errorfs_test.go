package errorfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/persisting/persisting/core/vfs"
)

func mustWrite(t *testing.T, f vfs.File, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInjectNth(t *testing.T) {
	dir := t.TempDir()
	fs := Wrap(vfs.Default)
	in := fs.Inject(Rule{Op: OpWrite, N: 2, Match: func(p string) bool { return strings.HasSuffix(p, ".log") }})
	other, err := fs.Create(filepath.Join(dir, "x.dat"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, other, "a")
	mustWrite(t, other, "b") // does not match the predicate
	f, err := fs.Create(filepath.Join(dir, "x.log"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "1")
	if _, err := f.Write([]byte("2")); !errors.Is(err, ErrInjected) {
		t.Fatalf("second write: got %v, want ErrInjected", err)
	}
	mustWrite(t, f, "3") // not sticky
	if in.Fired() != 1 || fs.Count(OpWrite) != 5 {
		t.Fatalf("fired %d, writes %d", in.Fired(), fs.Count(OpWrite))
	}

	sticky := fs.Inject(Rule{Op: OpSync, Sticky: true, Err: errors.New("EIO")})
	for i := 0; i < 3; i++ {
		if err := f.Sync(); err == nil || err.Error() != "sync "+f.Name()+": EIO" {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	if sticky.Fired() != 3 {
		t.Fatal(sticky.Fired())
	}
	f.Close()
	other.Close()
}

func TestPartialWrite(t *testing.T) {
	dir := t.TempDir()
	fs := Wrap(vfs.Default)
	fs.Inject(Rule{Op: OpWrite, Partial: 3})
	path := filepath.Join(dir, "f")
	f, _ := fs.Create(path)
	n, err := f.Write([]byte("abcdef"))
	if n != 3 || !errors.Is(err, ErrInjected) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	f.Close()
	if got := readFile(t, path); got != "abc" {
		t.Fatalf("got %q", got)
	}
}

func TestCrashDropsUnsyncedData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := vfs.WriteFileSync(vfs.Default, path, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	fs := Wrap(vfs.Default)
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 2)
	mustWrite(t, f, "abc")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "def")                // unsynced append
	f.Seek(2, 0)                          // unsynced overwrite of synced bytes
	mustWrite(t, f, "XY")                 //
	if err := f.Truncate(5); err != nil { // unsynced truncation
		t.Fatal(err)
	}
	mustWrite(t, f, "ZZZZZZZZZZZZZZZ")
	if err := fs.Crash(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "0123456789abc" {
		t.Fatalf("after crash: %q", got)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("write after crash: %v", err)
	}
}

func TestCrashUndoesUnsyncedEntries(t *testing.T) {
	dir := t.TempDir()
	fs := Wrap(vfs.Default)
	keep := filepath.Join(dir, "keep")
	if err := vfs.WriteFileSync(fs, keep, []byte("k")); err != nil { // durable
		t.Fatal(err)
	}
	// Unsynced create + write + file sync: the data is synced, the name not.
	tmp := filepath.Join(dir, "new.tmp")
	f, _ := fs.Create(tmp)
	mustWrite(t, f, "n")
	f.Sync()
	f.Close()
	if err := fs.Rename(tmp, filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(keep); err != nil {
		t.Fatal(err)
	}
	ents, _ := fs.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "new" {
		t.Fatalf("before crash: %v", ents)
	}
	if err := fs.Crash(); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "keep" || readFile(t, keep) != "k" {
		t.Fatalf("after crash: %v", ents)
	}

	// The same steps with SyncDir survive a crash, and leave no stash.
	f, _ = fs.Create(tmp)
	mustWrite(t, f, "n")
	f.Sync()
	f.Close()
	fs.Rename(tmp, filepath.Join(dir, "new"))
	fs.Remove(keep)
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	ents, _ = os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "new" || readFile(t, filepath.Join(dir, "new")) != "n" {
		t.Fatalf("after synced crash: %v", ents)
	}
}

func TestCrashRenameOverExisting(t *testing.T) {
	dir := t.TempDir()
	fs := Wrap(vfs.Default)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	vfs.WriteFileSync(fs, a, []byte("A"))
	vfs.WriteFileSync(fs, b, []byte("B"))
	if err := fs.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	if readFile(t, a) != "A" || readFile(t, b) != "B" {
		t.Fatal("rename over existing not undone")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("stash left behind: %v", ents)
	}
}

func TestInjectedSyncKeepsDataUnsynced(t *testing.T) {
	dir := t.TempDir()
	fs := Wrap(vfs.Default)
	path := filepath.Join(dir, "f")
	vfs.WriteFileSync(fs, path, []byte("x"))
	f, _ := fs.OpenFile(path, os.O_WRONLY, 0)
	f.Seek(0, 2)
	mustWrite(t, f, "y")
	fs.Inject(Rule{Op: OpSync})
	if err := f.Sync(); err == nil {
		t.Fatal("sync succeeded")
	}
	fs.Crash()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, []byte("x")) {
		t.Fatalf("got %q", got)
	}
}
