package lance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
)

// Compaction and cleanup checked with real Lance (pylance), as the other
// pylance tests: $PERSISTING_PYLANCE_PYTHON or the project's venv.

func simpleRec(t testing.TB, start, n int) arrow.RecordBatch {
	t.Helper()
	s := schemaOf(t, `[["id","int64"],["s","utf8"],["f","float64"]]`)
	var rows []string
	for i := start; i < start+n; i++ {
		sv := `"s` + strconv.Itoa(i) + `"`
		if i%6 == 5 {
			sv = "null"
		}
		rows = append(rows, fmt.Sprintf(`{"id":%d,"s":%s,"f":%d.5}`, i, sv, i))
	}
	return recordFromJSON(t, s, "["+strings.Join(rows, ",")+"]")
}

// flushes appends n fragments of rows rows (ids from start), each with the
// engine's watermark.
func flushes(t testing.TB, dir string, start, n, rows int) {
	t.Helper()
	for i := 0; i < n; i++ {
		rec := simpleRec(t, start+i*rows, rows)
		_, err := lance.Append(dir, rec, map[string]string{"persisting.wal_watermark": strconv.Itoa(start + (i+1)*rows - 1)}, lance.Options{})
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func pyJSON(t *testing.T, py, script string, args ...string) map[string]any {
	t.Helper()
	var out map[string]any
	b := runPython(t, py, script, args...)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("python output %q: %v", b, err)
	}
	return out
}

func TestCompactPylanceInterop(t *testing.T) {
	py := pylancePython(t)
	dir := filepath.Join(t.TempDir(), "ds")
	flushes(t, dir, 0, 30, 5)
	// Lance deletes some rows (deletion files), then we compact.
	runPython(t, py, `import lance, sys; lance.dataset(sys.argv[1]).delete("id % 7 = 0 or id = 33")`, dir)
	_, before := snapshot(t, dir)
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 64}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.FragmentsRemoved != 30 || res.FragmentsAdded != 2 || res.DeletedRowsDropped != 23 {
		t.Fatalf("%+v", res)
	}
	_, after := snapshot(t, dir)
	sameRows(t, before, after)
	// Lance reads every version as we do (the Rewrite version included).
	comparePylance(t, py, dir)
	out := pyJSON(t, py, `
import json, sys, lance
uri, v = sys.argv[1], int(sys.argv[2])
ds = lance.dataset(uri)
prev = lance.dataset(uri, version=v - 1)
assert ds.version == v, ds.version
txn = ds.read_transaction(v)
op = txn.operation
res = {"same": ds.to_table().equals(prev.to_table()), "op": type(op).__name__,
       "groups": len(op.groups), "old": sum(len(g.old_fragments) for g in op.groups),
       "new": [f.id for g in op.groups for f in g.new_fragments],
       "versions": [x["version"] for x in ds.versions()], "frags": [f.fragment_id for f in ds.get_fragments()],
       "config": ds.config().get("persisting.wal_watermark") if hasattr(ds, "config") else None,
       "take": ds.take([0, 1, 100]).to_pylist()}
# Lance appends and compacts on top of our Rewrite.
import lance as L
L.write_dataset(ds.to_table().slice(0, 4), uri, mode="append")
L.write_dataset(ds.to_table().slice(4, 3), uri, mode="append")
L.dataset(uri).optimize.compact_files()
d2 = L.dataset(uri)
res["after"] = d2.to_table().to_pylist()
res["after_count"] = d2.count_rows()
print(json.dumps(res))
`, dir, strconv.FormatUint(res.Version, 10))
	if out["same"] != true || out["op"] != "Rewrite" || out["groups"] != float64(2) || out["old"] != float64(30) {
		t.Fatalf("pylance: %v", out)
	}
	if fmt.Sprint(out["new"]) != fmt.Sprint(out["frags"]) || fmt.Sprint(out["new"]) != "[30 31]" {
		t.Fatalf("new fragment ids %v, fragments %v", out["new"], out["frags"])
	}
	if vs := out["versions"].([]any); vs[len(vs)-1] != float64(res.Version) {
		t.Fatalf("versions %v", vs)
	}
	if w := out["config"]; w != nil && w != "149" {
		t.Fatalf("watermark seen by pylance: %v", w)
	}
	// After Lance's own append and compaction, we read what Lance reads.
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Config()["persisting.wal_watermark"] != "149" {
		t.Fatalf("config after Lance's compaction: %v", d.Config())
	}
	ours := readRows(t, d, 0, d.CountRows())
	if !reflect.DeepEqual(jsonNorm(t, ours), out["after"]) || float64(len(ours)) != out["after_count"] {
		t.Fatalf("after Lance's append+compaction: ours %d rows, Lance %v", len(ours), out["after_count"])
	}
	// And we compact again on top of Lance's versions.
	flushes(t, dir, 1000, 3, 2)
	_, before = snapshot(t, dir)
	if _, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	_, after = snapshot(t, dir)
	sameRows(t, before, after)
	comparePylance(t, py, dir)
}

