package lance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
)

// These tests check the evolved datasets with real Lance (pylance), the
// oracle of the format. They need a Python with pylance and pyarrow:
// $PERSISTING_PYLANCE_PYTHON (make test sets it to the project's venv), else
// python3. Without one they skip and say why; make test fails on that skip.

func pylancePython(t *testing.T) string {
	t.Helper()
	py, why := findPylance()
	if py == "" {
		t.Skipf("skipping: %s", why)
	}
	t.Logf("pylance %s", why)
	return py
}

// findPylance returns a Python with pylance, or "" and why there is none.
func findPylance() (py, why string) {
	var tried []string
	for _, py := range []string{os.Getenv("PERSISTING_PYLANCE_PYTHON"), "python3"} {
		if py == "" {
			continue
		}
		if _, err := exec.LookPath(py); err != nil {
			tried = append(tried, py+": not found")
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, py, "-c", "import lance, pyarrow; print(lance.__version__)").CombinedOutput()
		cancel()
		if err == nil {
			return py, strings.TrimSpace(string(out)) + " (" + py + ")"
		}
		tried = append(tried, py+": no pylance")
	}
	return "", fmt.Sprintf("no Python with pylance and pyarrow (set PERSISTING_PYLANCE_PYTHON); tried %v", tried)
}

func runPython(t *testing.T, py, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr)
	}
	return out
}

// pyReadAll prints, for every version of each dataset, what Lance reads:
// the schema, the row count, a full scan, a filtered scan, random access.
// One process for all datasets: starting Python and pylance takes seconds.
const pyReadAll = `
import json, sys, lance
out = {}
for p in sys.argv[1:]:
    out[p] = {}
    for v in lance.dataset(p).versions():
        d = lance.dataset(p, version=v["version"])
        n = d.count_rows()
        out[p][str(v["version"])] = {
            "schema": {f.name: str(f.type) for f in d.schema},
            "count": n,
            "rows": d.to_table().to_pylist(),
            "filtered": d.to_table(filter="id >= 1").to_pylist(),
            "taken": d.take([n - 1, 0]).to_pylist(),
        }
print(json.dumps(out))
`

type pyVersion struct {
	Schema   map[string]string
	Count    int64
	Rows     []map[string]any
	Filtered []map[string]any
	Taken    []map[string]any
}

// comparePylance checks that Lance reads every version of every dataset
// exactly as we do, and returns what it read, by path and version.
func comparePylance(t *testing.T, py string, paths ...string) map[string]map[string]pyVersion {
	t.Helper()
	var all map[string]map[string]pyVersion
	if err := json.Unmarshal(runPython(t, py, pyReadAll, paths...), &all); err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		got := all[path]
		vs, err := lance.ListVersions(path, lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(vs) {
			t.Fatalf("%s: pylance sees %d versions, we see %d", path, len(got), len(vs))
		}
		for _, v := range vs {
			pv, ok := got[strconv.FormatUint(v.Version, 10)]
			if !ok {
				t.Fatalf("%s: pylance lacks version %d", path, v.Version)
			}
			d, err := lance.OpenVersion(path, v.Version, lance.Options{})
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(path)
			ours := readRows(t, d, 0, d.CountRows())
			if pv.Count != d.CountRows() || !reflect.DeepEqual(jsonNorm(t, pv.Rows), jsonNorm(t, ours)) {
				t.Errorf("%s version %d:\npylance %d rows %s\n    ours %d rows %s", name, v.Version,
					pv.Count, rowsJSON(t, pv.Rows), d.CountRows(), rowsJSON(t, ours))
			}
			filtered := []map[string]any{}
			for _, r := range ours {
				if id, _ := r["id"].(float64); id >= 1 {
					filtered = append(filtered, r)
				}
			}
			if !reflect.DeepEqual(jsonNorm(t, pv.Filtered), jsonNorm(t, filtered)) {
				t.Errorf("%s version %d: pylance filter id >= 1 gives %s", name, v.Version, rowsJSON(t, pv.Filtered))
			}
			if len(ours) > 0 && !reflect.DeepEqual(jsonNorm(t, pv.Taken), jsonNorm(t, []map[string]any{ours[len(ours)-1], ours[0]})) {
				t.Errorf("%s version %d: pylance take gives %s", name, v.Version, rowsJSON(t, pv.Taken))
			}
		}
	}
	return all
}

