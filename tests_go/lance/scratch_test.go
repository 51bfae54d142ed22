package lance_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/persisting/persisting/core/lance"
)

func TestScratchWrite(t *testing.T) {
	dir := os.Getenv("SCRATCH_DIR")
	if dir == "" {
		t.Skip()
	}
	os.RemoveAll(dir)
	for i, c := range []string{"", "zstd", "lz4"} {
		rec := genRecord(i*500, 500)
		ds, err := lance.Append(dir, rec, map[string]string{"wm": itoa((i + 1) * 500)}, lance.Options{Compression: c, MaxPageBytes: 1024})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(ds.Version(), ds.CountRows())
	}
}

func TestScratchAppend(t *testing.T) {
	dir := os.Getenv("SCRATCH_DIR")
	if dir == "" {
		t.Skip()
	}
	start, _ := strconv.Atoi(os.Getenv("SCRATCH_START"))
	ds, err := lance.Append(dir, genRecord(start, 100), map[string]string{"wm": "x"}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(ds.Version(), ds.CountRows())
}

func TestScratchDump(t *testing.T) {
	dir := os.Getenv("SCRATCH_DIR")
	if dir == "" {
		t.Skip()
	}
	ds, err := lance.Open(dir, lance.Options{})
	if v := os.Getenv("SCRATCH_VERSION"); v != "" {
		n, _ := strconv.Atoi(v)
		ds, err = lance.OpenVersion(dir, uint64(n), lance.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.Create(os.Getenv("SCRATCH_OUT"))
	defer out.Close()
	recs, err := ds.ReadRange(0, ds.CountRows())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		b, _ := r.MarshalJSON()
		out.Write(b)
		out.Write([]byte("\n@@\n"))
	}
	t.Log(ds.Version(), ds.CountRows(), ds.Config())
}
