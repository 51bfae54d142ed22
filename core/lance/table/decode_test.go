package table

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/store"
)

func TestRoaring(t *testing.T) {
	le16 := func(vs ...uint16) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		return b
	}
	// No run containers: cookie 12346, 2 containers, offsets, then an array
	// container (key 0) and a bitmap container (key 1, 5000 values).
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, roaringCookieNoRun)
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = append(b, le16(0, 1, 1, 4999)...)
	b = append(b, make([]byte, 8)...) // offsets (unused)
	b = append(b, le16(3, 70)...)
	bm := make([]byte, 8192)
	var want []uint32
	want = append(want, 3, 70)
	for v := 0; v < 5000; v++ {
		bm[v/8] |= 1 << (v % 8)
		want = append(want, 1<<16|uint32(v))
	}
	b = append(b, bm...)
	got, err := readRoaring(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("no-run bitmap: %v (%d values)", err, len(got))
	}
	// With a run container: cookie 12347 | (1-1)<<16, run bitset, key 2,
	// one run [10, 12].
	b = binary.LittleEndian.AppendUint32(nil, roaringCookie)
	b = append(b, 1)
	b = append(b, le16(2, 2, 1, 10, 2)...)
	got, err = readRoaring(b)
	if err != nil || !reflect.DeepEqual(got, []uint32{2<<16 | 10, 2<<16 | 11, 2<<16 | 12}) {
		t.Fatalf("run container: %v %v", got, err)
	}
	if _, err := readRoaring(b[:len(b)-1]); err == nil {
		t.Fatal("truncated bitmap accepted")
	}
}

func TestPhysicalRow(t *testing.T) {
	deleted := []uint32{0, 3, 4, 9}
	// live rows: 1 2 5 6 7 8 10 11 ...
	for live, want := range []int64{1, 2, 5, 6, 7, 8, 10, 11} {
		if got := physicalRow(deleted, int64(live)); got != want {
			t.Errorf("physicalRow(%d) = %d, want %d", live, got, want)
		}
	}
}

// rewriteManifest replaces the latest manifest of a dataset in place (test
// only: real commits never modify a manifest).
func rewriteManifest(t *testing.T, dir string, edit func(m *Manifest)) {
	t.Helper()
	path := filepath.Join(dir, versionsDir, manifestName(namingV2, 1))
	raw, _ := os.ReadFile(path)
	m, err := parseManifest(raw, path)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	if err := os.WriteFile(path, m.encodeFile(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRefuseUnknownFeatureFlags(t *testing.T) {
	rec := recordOf(t, `[{"x": 1}]`, nf("x", arrow.PrimitiveTypes.Int64))
	for _, tc := range []struct {
		reader, writer uint64
		openErr        bool
	}{{2, 2, true}, {0, 64, false}, {128, 0, true}} { // 2 = stable row ids
		dir := filepath.Join(t.TempDir(), "ds")
		if _, err := Append(dir, rec, nil, Options{}); err != nil {
			t.Fatal(err)
		}
		rewriteManifest(t, dir, func(m *Manifest) { m.readerFlags, m.writerFlags = tc.reader, tc.writer })
		_, err := Open(dir, Options{})
		if got := errors.Is(err, encoding.ErrUnsupported); got != tc.openErr {
			t.Errorf("flags %d/%d: Open error %v", tc.reader, tc.writer, err)
		}
		if _, err := Append(dir, rec, nil, Options{}); !errors.Is(err, encoding.ErrUnsupported) {
			t.Errorf("flags %d/%d: Append error %v", tc.reader, tc.writer, err)
		}
	}
}

// A commit whose version exists fails with errCommitExists and leaves no
// staging file behind.
func TestCommitIsCreateIfNotExists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	rec := recordOf(t, `[{"x": 1}]`, nf("x", arrow.PrimitiveTypes.Int64))
	if _, err := Append(dir, rec, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	m, err := readManifest(store.Local(nil, dir), namingV2, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.transactionFile = ""
	if err := commit(store.Local(nil, dir), namingV2, m); !errors.Is(err, errCommitExists) {
		t.Fatalf("second commit of version 1: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, versionsDir))
	if len(ents) != 1 {
		t.Fatalf("_versions has %d entries", len(ents))
	}
}

// The smallest manifest of §4, byte for byte (timestamp and writer aside).
func TestManifestSpecExample(t *testing.T) {
	raw := unhex(t, `6a000000
0a16 1202 6964 20ffffffffffffffffff01 2a05 696e743634
1218 1214 0a07 612e6c616e6365 120100 1a0100 2002 308d02 2003
1801 3a0b 088da6a1d806 10d1a5df50 5800
6a17 0a0e 71756575652d676f2d70726f746f 1205 302e302e31
7a0c 0a05 6c616e6365 1203 322e30
0000000000000000 0000 0200 4c414e43`)
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.version != 1 || len(m.fragments) != 1 || m.fragments[0].physicalRows != 3 || !m.hasMaxFragment ||
		m.dataVersion != "2.0" || m.fragments[0].files[0].size != 269 {
		t.Fatalf("parsed %+v", m)
	}
	out := m.encodeFile()
	// Same bytes up to the writer_version, which names this library.
	if i := bytes.Index(raw, []byte{0x6a, 0x17}); !bytes.Equal(out[4:i], raw[4:i]) {
		t.Fatalf("re-encoded manifest differs:\n got %x\nwant %x", out, raw)
	}
}

func recordOf(t *testing.T, js string, fields ...arrow.Field) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memoryAllocator, arrow.NewSchema(fields, nil), bytes.NewReader([]byte(js)))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