// jsonNorm makes rows from both sides comparable (numbers as float64).
func jsonNorm(t *testing.T, rows []map[string]any) any {
	t.Helper()
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// pyOps runs Lance's own writers on each evolved dataset: an append of the
// last row under the evolved schema, a delete, a compaction (which reads the
// extra files and rewrites the fragments).
const pyOps = `
import json, sys, lance, pyarrow as pa
out = {}
for p in sys.argv[1:]:
    d = lance.dataset(p)
    t = d.to_table()
    # A fresh table, not a slice: Lance 14's 2.0 writer panics on a sliced
    # struct holding a struct ("assertion failed: end <= self.len()").
    last = pa.Table.from_pylist(t.slice(t.num_rows - 1, 1).to_pylist(), schema=t.schema)
    lance.write_dataset(last, p, mode="append")
    lance.dataset(p).delete("id = 1")
    m = lance.dataset(p).optimize.compact_files(target_rows_per_fragment=1000000)
    out[p] = {"fragments_removed": m.fragments_removed, "files": [len(fr.metadata.files) for fr in lance.dataset(p).get_fragments()]}
print(json.dumps(out))
`

// TestEvolvedDatasetsReadByPylance writes every evolution scenario, plus the
// Lance-written fixture (deletion files, dictionary pages, a compacted
// fragment) with its id widened to double, and checks them with Lance:
// every version reads the same, Lance's append, delete and compaction work
// on them, and we read and append to what Lance wrote.
func TestEvolvedDatasetsReadByPylance(t *testing.T) {
	py := pylancePython(t)
	dir := t.TempDir()
	var paths []string
	for _, c := range evolveCases {
		paths = append(paths, buildEvolveCase(t, c, dir))
	}
	mixed := copyFixture(t, "mixed")
	// (st is given: Lance's 2.0 writer refuses to rewrite a NULL struct.)
	mixedSchema := schemaFields(nullable("id", f64), nullable("st", arrow.StructOf(nullable("a", arrow.PrimitiveTypes.Int32), nullable("c", str))))
	if _, err := lance.Append(mixed, recordFromJSON(t, mixedSchema, `[{"id":1000.5,"st":{"a":7,"c":"new"}}]`), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, mixed)
	for seed := int64(1); seed <= 12; seed++ {
		paths = append(paths, randomEvolution(t, seed, dir))
	}

	got := comparePylance(t, py, paths...)
	latest := func(path string) map[string]string {
		vs, _ := lance.ListVersions(path, lance.Options{})
		return got[path][strconv.FormatUint(vs[len(vs)-1].Version, 10)].Schema
	}
	for _, want := range []struct{ path, column, typ string }{
		{paths[0], "cnt", "double"},
		{paths[1], "st", "struct<a: int64, b: string>"},
		{paths[2], "ls", "list<item: struct<p: int64, q: string>>"},
		{paths[2], "st", "struct<in: struct<x: int64, y: string>, z: int64>"},
		{paths[3], "l", "list<item: double>"},
		{paths[4], "st", "struct<a: double, b: string, c: int64>"},
		{paths[5], "st", "struct<n: string, a: int64>"},
		{paths[5], "only", "struct<n: int64>"},
		{paths[5], "ln", "list<item: string>"},
		{paths[6], "ns", "struct<k: string>"},
		{paths[6], "ls", "list<item: struct<p: int64, q: struct<y: int64>>>"},
		{paths[7], "st", "struct<a: double>"},
		{mixed, "id", "double"},
		{mixed, "st", "struct<a: int32, b: string, c: string>"},
	} {
		if s := latest(want.path)[want.column]; s != want.typ {
			t.Errorf("%s: pylance reads %s as %s, want %s", filepath.Base(want.path), want.column, s, want.typ)
		}
	}

	var before []int64
	for _, p := range paths {
		d, err := lance.Open(p, lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, d.CountRows())
	}
	t.Logf("pylance append, delete, compaction: %s", runPython(t, py, pyOps, paths...))
	comparePylance(t, py, paths...)
	for i, p := range paths {
		d, err := lance.Open(p, lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if i <= len(evolveCases) && d.CountRows() != before[i] { // one row appended, one (id 1) deleted
			t.Errorf("%s after pylance ops: %d rows, want %d", filepath.Base(p), d.CountRows(), before[i])
		}
		if i < len(evolveCases) {
			// And we append again on top of what Lance rewrote.
			last := evolveCases[i].steps[len(evolveCases[i].steps)-1]
			if _, err := lance.Append(p, recordFromJSON(t, last.schema, last.rows), nil, lance.Options{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	comparePylance(t, py, paths...)
}

// A widening append that loses the commit race to a Lance compaction re-plans
// on the compacted fragments: their extra files are written anew and the
// ones written for the vanished fragments are removed.
func TestWidenRebasesOverLanceCompaction(t *testing.T) {
	py := pylancePython(t)
	dir := filepath.Join(t.TempDir(), "ds")
	ints := schemaFields(nullable("id", i64), nullable("cnt", i64))
	for i, rows := range []string{`[{"id":0,"cnt":1},{"id":1,"cnt":2}]`, `[{"id":2,"cnt":3}]`} {
		if _, err := lance.Append(dir, recordFromJSON(t, ints, rows), nil, lance.Options{}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		runPython(t, py, `import sys, lance; lance.dataset(sys.argv[1]).optimize.compact_files()`, dir)
	}
	floats := schemaFields(nullable("id", i64), nullable("cnt", f64))
	d, err := lance.Append(dir, recordFromJSON(t, floats, `[{"id":3,"cnt":4.5}]`), nil, lance.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if d.Version() < 4 {
		t.Fatalf("version %d: we should have committed after Lance's compaction", d.Version())
	}
	want := `[{"cnt":1,"id":0},{"cnt":2,"id":1},{"cnt":3,"id":2},{"cnt":4.5,"id":3}]`
	if got := rowsJSON(t, readRows(t, d, 0, 10)); got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
	// 2 original files (kept for time travel), Lance's compacted file, its
	// extra file, our new fragment; not the 2 extra files of the first try.
	if n := countFiles(t, filepath.Join(dir, "data")); n != 5 {
		t.Fatalf("%d data files, want 5", n)
	}
	comparePylance(t, py, dir)
}
