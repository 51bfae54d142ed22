package lance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/vfs/errorfs"
)

// checkWhole opens every version of the dataset and reads all its rows, and
// returns the latest version's rows as JSON.
func checkWhole(t *testing.T, dir string) string {
	t.Helper()
	vs, err := lance.ListVersions(dir, lance.Options{})
	if err != nil {
		t.Fatalf("ListVersions: %v", err)
	}
	for _, v := range vs {
		d, err := lance.OpenVersion(dir, v.Version, lance.Options{})
		if err != nil {
			t.Fatalf("version %d: %v", v.Version, err)
		}
		recs, err := d.ReadRange(0, d.CountRows())
		if err != nil {
			t.Fatalf("version %d: ReadRange: %v", v.Version, err)
		}
		for _, r := range recs {
			r.Release()
		}
	}
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(readRows(t, d, 0, d.CountRows()))
	return string(b)
}

var faultOps = []errorfs.Op{errorfs.OpCreate, errorfs.OpOpen, errorfs.OpRead, errorfs.OpWrite, errorfs.OpSync,
	errorfs.OpClose, errorfs.OpRemove, errorfs.OpLink, errorfs.OpMkdirAll, errorfs.OpReadDir, errorfs.OpStat, errorfs.OpSyncDir}

// runFaults runs step on a fresh copy of base for every operation and every
// call of it that step makes, with that call failing and a power loss right
// after; the dataset must then open with every version whole and the same
// rows, and a fault-free retry must succeed.
func runFaults(t *testing.T, base string, step func(dir string, fs vfs.FS) error) {
	want := checkWhole(t, base)
	cases := 0
	for _, op := range faultOps {
		for n := 1; n < 500; n++ {
			dir := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d", op, n))
			copyTree(t, base, dir)
			efs := errorfs.Wrap(vfs.Default)
			inj := efs.Inject(errorfs.Rule{Op: op, N: n})
			err := step(dir, efs)
			if inj.Fired() == 0 {
				if err != nil {
					t.Fatalf("%s: no fault injected, yet %v", op, err)
				}
				break
			}
			cases++
			if err := efs.Crash(); err != nil {
				t.Fatalf("%s #%d: crash: %v", op, n, err)
			}
			if got := checkWhole(t, dir); got != want {
				t.Fatalf("%s #%d (step error %v): rows changed", op, n, err)
			}
			if err := step(dir, vfs.Default); err != nil {
				t.Fatalf("%s #%d: retry: %v", op, n, err)
			}
			if got := checkWhole(t, dir); got != want {
				t.Fatalf("%s #%d: rows changed after retry", op, n)
			}
		}
	}
	t.Logf("%d injected faults", cases)
}

func TestCompactFaults(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	flushes(t, base, 0, 8, 4)
	runFaults(t, base, func(dir string, fs vfs.FS) error {
		_, err := lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 12}, lance.Options{FS: fs})
		return err
	})
}

func TestCleanupFaults(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	flushes(t, base, 0, 6, 4)
	if _, err := lance.Compact(context.Background(), base, lance.CompactOptions{}, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	flushes(t, base, 100, 2, 3)
	os.WriteFile(filepath.Join(base, "data", "orphan.lance"), []byte("x"), 0o644)
	runFaults(t, base, func(dir string, fs vfs.FS) error {
		_, err := lance.Cleanup(context.Background(), dir, lance.CleanupOptions{KeepLast: 2, DeleteUnverified: true}, lance.Options{FS: fs})
		return err
	})
}

// Cleanup never removes the latest, a tagged or a pinned version; time travel
// to them works; removed versions are gone; files only removed versions
// used are gone; a fresh unreferenced file stays (grace) unless unverified
// files may go.
func TestCleanupKeepsLatestTaggedPinned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	flushes(t, dir, 0, 10, 2)
	if _, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "_refs", "tags"), 0o755)
	os.WriteFile(filepath.Join(dir, "_refs", "tags", "t.json"), []byte(`{"branch": null, "version": 3, "manifestSize": 1}`), 0o644)
	fresh := filepath.Join(dir, "data", "inflight.lance")
	os.WriteFile(fresh, []byte("x"), 0o644)
	stats, err := lance.Cleanup(context.Background(), dir, lance.CleanupOptions{
		KeepLast: 1, Pinned: []uint64{5}, Pin: func(v uint64) bool { return v == 7 }}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stats.Kept, []uint64{3, 5, 7, 11}) || stats.VersionsRemoved != 7 || stats.BytesRemoved <= 0 {
		t.Fatalf("%+v", stats)
	}
	for _, v := range []uint64{3, 5, 7, 11} {
		d, err := lance.OpenVersion(dir, v, lance.Options{})
		if err != nil || int64(len(readRows(t, d, 0, 1<<30))) != d.CountRows() || d.CountRows() != int64(min(v, 10)*2) {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	if _, err := lance.OpenVersion(dir, 4, lance.Options{}); !os.IsNotExist(err) && !isNotExist(err) {
		t.Fatalf("removed version 4: %v", err)
	}
	// Data files: 7 of kept versions 3, 5, 7 (fragments 0..6) + the compacted one + the fresh leftover.
	if n := countFiles(t, filepath.Join(dir, "data")); n != 9 {
		t.Fatalf("%d data files", n)
	}
	// Age rule alone keeps everything younger; unverified files may go.
	stats, err = lance.Cleanup(context.Background(), dir, lance.CleanupOptions{OlderThan: time.Hour}, lance.Options{})
	if err != nil || stats.FilesRemoved != 0 {
		t.Fatalf("%+v %v", stats, err)
	}
	stats, err = lance.Cleanup(context.Background(), dir, lance.CleanupOptions{KeepLast: 1, DeleteUnverified: true}, lance.Options{})
	if err != nil || !slices.Equal(stats.Kept, []uint64{3, 11}) {
		t.Fatalf("%+v %v", stats, err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("unverified leftover kept with DeleteUnverified")
	}
}

func isNotExist(err error) bool { return err != nil && errors.Is(err, os.ErrNotExist) }