// A BTREE index built by Lance covers the first fragments: our compaction
// leaves them alone, merges the rest, and the index still answers.
func TestCompactKeepsPylanceIndex(t *testing.T) {
	py := pylancePython(t)
	dir := filepath.Join(t.TempDir(), "ds")
	flushes(t, dir, 0, 10, 5)
	runPython(t, py, `import lance, sys; lance.dataset(sys.argv[1]).create_scalar_index("id", "BTREE", name="id_idx")`, dir)
	flushes(t, dir, 50, 10, 5)
	_, before := snapshot(t, dir)
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedIndexed != 10 || res.FragmentsRemoved != 10 || res.FragmentsAdded != 1 {
		t.Fatalf("%+v", res)
	}
	_, after := snapshot(t, dir)
	sameRows(t, before, after)
	out := pyJSON(t, py, `
import json, sys, lance
ds = lance.dataset(sys.argv[1])
idx = ds.list_indices()
plan = ds.scanner(filter="id = 7").explain_plan()
res = {"indices": [i["name"] for i in idx], "plan": plan,
       "hit": ds.to_table(filter="id = 7").to_pylist(), "hit2": ds.to_table(filter="id = 77").to_pylist(),
       "range": ds.to_table(filter="id >= 45 and id < 55").column("id").to_pylist(),
       "stats": ds.stats.index_stats("id_idx")["num_indexed_rows"]}
ds.optimize.compact_files()
d2 = lance.dataset(sys.argv[1])
res["after"] = d2.to_table(filter="id = 7").to_pylist()
res["count"] = d2.count_rows()
print(json.dumps(res))
`, dir)
	if fmt.Sprint(out["indices"]) != "[id_idx]" || !strings.Contains(fmt.Sprint(out["plan"]), "ScalarIndexQuery") {
		t.Fatalf("index after our compaction: %v", out)
	}
	if len(out["hit"].([]any)) != 1 || len(out["hit2"].([]any)) != 1 || fmt.Sprint(out["range"]) != "[45 46 47 48 49 50 51 52 53 54]" {
		t.Fatalf("indexed queries: %v", out)
	}
	if out["stats"] != float64(50) || len(out["after"].([]any)) != 1 || out["count"] != float64(100) {
		t.Fatalf("index stats / Lance compaction after ours: %v", out)
	}
	d, err := lance.Open(dir, lance.Options{})
	if err != nil || d.CountRows() != 100 {
		t.Fatalf("%v", err)
	}
}

// Concurrent appenders: a Lance append lands between our planning and our
// commit (we rebase), and a Lance append built on the version before our
// Rewrite is committed after it (Lance rebases).
func TestCompactConcurrentPylanceAppend(t *testing.T) {
	py := pylancePython(t)
	dir := filepath.Join(t.TempDir(), "ds")
	flushes(t, dir, 0, 10, 3)
	_, before := snapshot(t, dir)
	hook := &hookFS{FS: vfs.Default, t: t}
	hook.beforeLink = func() {
		runPython(t, py, `import lance, sys, pyarrow as pa
ds = lance.dataset(sys.argv[1])
lance.write_dataset(ds.to_table().slice(0, 2), sys.argv[1], mode="append")`, dir)
	}
	res, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{FS: hook})
	if err != nil {
		t.Fatal(err)
	}
	if res.ReadVersion != 10 || res.Version != 12 || res.Dataset.CountRows() != 32 {
		t.Fatalf("%+v", res)
	}
	var want []map[string]any
	json.Unmarshal([]byte(before[0]), &want)
	got := readRows(t, res.Dataset, 0, 32)
	if !reflect.DeepEqual(got[:30], want) || got[30]["id"] != float64(0) || got[31]["id"] != float64(1) {
		t.Fatalf("rows after rebase over Lance's append")
	}
	// Lance commits an append planned on version 12 after our next Rewrite.
	flushes(t, dir, 100, 4, 2)
	out := pyJSON(t, py, `
import json, sys, lance
uri = sys.argv[1]
ds = lance.dataset(uri)
frag = lance.fragment.LanceFragment.create(uri, ds.to_table().slice(2, 3))
print(json.dumps({"read_version": ds.version, "frag": frag.to_json() if hasattr(frag, "to_json") else None}))
`, dir)
	readV := int64(out["read_version"].(float64))
	if _, err := lance.Compact(context.Background(), dir, lance.CompactOptions{}, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	out = pyJSON(t, py, `
import json, sys, lance
uri, rv = sys.argv[1], int(sys.argv[2])
ds = lance.dataset(uri, version=rv)
frag = lance.fragment.LanceFragment.create(uri, ds.to_table().slice(2, 3), data_storage_version="2.0")
d = lance.LanceDataset.commit(uri, lance.LanceOperation.Append([frag]), read_version=rv)
print(json.dumps({"version": d.version, "count": d.count_rows(), "ids": d.to_table().column("id").to_pylist()}))
`, dir, strconv.FormatInt(readV, 10))
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []any{}
	for _, r := range readRows(t, d, 0, d.CountRows()) {
		ids = append(ids, r["id"])
	}
	if out["count"] != float64(43) || !reflect.DeepEqual(ids, out["ids"]) || float64(d.Version()) != out["version"] {
		t.Fatalf("Lance's append over our Rewrite: %v; ours %v", out, ids)
	}
}

