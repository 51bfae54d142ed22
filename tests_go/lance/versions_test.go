package lance_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	lance "github.com/persisting/persisting/core/lance/table"
)

func TestOpenMissingDataset(t *testing.T) {
	_, err := lance.Open(filepath.Join(t.TempDir(), "nope"), lance.Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing dataset: %v", err)
	}
}

func TestAppendThreeVersions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	before := time.Now().Add(-time.Second)
	sizes := []int{100, 250, 1}
	for i, n := range sizes {
		ds, err := lance.Append(dir, genRecord(i*1000, n), map[string]string{"persisted_upto": itoa(i)}, lance.Options{MaxPageBytes: 512})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Version() != uint64(i+1) {
			t.Fatalf("append %d committed version %d", i, ds.Version())
		}
	}
	vs, err := lance.ListVersions(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("versions: %+v", vs)
	}
	rows := int64(0)
	for i, v := range vs {
		rows += int64(sizes[i])
		if v.Version != uint64(i+1) || v.Rows != rows || v.Timestamp.Before(before) || v.Timestamp.After(time.Now()) {
			t.Errorf("version %d: %+v (want %d rows)", i+1, v, rows)
		}
		if i > 0 && v.Timestamp.Before(vs[i-1].Timestamp) {
			t.Errorf("timestamps go backwards: %+v", vs)
		}
		d, err := lance.OpenVersion(dir, v.Version, lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Version() != v.Version || d.CountRows() != rows || d.Config()["persisted_upto"] != itoa(i) {
			t.Errorf("OpenVersion(%d): version %d, %d rows, config %v", v.Version, d.Version(), d.CountRows(), d.Config())
		}
		// Every row of the version, read through ReadRange, in order.
		got := readRows(t, d, 0, rows+10)
		if int64(len(got)) != rows {
			t.Fatalf("version %d: read %d rows", v.Version, len(got))
		}
		k := 0
		for j := 0; j <= i; j++ {
			for r := 0; r < sizes[j]; r++ {
				if got[k]["id"] != float64(j*1000+r) {
					t.Fatalf("version %d row %d: id %v", v.Version, k, got[k]["id"])
				}
				k++
			}
		}
	}
	if _, err := lance.OpenVersion(dir, 4, lance.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenVersion(4): %v", err)
	}
	// ReadRange compared with slices of the generated records, at random
	// offsets across fragment and page boundaries.
	d, _ := lance.Open(dir, lance.Options{})
	all := []int{}
	for j, n := range sizes {
		for r := 0; r < n; r++ {
			all = append(all, j*1000+r)
		}
	}
	for _, r := range [][2]int64{{0, 0}, {99, 2}, {100, 250}, {340, 11}, {350, 1}, {351, 5}, {17, 300}} {
		recs, err := d.ReadRange(r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		k := int(r[0])
		for _, rec := range recs {
			want := genRecord(all[k], int(rec.NumRows()))
			for c := 0; c < int(rec.NumCols()); c++ {
				if !array.Equal(rec.Column(c), want.Column(c)) {
					t.Fatalf("ReadRange%v column %s differs:\n%v\n%v", r, rec.ColumnName(c), rec.Column(c), want.Column(c))
				}
			}
			k += int(rec.NumRows())
		}
		if want := min(int(r[0]+r[1]), len(all)); k != want {
			t.Fatalf("ReadRange%v ended at %d, want %d", r, k, want)
		}
	}
}

// Schema evolution through Append: a column that was null-typed gets a real
// type (new field id), a new column appears, a column goes missing.
func TestAppendSchemaEvolution(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	s1 := schemaOf(t, `[["id","int64"],["note","null"],["gone","utf8"]]`)
	if _, err := lance.Append(dir, recordFromJSON(t, s1, `[{"id":1,"note":null,"gone":"g"}]`), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	s2 := schemaOf(t, `[["id","int64"],["note","utf8"],["extra","float64"]]`)
	d, err := lance.Append(dir, recordFromJSON(t, s2, `[{"id":2,"note":"hello","extra":0.5}]`), nil, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"extra":null,"gone":"g","id":1,"note":null},{"extra":0.5,"gone":null,"id":2,"note":"hello"}]`
	if got := rowsJSON(t, readRows(t, d, 0, 10)); got != want {
		t.Fatalf("rows: %s\nwant %s", got, want)
	}
	if f, _ := d.Schema().FieldsByName("note"); f[0].Type.ID().String() != "STRING" {
		t.Fatalf("note is %s", f[0].Type)
	}
	// A real type change is refused.
	s3 := schemaOf(t, `[["id","utf8"]]`)
	if _, err := lance.Append(dir, recordFromJSON(t, s3, `[{"id":"x"}]`), nil, lance.Options{}); !errors.Is(err, lance.ErrSchemaMismatch) {
		t.Fatalf("type change: %v", err)
	}
	// A zero-row append with a config update commits a version, without a fragment.
	d2, err := lance.Append(dir, recordFromJSON(t, s2, `[]`), map[string]string{"wm": "9"}, lance.Options{})
	if err != nil || d2.Version() != d.Version()+1 || d2.CountRows() != 2 || d2.Config()["wm"] != "9" {
		t.Fatalf("empty append: %v, %v", d2, err)
	}
}
