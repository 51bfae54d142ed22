package table

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/persisting/persisting/core/lance/file"
	"github.com/persisting/persisting/core/lance/pb"
	"github.com/persisting/persisting/core/store"
)

// The reference writer (the Lance 2.0 executable spec) writes a demo dataset
// that real Lance reads; its output is vendored in testdata/reference_demo
// (see testdata/reference_demo.README.md). These tests read it and compare
// what we write for the same table with what it wrote.

// makeDemo copies the reference demo dataset into a temporary directory, so
// that tests may append to it.
func makeDemo(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "demo")
	if err := os.CopyFS(out, os.DirFS(filepath.Join("testdata", "reference_demo"))); err != nil {
		t.Fatal(err)
	}
	return out
}

func readAllJSON(t *testing.T, d *Dataset) string {
	t.Helper()
	recs, err := d.ReadRange(0, d.CountRows())
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, r := range recs {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSpace(string(b))
		parts = append(parts, strings.ReplaceAll(strings.Trim(s, "[]"), "\n", ""))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestReadReferenceDemo(t *testing.T) {
	demo := makeDemo(t)
	vs, err := ListVersions(demo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].Rows != 3 || vs[1].Rows != 5 || vs[2].Rows != 5 {
		t.Fatalf("versions = %+v", vs)
	}
	row0 := `{"cnt":%s,"flag":true,"id":0,"l":"lz-one","name":"a","score":0.5,"st":{"a":1,"b":"p"},"tags":["x","y"],"vec":[0,1,2,3],"z":"zzzzzzzzzzzzzzzzzz"%s}`
	row1 := `{"cnt":null,"flag":null,"id":1,"l":null,"name":null,"score":null,"st":{"a":null,"b":"q"},"tags":null,"vec":null,"z":null%s}`
	row2 := `{"cnt":%s,"flag":false,"id":2,"l":"three","name":"","score":2.5,"st":{"a":3,"b":null},"tags":[],"vec":[4,5,6,7],"z":""%s}`
	row3 := `{"cnt":%s,"extra":"e3","flag":true,"id":3,"l":"l4","name":"d","score":3.5,"st":{"a":null,"b":null},"tags":["z"],"vec":[8,9,10,11],"z":"abc"}`
	row4 := `{"cnt":%s,"extra":null,"flag":true,"id":4,"l":null,"name":"e","score":4.5,"st":{"a":5,"b":"r"},"tags":["u","v"],"vec":[1,1,1,1],"z":"abc"}`
	f := fmt.Sprintf
	want := map[uint64]string{
		1: "[" + f(row0, "10", "") + "," + f(row1, "") + "," + f(row2, "30", "") + "]",
		2: "[" + strings.Join([]string{f(row0, "10", `,"extra":null`), f(row1, `,"extra":null`), f(row2, "30", `,"extra":null`), f(row3, "40"), f(row4, "50")}, ",") + "]",
		3: "[" + strings.Join([]string{f(row0, "10", `,"extra":null`), f(row1, `,"extra":null`), f(row2, "30", `,"extra":null`), f(row3, "40"), f(row4, "50")}, ",") + "]",
	}
	for v := uint64(1); v <= 3; v++ {
		d, err := OpenVersion(demo, v, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := normJSON(t, readAllJSON(t, d))
		if w := normJSON(t, want[v]); got != w {
			t.Errorf("version %d:\n got %s\nwant %s", v, got, w)
		}
		if v == 3 {
			cnt, _ := d.Schema().FieldsByName("cnt")
			if cnt[0].Type.ID() != arrow.FLOAT64 {
				t.Errorf("version 3: cnt is %s, want double (widened via a new field id)", cnt[0].Type)
			}
		}
	}
	// Reading a range that starts inside the second fragment's second page.
	d, _ := Open(demo, Options{})
	recs, err := d.ReadRange(4, 10)
	if err != nil || len(recs) != 1 || recs[0].NumRows() != 1 {
		t.Fatalf("ReadRange(4, 10) = %v, %v", recs, err)
	}
	if id := recs[0].Column(0).(*array.Int64).Value(0); id != 4 {
		t.Fatalf("ReadRange(4, 10) starts at id %d", id)
	}
}

// demoRecord is version 1 of make_demo.py, built with Arrow.
func demoRecord(t *testing.T) arrow.RecordBatch {
	meta := func(c string) arrow.Metadata {
		return arrow.NewMetadata([]string{"lance-encoding:compression"}, []string{c}) // Lance's key
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		nf("score", arrow.PrimitiveTypes.Float64), nf("name", arrow.BinaryTypes.String),
		nf("vec", arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Float32)), nf("flag", arrow.FixedWidthTypes.Boolean),
		nf("tags", arrow.ListOf(arrow.BinaryTypes.String)),
		nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int32), nf("b", arrow.BinaryTypes.String))),
		nf("cnt", arrow.PrimitiveTypes.Int64),
		{Name: "z", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: meta("zstd")},
		{Name: "l", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: meta("lz4")},
	}, nil)
	rows := `[
{"id": 0, "score": 0.5, "name": "a", "vec": [0, 1, 2, 3], "flag": true, "tags": ["x", "y"], "st": {"a": 1, "b": "p"}, "cnt": 10, "z": "zzzzzzzzzzzzzzzzzz", "l": "lz-one"},
{"id": 1, "score": null, "name": null, "vec": null, "flag": null, "tags": null, "st": {"a": null, "b": "q"}, "cnt": null, "z": null, "l": null},
{"id": 2, "score": 2.5, "name": "", "vec": [4, 5, 6, 7], "flag": false, "tags": [], "st": {"a": 3, "b": null}, "cnt": 30, "z": "", "l": "three"}]`
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestWriterMatchesReference(t *testing.T) {
	demo := makeDemo(t)
	ours := filepath.Join(t.TempDir(), "ours")
	if _, err := Append(ours, demoRecord(t), nil, Options{}); err != nil {
		t.Fatal(err)
	}
	refM, err := readManifest(store.Local(nil, demo), namingV2, 1)
	if err != nil {
		t.Fatal(err)
	}
	ourM, err := readManifest(store.Local(nil, ours), namingV2, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Manifest: same schema bytes, same set of protobuf fields, same
	// fragment structure, same footer and section layout.
	if a, b := appendFields(nil, 1, refM.fields), appendFields(nil, 1, ourM.fields); !bytes.Equal(a, b) {
		t.Errorf("Manifest.fields differ:\n ref %x\nours %x", a, b)
	}
	refRaw, _ := os.ReadFile(filepath.Join(demo, versionsDir, manifestName(namingV2, 1)))
	ourRaw, _ := os.ReadFile(filepath.Join(ours, versionsDir, manifestName(namingV2, 1)))
	if a, b := manifestFieldNumbers(t, refRaw), manifestFieldNumbers(t, ourRaw); !reflect.DeepEqual(a, b) {
		t.Errorf("manifest protobuf fields: ref %v, ours %v", a, b)
	}
	if !bytes.Equal(refRaw[len(refRaw)-8:], ourRaw[len(ourRaw)-8:]) || !bytes.Equal(ourRaw[len(ourRaw)-8:], []byte{0, 0, 2, 0, 'L', 'A', 'N', 'C'}) {
		t.Errorf("manifest footer: ref %x, ours %x", refRaw[len(refRaw)-16:], ourRaw[len(ourRaw)-16:])
	}
	rf, of := refM.fragments[0], ourM.fragments[0]
	if rf.id != of.id || rf.physicalRows != of.physicalRows || len(of.files) != 1 ||
		!reflect.DeepEqual(rf.files[0].fields, of.files[0].fields) || !reflect.DeepEqual(rf.files[0].columns, of.files[0].columns) ||
		rf.files[0].major != of.files[0].major || rf.files[0].minor != of.files[0].minor {
		t.Errorf("fragments: ref %+v, ours %+v", rf, of)
	}
	if refM.maxFragmentID != ourM.maxFragmentID || !ourM.hasMaxFragment || refM.dataVersion != ourM.dataVersion || refM.dataFormat != ourM.dataFormat {
		t.Errorf("manifest scalars: ref %+v, ours %+v", refM, ourM)
	}
	for _, m := range []*Manifest{refM, ourM} {
		tx, err := decodeTransaction(m.transaction)
		if err != nil || tx.op != pb.OpOverwrite {
			t.Errorf("inline transaction: %+v, %v", tx, err)
		}
		if !regexp.MustCompile(`^0-[0-9a-f-]{36}\.txn$`).MatchString(m.transactionFile) {
			t.Errorf("transaction file %q", m.transactionFile)
		}
		if got, _ := os.ReadFile(filepath.Join(map[*Manifest]string{refM: demo, ourM: ours}[m], transactionsDir, m.transactionFile)); !bytes.Equal(got, m.transaction) {
			t.Errorf("transaction file differs from the inline copy")
		}
	}

	// Data file: same footer shape, FileDescriptor, and per column the same
	// pages, encodings, buffer offsets and buffer bytes. Only the
	// compressed columns z and l may differ (compressor output, and we skip
	// compression when it does not pay off); their values must still match.
	refR, refF := openDataFile(t, demo, rf.files[0])
	ourR, ourF := openDataFile(t, ours, of.files[0])
	if a, b := appendFields(nil, 1, refR.Fields()), appendFields(nil, 1, ourR.Fields()); !bytes.Equal(a, b) || refR.Rows() != ourR.Rows() {
		t.Errorf("FileDescriptor differs:\n ref %x\nours %x", a, b)
	}
	if refR.NumColumns() != ourR.NumColumns() || ourR.NumColumns() != 13 {
		t.Fatalf("columns: ref %d, ours %d", refR.NumColumns(), ourR.NumColumns())
	}
	if !bytes.Equal(refF[len(refF)-16:], ourF[len(ourF)-16:]) {
		t.Errorf("data file footer tail: ref %x, ours %x", refF[len(refF)-16:], ourF[len(ourF)-16:])
	}
	for c := range ourR.NumColumns() {
		rp, op := refR.Pages(c), ourR.Pages(c)
		if len(rp) != len(op) {
			t.Errorf("column %d: %d pages, ref %d", c, len(op), len(rp))
			continue
		}
		if c >= 11 { // z, l
			continue
		}
		for i := range rp {
			if rp[i].Length != op[i].Length || !reflect.DeepEqual(rp[i].Encoding, op[i].Encoding) || !reflect.DeepEqual(rp[i].BufferOffsets, op[i].BufferOffsets) {
				t.Errorf("column %d page %d: ref %+v / %+v, ours %+v / %+v", c, i, rp[i], *rp[i].Encoding, op[i], *op[i].Encoding)
			}
			rb, _ := refR.PageBuffers(bytes.NewReader(refF), c, i)
			ob, _ := ourR.PageBuffers(bytes.NewReader(ourF), c, i)
			if !reflect.DeepEqual(rb, ob) {
				t.Errorf("column %d page %d buffers: ref %x, ours %x", c, i, rb, ob)
			}
		}
	}
	refD, _ := OpenVersion(demo, 1, Options{})
	ourD, _ := Open(ours, Options{})
	if a, b := readAllJSON(t, refD), readAllJSON(t, ourD); a != b {
		t.Errorf("values differ:\n ref %s\nours %s", a, b)
	}
}

func openDataFile(t *testing.T, root string, df dataFile) (*file.Reader, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, dataDir, df.path))
	if err != nil {
		t.Fatal(err)
	}
	r, err := file.OpenReader(bytes.NewReader(data), uint64(len(data)), df.path)
	if err != nil {
		t.Fatal(err)
	}
	return r, data
}

// manifestFieldNumbers lists the distinct top-level field numbers of the
// Manifest message of a manifest file.
func manifestFieldNumbers(t *testing.T, raw []byte) []protowire.Number {
	pos := int(binary.LittleEndian.Uint64(raw[len(raw)-16:]))
	seen := map[protowire.Number]bool{}
	var out []protowire.Number
	if err := pb.Walk(raw[pos+4:len(raw)-16], func(p pb.Entry) error {
		if !seen[p.Num] {
			seen[p.Num] = true
			out = append(out, p.Num)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
