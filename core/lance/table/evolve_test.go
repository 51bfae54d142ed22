package table

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/apache/arrow-go/v18/arrow/memory"

	tableschema "github.com/persisting/persisting/core/schema"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/lance/pb"
	"github.com/persisting/persisting/core/store"
)

// mergeBody returns the Merge operation of a manifest's inline transaction.
func mergeBody(t *testing.T, m *Manifest) []byte {
	t.Helper()
	var body []byte
	if err := pb.Walk(m.transaction, func(p pb.Entry) error {
		if p.Num == pb.OpMerge {
			body = p.B
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if body == nil {
		t.Fatalf("version %d: transaction is not a merge", m.version)
	}
	return body
}

// preservesNullability reads Merge.preserves_nullability (field 4).
func preservesNullability(t *testing.T, m *Manifest) bool {
	t.Helper()
	v := false
	pb.Walk(mergeBody(t, m), func(p pb.Entry) error {
		if n, err := p.Uint(); p.Num == 4 && err == nil {
			v = n != 0
		}
		return nil
	})
	return v
}

// The widening recipe produces what the reference writer's version 3 has
// (§11): a new field id with the same name at the old position, and for each
// existing fragment one extra file holding only that field, with the old files
// (and the old id in them) unchanged.
func TestWidenMatchesReference(t *testing.T) {
	demo := makeDemo(t)
	ours := filepath.Join(t.TempDir(), "ours")
	if err := os.CopyFS(ours, os.DirFS(demo)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ours, versionsDir, manifestName(namingV2, 3))); err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, nf("cnt", arrow.PrimitiveTypes.Float64)}, nil)
	rec, _, err := array.RecordFromJSON(memoryAllocator, sc, strings.NewReader(`[{"id":5,"cnt":60.5}]`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Append(ours, rec, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Version() != 3 {
		t.Fatalf("version %d", d.Version())
	}
	refM, err := readManifest(store.Local(nil, demo), namingV2, 3)
	if err != nil {
		t.Fatal(err)
	}
	ourM, err := readManifest(store.Local(nil, ours), namingV2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := appendFields(nil, 1, refM.fields), appendFields(nil, 1, ourM.fields); !bytes.Equal(a, b) {
		t.Errorf("Manifest.fields differ:\n ref %x\nours %x", a, b)
	}
	if len(ourM.fragments) != 3 {
		t.Fatalf("%d fragments", len(ourM.fragments))
	}
	for i, rf := range refM.fragments {
		of := ourM.fragments[i]
		if len(of.files) != 2 || of.files[0].path != rf.files[0].path || of.physicalRows != rf.physicalRows {
			t.Fatalf("fragment %d: %+v", i, of)
		}
		x, rx := of.files[1], rf.files[1]
		if !reflect.DeepEqual(x.fields, rx.fields) || !reflect.DeepEqual(x.columns, rx.columns) || x.major != 2 || x.minor != 0 {
			t.Errorf("fragment %d extra file: ours %+v, ref %+v", i, x, rx)
		}
		r, data := openDataFile(t, ours, x)
		if r.Rows() != of.physicalRows || uint64(len(data)) != x.size || r.NumColumns() != 1 {
			t.Errorf("fragment %d extra file: %d rows, %d bytes (manifest says %d), %d columns", i, r.Rows(), len(data), x.size, r.NumColumns())
		}
	}
	if preservesNullability(t, ourM) {
		t.Errorf("a widening merge must not claim preserves_nullability")
	}
	refD, _ := OpenVersion(demo, 3, Options{})
	want := strings.TrimSuffix(readAllJSON(t, refD), "]")
	got := readAllJSON(t, d)
	if !strings.HasPrefix(got, want+",") {
		t.Errorf("values:\n got %s\nwant %s,...]", got, want)
	}
}

// Widening a Lance-written dataset keeps every fragment's deletion file: the
// extra files hold all physical rows, deleted ones included.
func TestWidenKeepsDeletionFiles(t *testing.T) {
	src := "../../../tests_go/lance/testdata/pylance/mixed"
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("fixture %s: %v", src, err)
	}
	dir := filepath.Join(t.TempDir(), "mixed")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	before, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{nf("id", arrow.PrimitiveTypes.Float64)}, nil)
	rec, _, _ := array.RecordFromJSON(memoryAllocator, sc, strings.NewReader(`[{"id":0.25}]`))
	d, err := Append(dir, rec, nil, Options{MaxPageBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	oldID := before.schema.Top[0].ID
	newID := d.schema.Top[0].ID
	if d.schema.Top[0].Name != "id" || newID <= before.m.maxFieldID() {
		t.Fatalf("widened field %+v (old id %d)", d.schema.Top[0], oldID)
	}
	deletions := 0
	for i, fr := range before.m.fragments {
		nf := d.m.fragments[i]
		if nf.id != fr.id || !reflect.DeepEqual(nf.deletion, fr.deletion) || nf.physicalRows != fr.physicalRows {
			t.Fatalf("fragment %d changed: %+v -> %+v", fr.id, fr, nf)
		}
		if !bytes.HasPrefix(nf.raw, fr.raw) {
			t.Errorf("fragment %d: stored message not kept", fr.id)
		}
		if fr.deletion != nil {
			deletions++
		}
		x := nf.files[len(nf.files)-1]
		if len(nf.files) != len(fr.files)+1 || !reflect.DeepEqual(x.fields, []int32{newID}) || !reflect.DeepEqual(x.columns, []int32{0}) {
			t.Fatalf("fragment %d files %+v", fr.id, nf.files)
		}
		r, _ := openDataFile(t, dir, x)
		if r.Rows() != fr.physicalRows {
			t.Errorf("fragment %d: extra file has %d rows, fragment %d physical rows", fr.id, r.Rows(), fr.physicalRows)
		}
		if !slicesContain(fr.files[0].fields, oldID) || !slicesContain(nf.files[0].fields, oldID) {
			t.Errorf("fragment %d: old id %d should stay in the old file", fr.id, oldID)
		}
	}
	if deletions == 0 {
		t.Fatal("fixture has no deletion files")
	}
	// Same rows, ids now doubles.
	got, want := readAllJSON(t, d), readAllJSON(t, before)
	if !strings.HasPrefix(got, strings.TrimSuffix(want, "]")+",") {
		t.Errorf("rows changed:\n got %.300s\nwant %.300s", got, want)
	}
}

func slicesContain(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A new leaf child inside a struct (also inside list<struct>) is metadata
// only: a new field id whose parent is the struct, no extra files.
func TestStructChildIsMetadataOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	s1 := arrow.NewSchema([]arrow.Field{nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int64))),
		nf("ls", arrow.ListOf(arrow.StructOf(nf("p", arrow.PrimitiveTypes.Int64))))}, nil)
	rec, _, _ := array.RecordFromJSON(memoryAllocator, s1, strings.NewReader(`[{"st":{"a":1},"ls":[{"p":2}]}]`))
	d1, err := Append(dir, rec, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2 := arrow.NewSchema([]arrow.Field{nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int64), nf("b", arrow.BinaryTypes.String))),
		nf("ls", arrow.ListOf(arrow.StructOf(nf("p", arrow.PrimitiveTypes.Int64), nf("q", arrow.PrimitiveTypes.Float64))))}, nil)
	rec, _, _ = array.RecordFromJSON(memoryAllocator, s2, strings.NewReader(`[{"st":{"a":3,"b":"x"},"ls":[{"p":4,"q":0.5}]}]`))
	d2, err := Append(dir, rec, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// st(0){a(1)} ls(2){item(3){p(4)}} + b(5) under st, q(6) under item
	var got []string
	for _, f := range d2.m.fields {
		got = append(got, f.Name+":"+strconv.Itoa(int(f.ID))+"<"+strconv.Itoa(int(f.ParentID)))
	}
	want := []string{"st:0<-1", "a:1<0", "b:5<0", "ls:2<-1", "item:3<2", "p:4<3", "q:6<3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	if len(d2.m.fragments[0].files) != 1 || d2.m.fragments[0].files[0].path != d1.m.fragments[0].files[0].path {
		t.Fatalf("old fragment changed: %+v", d2.m.fragments[0])
	}
	if !preservesNullability(t, d2.m) {
		t.Errorf("adding nullable fields preserves nullability")
	}
	if got := readAllJSON(t, d2); got != `[{"ls":[{"p":2,"q":null}],"st":{"a":1,"b":null}},{"ls":[{"p":4,"q":0.5}],"st":{"a":3,"b":"x"}}]` {
		t.Fatalf("rows %s", got)
	}
}

