package lance_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/persisting/persisting/core/lance/file"
	lance "github.com/persisting/persisting/core/lance/table"
)

// Seed corpora live in testdata/fuzz/Fuzz*/ (manifests and data files written
// by this package, by the reference writer and by pylance); the seeds added
// here are built fresh from the current writer.

func seedDataset(f *testing.F) string {
	dir := filepath.Join(f.TempDir(), "seed")
	for i, c := range []string{"", "zstd", "lz4"} {
		if _, err := lance.Append(dir, genRecord(i*10, 6), map[string]string{"wm": itoa(i)}, lance.Options{Compression: c, MaxPageBytes: 64}); err != nil {
			f.Fatal(err)
		}
	}
	return dir
}

func addFiles(f *testing.F, glob string) {
	paths, _ := filepath.Glob(glob)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzReadManifest(f *testing.F) {
	dir := seedDataset(f)
	addFiles(f, filepath.Join(dir, "_versions", "*.manifest"))
	addFiles(f, filepath.Join("testdata", "pylance", "*", "_versions", "*.manifest"))
	// pylance manifests with fields we do not know (see unknown_fields_test.go).
	paths, _ := filepath.Glob(filepath.Join("testdata", "pylance", "mixed", "_versions", "*.manifest"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			sections, body := manifestFile(f, data)
			f.Add(withManifestBody(data, sections, append(append(bytes.Clone(body), futureTop...), perVersion...)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := lance.ParseManifest(data)
		if err != nil {
			return
		}
		_ = m.Version()
		_ = m.NumFragments()
	})
}

func FuzzReadDataFile(f *testing.F) {
	dir := seedDataset(f)
	addFiles(f, filepath.Join(dir, "data", "*.lance"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := file.OpenFile(bytes.NewReader(data), int64(len(data)), "fuzz.lance")
		if err != nil {
			return
		}
		_ = r.Schema()
		// Read in small windows, as ReadRange does, so that a corrupt row
		// count cannot make a single read enormous.
		n := min(r.NumRows(), 1024)
		for s := int64(0); s < n; s += 64 {
			rec, err := r.Read(s, min(s+64, n))
			if err != nil {
				return
			}
			rec.Release()
		}
	})
}
