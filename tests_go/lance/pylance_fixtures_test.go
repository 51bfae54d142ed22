package lance_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
)

// The datasets under testdata/pylance were written by real Lance (pylance
// 14.0.2, see generate.py): a 2.0 dataset that went through appends with
// dictionary-encoded strings, deletions (Arrow deletion files), compaction
// and more deletions; a dataset with a Roaring bitmap deletion file; and a
// dataset in Lance's default (newer) storage format.

// copyFixture copies a fixture dataset so that tests never modify testdata.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", "pylance", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func readRows(t *testing.T, d *lance.Dataset, offset, limit int64) []map[string]any {
	t.Helper()
	recs, err := d.ReadRange(offset, limit)
	if err != nil {
		t.Fatalf("ReadRange(%d, %d): %v", offset, limit, err)
	}
	var rows []map[string]any
	for _, r := range recs {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var part []map[string]any
		if err := json.Unmarshal(b, &part); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, part...)
		r.Release()
	}
	return rows
}

func TestPylanceMixedDataset(t *testing.T) {
	dir := copyFixture(t, "mixed")
	var want struct {
		Versions []struct {
			Version uint64
			Rows    int64
		}
		Rows []map[string]any
	}
	b, err := os.ReadFile(filepath.Join("testdata", "pylance", "mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	vs, err := lance.ListVersions(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(want.Versions) {
		t.Fatalf("%d versions, want %d", len(vs), len(want.Versions))
	}
	for i, v := range vs {
		if v.Version != want.Versions[i].Version || v.Rows != want.Versions[i].Rows {
			t.Errorf("version %d: %+v, want %+v", i, v, want.Versions[i])
		}
		d, err := lance.OpenVersion(dir, v.Version, lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d.CountRows() != v.Rows || int64(len(readRows(t, d, 0, 1<<40))) != v.Rows {
			t.Errorf("version %d: CountRows %d, want %d", v.Version, d.CountRows(), v.Rows)
		}
	}
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := readRows(t, d, 0, d.CountRows())
	check := func(got []map[string]any, want []map[string]any, what string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
		}
		for i := range want {
			for _, c := range []string{"id", "color", "tags", "vec", "st"} {
				if !reflect.DeepEqual(got[i][c], want[i][c]) {
					t.Fatalf("%s: row %d column %s: %v, want %v", what, i, c, got[i][c], want[i][c])
				}
			}
		}
	}
	check(got, want.Rows, "full scan")
	// Ranges that straddle deleted rows and fragment boundaries.
	for _, r := range [][2]int64{{0, 1}, {95, 40}, {291, 5}, {360, 200}, {511, 10}} {
		end := min(r[0]+r[1], int64(len(want.Rows)))
		check(readRows(t, d, r[0], r[1]), want.Rows[r[0]:end], "range")
	}

	// Appending to a Lance-written 2.0 dataset keeps its indices-free
	// manifest readable and adds a fragment with a fresh id.
	rec := mixedRecord(t)
	d2, err := lance.Append(dir, rec, map[string]string{"wm": "1"}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d2.CountRows() != d.CountRows()+rec.NumRows() || d2.Config()["wm"] != "1" {
		t.Fatalf("after append: %d rows, config %v", d2.CountRows(), d2.Config())
	}
	tail := readRows(t, d2, d.CountRows(), 10)
	if len(tail) != 2 || tail[1]["color"] != "cyan" {
		t.Fatalf("appended rows: %v", tail)
	}
}

func mixedRecord(t *testing.T) arrow.RecordBatch {
	t.Helper()
	d, err := lance.Open(copyFixture(t, "mixed"), lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return recordFromJSON(t, d.Schema(), `[{"id": 1000, "color": null, "tags": ["a"], "vec": [1, 2], "st": {"a": 1, "b": "x"}},
		{"id": 1001, "color": "cyan", "tags": null, "vec": null, "st": {"a": null, "b": null}}]`)
}

func TestPylanceBitmapDeletions(t *testing.T) {
	dir := copyFixture(t, "bitmap")
	var want struct{ IDs []float64 }
	b, _ := os.ReadFile(filepath.Join("testdata", "pylance", "bitmap.json"))
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.CountRows() != int64(len(want.IDs)) {
		t.Fatalf("CountRows %d, want %d", d.CountRows(), len(want.IDs))
	}
	rows := readRows(t, d, 0, d.CountRows())
	for i, r := range rows {
		if r["id"] != want.IDs[i] {
			t.Fatalf("row %d: id %v, want %v", i, r["id"], want.IDs[i])
		}
	}
	rows = readRows(t, d, 777, 3)
	if len(rows) != 3 || rows[0]["id"] != want.IDs[777] {
		t.Fatalf("ReadRange(777, 3) = %v", rows)
	}
}

// A dataset in Lance's default storage format (2.1 or newer) must be refused
// clearly, both for reading and for appending.
func TestRefuseNewerStorageFormat(t *testing.T) {
	dir := copyFixture(t, "defaultfmt")
	_, err := lance.Open(dir, lance.Options{})
	if !errors.Is(err, lance.ErrUnsupported) || !strings.Contains(err.Error(), "2.0") {
		t.Fatalf("Open: %v", err)
	}
	rec := recordFromJSON(t, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil), `[{"id": 4}]`)
	_, err = lance.Append(dir, rec, nil, lance.Options{})
	if !errors.Is(err, lance.ErrUnsupported) || !strings.Contains(err.Error(), "data storage format") {
		t.Fatalf("Append: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "data")); len(ents) != 1 {
		t.Fatalf("refused append left %d data files", len(ents))
	}
}