// conform handles sliced inputs (non-zero offsets at every level).
func TestConformSlices(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		nf("i", arrow.PrimitiveTypes.Int64),
		nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int64), nf("s", arrow.BinaryTypes.String))),
		nf("l", arrow.ListOf(arrow.PrimitiveTypes.Int64)),
	}, nil)
	rec, _, err := array.RecordFromJSON(memoryAllocator, sc, strings.NewReader(`[
{"i":1,"st":{"a":1,"s":"x"},"l":[1,2]},
{"i":null,"st":null,"l":null},
{"i":3,"st":{"a":null,"s":"z"},"l":[]},
{"i":4,"st":{"a":4,"s":null},"l":[null,4]},
{"i":5,"st":{"a":5,"s":"w"},"l":[5]}]`))
	if err != nil {
		t.Fatal(err)
	}
	target := arrow.NewSchema([]arrow.Field{
		nf("i", arrow.PrimitiveTypes.Float64),
		nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Float64), nf("s", arrow.BinaryTypes.String), nf("n", arrow.BinaryTypes.String))),
		nf("l", arrow.ListOf(arrow.PrimitiveTypes.Float64)),
	}, nil)
	next := int32(0)
	fs, err := encoding.FieldsFromArrow(target.Fields(), &next, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := encoding.BuildSchema(fs)
	if err != nil {
		t.Fatal(err)
	}
	sl := rec.NewSlice(1, 4)
	var cols []arrow.Array
	for i, f := range s.Top {
		c, err := conform(sl.Column(i), f)
		if err != nil {
			t.Fatal(err)
		}
		if !arrow.TypeEqual(c.DataType(), f.Type) {
			t.Fatalf("%s: type %s, want %s", f.Name, c.DataType(), f.Type)
		}
		cols = append(cols, c)
	}
	out := array.NewRecordBatch(target, cols, 3)
	b, _ := out.MarshalJSON()
	want := `[{"i":null,"l":null,"st":null},{"i":3,"l":[],"st":{"a":null,"n":null,"s":"z"}},{"i":4,"l":[null,4],"st":{"a":4,"n":null,"s":null}}]`
	if normJSON(t, string(b)) != normJSON(t, want) {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

// makeNulls covers null-typed fields inside structs and lists, where
// array.MakeArrayOfNull panics.
func TestMakeNullsNested(t *testing.T) {
	for _, typ := range []arrow.DataType{
		arrow.StructOf(nf("n", arrow.Null), nf("a", arrow.PrimitiveTypes.Int64)),
		arrow.ListOf(arrow.Null),
		arrow.LargeListOf(arrow.StructOf(nf("n", arrow.Null))),
		arrow.StructOf(nf("l", arrow.ListOf(arrow.Null)), nf("s", arrow.StructOf(nf("n", arrow.Null)))),
	} {
		a := tableschema.NullArray(memory.DefaultAllocator, typ, 3)
		if a.Len() != 3 || a.NullN() != 3 || !arrow.TypeEqual(a.DataType(), typ) {
			t.Errorf("%s: %d values, %d nulls, type %s", typ, a.Len(), a.NullN(), a.DataType())
		}
		if _, err := a.MarshalJSON(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		a.Release()
	}
}

// A sliced record whose types are already the dataset's is stored as is
// (conform shares it, offsets at every level), and a fixed-size list whose
// item field is named otherwise takes the dataset's item field.
func TestAppendSlicedSameTypes(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		nf("st", arrow.StructOf(nf("a", arrow.PrimitiveTypes.Int64), nf("s", arrow.BinaryTypes.String))),
		nf("l", arrow.ListOf(arrow.PrimitiveTypes.Int64)),
		nf("ll", arrow.LargeListOf(arrow.BinaryTypes.String)),
		nf("v", arrow.FixedSizeListOfField(2, arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Float32})),
	}, nil)
	rec, _, err := array.RecordFromJSON(memoryAllocator, sc, strings.NewReader(`[
{"st":{"a":1,"s":"x"},"l":[1,2],"ll":["a"],"v":[1,2]},
{"st":null,"l":null,"ll":null,"v":null},
{"st":{"a":null,"s":"z"},"l":[],"ll":[],"v":[3,4]},
{"st":{"a":4,"s":null},"l":[null,4],"ll":[null,"d"],"v":[5,6]},
{"st":{"a":5,"s":"w"},"l":[5],"ll":["e"],"v":[7,8]}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	dir := filepath.Join(t.TempDir(), "ds")
	if _, err := Append(dir, rec.NewSlice(0, 1), nil, Options{}); err != nil {
		t.Fatal(err)
	}
	d, err := Append(dir, rec.NewSlice(1, 4), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"l":[1,2],"ll":["a"],"st":{"a":1,"s":"x"},"v":[1,2]},` +
		`{"l":null,"ll":null,"st":{"a":null,"s":null},"v":null},` +
		`{"l":[],"ll":[],"st":{"a":null,"s":"z"},"v":[3,4]},` +
		`{"l":[null,4],"ll":[null,"d"],"st":{"a":4,"s":null},"v":[5,6]}]`
	if got := readAllJSON(t, d); normJSON(t, got) != normJSON(t, want) {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}