// copyTree copies a dataset keeping modification times (cleanup looks at
// them).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, rel), b, 0o644); err != nil {
			return err
		}
		return os.Chtimes(filepath.Join(dst, rel), info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// cleanupFixture builds a dataset with everything cleanup meets: many
// versions, Lance deletion files, our compaction, a tag on an old version,
// leftovers of failed commits (old and fresh).
func cleanupFixture(t *testing.T, py string) string {
	dir := filepath.Join(t.TempDir(), "ds")
	flushes(t, dir, 0, 12, 4)
	runPython(t, py, `import lance, sys
ds = lance.dataset(sys.argv[1])
ds.delete("id % 5 = 0")
lance.dataset(sys.argv[1]).tags.create("keep", 3)`, dir)
	if _, err := lance.Compact(context.Background(), dir, lance.CompactOptions{TargetRows: 20}, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	flushes(t, dir, 100, 3, 4)
	old := time.Now().Add(-8 * 24 * time.Hour)
	for _, f := range []string{"data/oldorphan.lance", "_transactions/0-old.txn", "_deletions/99-1-1.arrow", "data/neworphan.lance", "data/notes.txt"} {
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, []byte("leftover"), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "old") || strings.Contains(f, "99-") {
			os.Chtimes(p, old, old)
		}
	}
	return dir
}

// Our Cleanup removes exactly what pylance's cleanup_old_versions removes
// from a copy of the same dataset, for a count rule and for an age rule.
func TestCleanupMatchesPylance(t *testing.T) {
	py := pylancePython(t)
	src := cleanupFixture(t, py)
	for _, tc := range []struct {
		name string
		opts lance.CleanupOptions
		py   string
	}{
		{"keep2", lance.CleanupOptions{KeepLast: 2}, "retain_versions=2"},
		{"keep5", lance.CleanupOptions{KeepLast: 5}, "retain_versions=5"},
		{"keep2unverified", lance.CleanupOptions{KeepLast: 2, DeleteUnverified: true}, "retain_versions=2, delete_unverified=True"},
		{"age", lance.CleanupOptions{OlderThan: time.Microsecond}, "older_than=timedelta(microseconds=1)"},
		{"unverified", lance.CleanupOptions{OlderThan: time.Microsecond, DeleteUnverified: true}, "older_than=timedelta(microseconds=1), delete_unverified=True"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			theirs, ours := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			copyTree(t, src, theirs)
			copyTree(t, src, ours)
			out := pyJSON(t, py, `
import json, sys, lance
from datetime import timedelta
s = lance.dataset(sys.argv[1]).cleanup_old_versions(`+tc.py+`, error_if_tagged_old_versions=False)
print(json.dumps({"bytes": s.bytes_removed, "versions": s.old_versions}))`, theirs)
			stats, err := lance.Cleanup(context.Background(), ours, tc.opts, lance.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a, b := listTree(t, theirs), listTree(t, ours)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("remaining files differ:\npylance %v\n   ours %v\nwe removed %v", a, b, stats.Removed)
			}
			if out["versions"] != float64(stats.VersionsRemoved) || out["bytes"] != float64(stats.BytesRemoved) {
				t.Errorf("stats: pylance %v, ours %+v", out, stats)
			}
			// Every kept version, the tagged one included, still reads.
			for _, v := range stats.Kept {
				d, err := lance.OpenVersion(ours, v, lance.Options{})
				if err != nil || int64(len(readRows(t, d, 0, d.CountRows()))) != d.CountRows() {
					t.Fatalf("kept version %d: %v", v, err)
				}
			}
			if !slices.Contains(stats.Kept, 3) {
				t.Fatalf("tagged version 3 removed: kept %v", stats.Kept)
			}
			comparePylance(t, py, ours)
		})
	}
}
