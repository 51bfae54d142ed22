package lance_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
)

// hookFS runs beforeLink once, just before the first manifest link, to let
// another writer commit in between; it fails the test on any rename, which
// would not be an atomic create-if-not-exists.
type hookFS struct {
	vfs.FS
	t          *testing.T
	once       sync.Once
	beforeLink func()
}

func (h *hookFS) Link(oldname, newname string) error {
	if strings.HasSuffix(newname, ".manifest") && h.beforeLink != nil {
		h.once.Do(h.beforeLink)
	}
	return h.FS.Link(oldname, newname)
}

func (h *hookFS) Rename(oldname, newname string) error {
	h.t.Errorf("commit used Rename(%s, %s)", oldname, newname)
	return h.FS.Rename(oldname, newname)
}

func countFiles(t *testing.T, dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestConcurrentAppendRebases(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	if _, err := lance.Append(dir, genRecord(0, 10), map[string]string{"base": "0"}, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		// Writer A wins version 2 while B is about to link it.
		if _, err := lance.Append(dir, genRecord(100, 5), map[string]string{"a": "1"}, lance.Options{}); err != nil {
			t.Errorf("writer A: %v", err)
		}
	}
	d, err := lance.Append(dir, genRecord(200, 7), map[string]string{"b": "2"}, lance.Options{FS: fs})
	if err != nil {
		t.Fatalf("writer B: %v", err)
	}
	if d.Version() != 3 || d.CountRows() != 22 {
		t.Fatalf("after rebase: version %d, %d rows", d.Version(), d.CountRows())
	}
	cfg := d.Config()
	if cfg["base"] != "0" || cfg["a"] != "1" || cfg["b"] != "2" {
		t.Fatalf("config %v", cfg)
	}
	rows := readRows(t, d, 0, 100)
	for i, want := range []float64{0, 9, 100, 104, 200, 206} {
		idx := []int{0, 9, 10, 14, 15, 21}[i]
		if rows[idx]["id"] != want {
			t.Fatalf("row %d: id %v, want %v", idx, rows[idx]["id"], want)
		}
	}
	// Three fragments with three data files; no staging manifests left.
	if n := countFiles(t, filepath.Join(dir, "data")); n != 3 {
		t.Fatalf("%d data files", n)
	}
	if n := countFiles(t, filepath.Join(dir, "_versions")); n != 3 {
		t.Fatalf("%d entries in _versions", n)
	}
	if n := countFiles(t, filepath.Join(dir, "_transactions")); n != 3 {
		t.Fatalf("%d transaction files (the failed attempt's must be removed)", n)
	}
}

func TestConcurrentSchemaChangeConflicts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	s := schemaOf(t, `[["id","int64"]]`)
	if _, err := lance.Append(dir, recordFromJSON(t, s, `[{"id":1}]`), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		s2 := schemaOf(t, `[["id","int64"],["x","utf8"]]`)
		if _, err := lance.Append(dir, recordFromJSON(t, s2, `[{"id":2,"x":"new column"}]`), nil, lance.Options{}); err != nil {
			t.Errorf("writer A: %v", err)
		}
	}
	_, err := lance.Append(dir, recordFromJSON(t, s, `[{"id":3}]`), nil, lance.Options{FS: fs})
	var ce *lance.ConflictError
	if !errors.As(err, &ce) || ce.Version != 2 || ce.ReadVersion != 1 {
		t.Fatalf("want a ConflictError on version 2, got %v", err)
	}
	if n := countFiles(t, filepath.Join(dir, "data")); n != 2 {
		t.Fatalf("%d data files: the loser's file must be removed", n)
	}
	// Retrying from the new latest succeeds.
	d, err := lance.Append(dir, recordFromJSON(t, s, `[{"id":3}]`), nil, lance.Options{})
	if err != nil || d.CountRows() != 3 {
		t.Fatalf("retry: %v", err)
	}
}

// Two writers creating the same dataset: the loser appends to the winner's.
func TestConcurrentCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		if _, err := lance.Append(dir, genRecord(0, 3), nil, lance.Options{}); err != nil {
			t.Errorf("writer A: %v", err)
		}
	}
	d, err := lance.Append(dir, genRecord(10, 4), nil, lance.Options{FS: fs})
	if err != nil || d.Version() != 2 || d.CountRows() != 7 {
		t.Fatalf("loser of the create race: %v", err)
	}
}

func TestManyConcurrentWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	if _, err := lance.Append(dir, genRecord(0, 1), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 5
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := lance.Append(dir, genRecord(1000*w+10*i+1, 3), nil, lance.Options{}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	d, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Version() != 1+writers*each || d.CountRows() != 1+3*writers*each {
		t.Fatalf("version %d, %d rows", d.Version(), d.CountRows())
	}
	seen := map[float64]bool{}
	for _, r := range readRows(t, d, 0, d.CountRows()) {
		if seen[r["id"].(float64)] {
			t.Fatalf("row %v twice", r["id"])
		}
		seen[r["id"].(float64)] = true
	}
}
