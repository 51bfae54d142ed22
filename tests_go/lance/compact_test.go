package lance_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
)

// appendN makes a dataset of n flushes of rows rows each (ids 0..n*rows-1),
// with the engine's watermark in the config of every version.
func appendN(t testing.TB, dir string, n, rows int, opts lance.Options) {
	t.Helper()
	for i := 0; i < n; i++ {
		rec := genRecord(i*rows, rows)
		_, err := lance.Append(dir, rec, map[string]string{"persisting.wal_watermark": itoa((i+1)*rows - 1)}, opts)
		rec.Release()
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// snapshot reads every live row of the latest version and a few offset
// ranges, as JSON, to compare before and after compaction.
func snapshot(t *testing.T, dir string) (*lance.Dataset, []string) {
	t.Helper()
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := d.CountRows()
	var out []string
	for _, r := range [][2]int64{{0, n}, {0, 1}, {n / 3, 17}, {n / 2, n}, {n - 1, 5}, {7, 3}} {
		b, _ := json.Marshal(readRows(t, d, r[0], r[1]))
		out = append(out, string(b))
	}
	return d, out
}

func sameRows(t *testing.T, before, after []string) {
	t.Helper()
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("range %d differs after compaction:\nbefore %.300s\nafter  %.300s", i, before[i], after[i])
		}
	}
}

func TestCompactKeepsRowsInOrder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	appendN(t, dir, 25, 4, lance.Options{})
	d0, before := snapshot(t, dir)
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 30}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 100 rows of 4-row fragments in groups of at most 30 rows: 7 rows per
	// ... 7 fragments of 28 rows and one of 16.
	if res.Version != d0.Version()+1 || res.FragmentsRemoved != 25 || res.FragmentsAdded != 4 || res.Groups != 4 {
		t.Fatalf("result %+v", res)
	}
	d1, after := snapshot(t, dir)
	sameRows(t, before, after)
	if d1.Config()["persisting.wal_watermark"] != "99" {
		t.Fatalf("config %v", d1.Config())
	}
	// Compacting again finds nothing to do (every fragment alone in its group).
	res2, err := lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 30}, lance.Options{})
	if err != nil || res2.Version != 0 || res2.Dataset.Version() != d1.Version() {
		t.Fatalf("second compaction: %+v, %v", res2, err)
	}
	// Time travel to the version before still reads the old fragments.
	old, err := lance.OpenVersion(dir, d0.Version(), lance.Options{})
	if err != nil || old.CountRows() != 100 {
		t.Fatalf("time travel: %v", err)
	}
	// Appends after the compaction go after the compacted rows.
	appendMore(t, dir, 100, 3)
	d2, err := lance.Open(dir, lance.Options{})
	if err != nil || d2.CountRows() != 103 || readRows(t, d2, 100, 1)[0]["id"] != float64(100) {
		t.Fatalf("append after compaction: %v", err)
	}
}

func appendMore(t *testing.T, dir string, start, n int) {
	t.Helper()
	rec := genRecord(start, n)
	defer rec.Release()
	if _, err := lance.Append(dir, rec, nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
}

// The pylance "mixed" fixture has Arrow deletion files, a Lance compaction
// and dictionary-encoded strings: compacting it drops the deleted rows and
// keeps every live row at its offset.
func TestCompactAppliesDeletions(t *testing.T) {
	dir := copyFixture(t, "mixed")
	d0, before := snapshot(t, dir)
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version == 0 || res.DeletedRowsDropped == 0 || res.FragmentsAdded != 1 {
		t.Fatalf("result %+v", res)
	}
	d1, after := snapshot(t, dir)
	sameRows(t, before, after)
	if d1.CountRows() != d0.CountRows() {
		t.Fatalf("rows %d, want %d", d1.CountRows(), d0.CountRows())
	}
}

func TestCompactMaxGroupsAndNothingToDo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	appendN(t, dir, 12, 5, lance.Options{})
	_, before := snapshot(t, dir)
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 10, MaxGroups: 2}, lance.Options{})
	if err != nil || res.Groups != 2 || res.FragmentsRemoved != 4 {
		t.Fatalf("%+v, %v", res, err)
	}
	_, after := snapshot(t, dir)
	sameRows(t, before, after)
	// Big fragments are not candidates.
	res, err = lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 5}, lance.Options{})
	if err != nil || res.Version != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestCompactCancelledLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	appendN(t, dir, 6, 5, lance.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := lance.Compact(ctx, dir, lance.CompactOptions{}, lance.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Compact: %v", err)
	}
	if n := countFiles(t, filepath.Join(dir, "data")); n != 6 {
		t.Fatalf("%d data files", n)
	}
}

// A concurrent Go appender commits between our read and our commit: the
// Rewrite is rebased onto it, and its rows come after the compacted ones.
func TestCompactRebasesOverConcurrentAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	appendN(t, dir, 10, 3, lance.Options{})
	_, before := snapshot(t, dir)
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		rec := genRecord(1000, 4)
		defer rec.Release()
		if _, err := lance.Append(dir, rec, map[string]string{"persisting.wal_watermark": "33"}, lance.Options{}); err != nil {
			t.Errorf("appender: %v", err)
		}
	}
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if res.ReadVersion != 10 || res.Version != 12 || res.Dataset.CountRows() != 34 {
		t.Fatalf("%+v", res)
	}
	if res.Dataset.Config()["persisting.wal_watermark"] != "33" {
		t.Fatalf("the appender's watermark was lost: %v", res.Dataset.Config())
	}
	d := res.Dataset
	rows := readRows(t, d, 0, 40)
	b, _ := json.Marshal(rows[:30])
	var all []map[string]any
	json.Unmarshal([]byte(before[0]), &all)
	if !reflect.DeepEqual(rows[:30], all) || rows[30]["id"] != float64(1000) {
		t.Fatalf("rows after rebase: %.200s", b)
	}
	if n := countFiles(t, filepath.Join(dir, "_transactions")); n != 12 {
		t.Fatalf("%d transaction files", n)
	}
}

// A concurrent Rewrite of the same fragments conflicts: typed error, our
// files removed, the other compaction's version intact.
func TestCompactConflictsWithConcurrentCompaction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	appendN(t, dir, 8, 3, lance.Options{})
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		if _, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{}); err != nil {
			t.Errorf("other compaction: %v", err)
		}
	}
	_, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{FS: fs})
	var ce *lance.ConflictError
	if !errors.As(err, &ce) || ce.ReadVersion != 8 {
		t.Fatalf("want a ConflictError, got %v", err)
	}
	if n := countFiles(t, filepath.Join(dir, "data")); n != 9 {
		t.Fatalf("%d data files: the loser's must be removed", n)
	}
	d, err := lance.Open(dir, lance.Options{})
	if err != nil || d.Version() != 9 || d.CountRows() != 24 {
		t.Fatalf("%v", err)
	}
	_ = os.Remove
}
