package lance_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/encoding/protowire"

	lance "github.com/persisting/persisting/core/lance/table"
)

// Manifest fields we do not know are carried forward byte for byte, as
// protobuf implementations keep unknown fields, except the ones whose value
// belongs to one version or one manifest file (lance.carriedField has the
// rule). pylance 14.0.2 writes one field that older specs lack: 23, the
// offset of the inline transaction, which must never be copied (a copied
// offset points at other bytes of our file, and Lance fails to open the
// version). So the test takes the manifest pylance wrote and adds to it what
// a newer Lance could write: unknown top-level fields, and unknown fields
// inside a DataFragment, a DataFile and a schema Field (one that our appends
// keep: a field that schema evolution replaces is a new field).

// pbf is one field of a protobuf message as stored.
type pbf struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // varint value
	b   []byte // length-delimited payload
	raw []byte // the whole field, tag included
}

func pbFields(t testing.TB, b []byte) []pbf {
	t.Helper()
	var out []pbf
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(m))
		}
		f := pbf{num: num, typ: typ, raw: b[:n+m]}
		switch typ {
		case protowire.VarintType:
			f.v, _ = protowire.ConsumeVarint(b[n:])
		case protowire.BytesType:
			f.b, _ = protowire.ConsumeBytes(b[n:])
		}
		out = append(out, f)
		b = b[n+m:]
	}
	return out
}

func only(fs []pbf, nums ...protowire.Number) []pbf {
	var out []pbf
	for _, f := range fs {
		for _, n := range nums {
			if f.num == n {
				out = append(out, f)
			}
		}
	}
	return out
}

func rawOf(fs []pbf) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.raw...)
	}
	return b
}

// manifestFile splits a manifest file into what precedes the Manifest
// message (the index and transaction sections) and the message itself.
func manifestFile(t testing.TB, data []byte) (sections, body []byte) {
	t.Helper()
	pos := binary.LittleEndian.Uint64(data[len(data)-16:])
	n := binary.LittleEndian.Uint32(data[pos:])
	return data[:pos], data[pos+4 : pos+4+uint64(n)]
}

// withManifestBody returns the manifest file data with its Manifest message
// replaced by body (the sections before it are kept, so the footer still
// points at it).
func withManifestBody(data, sections, body []byte) []byte {
	out := binary.LittleEndian.AppendUint32(bytes.Clone(sections), uint32(len(body)))
	out = append(out, body...)
	return append(out, data[len(data)-16:]...)
}

// manifestPath finds the manifest file of a version, whatever its naming.
func manifestPath(t *testing.T, dir string, version uint64) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "_versions", "*.manifest"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, body := manifestFile(t, data)
		if v := only(pbFields(t, body), 3); len(v) == 1 && v[0].v == version {
			return p
		}
	}
	t.Fatalf("%s: no manifest for version %d", dir, version)
	return ""
}

func latestVersion(t *testing.T, dir string) uint64 {
	t.Helper()
	vs, err := lance.ListVersions(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return vs[len(vs)-1].Version
}

// Unknown fields added to the pylance manifest. 100 is repeated (twice, not
// adjacent): both occurrences, and their order, must survive.
var (
	futureTopFields = [][]byte{
		protowire.AppendVarint(protowire.AppendTag(nil, 100, protowire.VarintType), 9),
		protowire.AppendString(protowire.AppendTag(nil, 101, protowire.BytesType), "from a newer Lance"),
		protowire.AppendVarint(protowire.AppendTag(nil, 100, protowire.VarintType), 1<<40),
		protowire.AppendFixed32(protowire.AppendTag(nil, 102, protowire.Fixed32Type), 0xdeadbeef),
	}
	futureTop      = bytes.Join(futureTopFields, nil)
	futureFragment = protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "fragment extra")
	futureDataFile = protowire.AppendVarint(protowire.AppendTag(nil, 98, protowire.VarintType), 77)
	futureField    = protowire.AppendVarint(protowire.AppendTag(nil, 97, protowire.VarintType), 1)
	// Fields Lance 14 defines that describe one version: tag (8), clustering
	// (25), max_clustering_id (26). pylance accepts them, and drops them on
	// its own appends; so must we.
	perVersion = bytes.Join([][]byte{
		protowire.AppendString(protowire.AppendTag(nil, 8, protowire.BytesType), "v7"),
		protowire.AppendBytes(protowire.AppendTag(nil, 25, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3)),
		protowire.AppendVarint(protowire.AppendTag(nil, 26, protowire.VarintType), 5),
	}, nil)
)

func fieldName(t *testing.T, field []byte) string {
	t.Helper()
	if n := only(pbFields(t, field), 2); len(n) == 1 {
		return string(n[0].b)
	}
	return ""
}

// withFutureFields copies the mixed fixture and rewrites its latest
// manifest (written by pylance) with the fields above added. It returns the
// dataset and the latest version.
func withFutureFields(t *testing.T) (string, uint64) {
	t.Helper()
	dir := copyFixture(t, "mixed")
	v := latestVersion(t, dir)
	p := manifestPath(t, dir, v)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sections, body := manifestFile(t, data)
	fs := pbFields(t, body)
	if txn := only(fs, 23); len(txn) != 1 || len(only(fs, 21)) != 0 {
		t.Fatalf("pylance's manifest: transaction_section fields 21 %v, 23 %v; want 23 only", only(fs, 21), txn)
	}
	var nb []byte
	firstFragment := true
	for _, f := range fs {
		switch {
		case f.num == 1 && fieldName(t, f.b) == "color":
			nb = protowire.AppendBytes(protowire.AppendTag(nb, 1, protowire.BytesType), append(bytes.Clone(f.b), futureField...))
		case f.num == 2 && firstFragment:
			firstFragment = false
			var frag []byte
			for _, g := range pbFields(t, f.b) {
				if g.num == 2 { // the fragment's DataFile
					g.raw = protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), append(bytes.Clone(g.b), futureDataFile...))
				}
				frag = append(frag, g.raw...)
			}
			frag = append(frag, futureFragment...)
			nb = protowire.AppendBytes(protowire.AppendTag(nb, 2, protowire.BytesType), frag)
		default:
			nb = append(nb, f.raw...)
		}
		if f.num == 3 {
			nb = append(nb, futureTopFields[0]...) // among known fields
		}
	}
	nb = append(nb, bytes.Join(futureTopFields[1:], nil)...)
	nb = append(nb, perVersion...)
	out := withManifestBody(data, sections, nb)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lance.ParseManifest(out); err != nil {
		t.Fatal(err)
	}
	return dir, v
}

// checkCarried checks the manifest of version v, committed by us on top of
// the manifest withFutureFields wrote.
func checkCarried(t *testing.T, dir string, v uint64) {
	t.Helper()
	data, err := os.ReadFile(manifestPath(t, dir, v))
	if err != nil {
		t.Fatal(err)
	}
	sections, body := manifestFile(t, data)
	fs := pbFields(t, body)
	if got := rawOf(only(fs, 100, 101, 102)); !bytes.Equal(got, futureTop) {
		t.Errorf("version %d: unknown fields %x, want %x", v, got, futureTop)
	}
	if got := only(fs, 4, 8, 17, 22, 23, 24, 25, 26); len(got) != 0 {
		t.Errorf("version %d: per-version fields were copied: %v", v, got)
	}
	// Fields we write ourselves appear once: none was also copied.
	for _, num := range []protowire.Number{3, 6, 7, 9, 10, 11, 12, 13, 15, 21} {
		if got := only(fs, num); len(got) > 1 {
			t.Errorf("version %d: field %d appears %d times", v, num, len(got))
		}
	}
	if wv := only(fs, 13); len(wv) != 1 || !bytes.Contains(wv[0].b, []byte("persisting")) {
		t.Errorf("version %d: writer_version %v", v, wv)
	}
	// Our inline transaction, at the offset we give in field 21.
	txn := only(fs, 21)
	if len(txn) != 1 || txn[0].v+4 > uint64(len(sections)) {
		t.Fatalf("version %d: transaction_section %v", v, txn)
	}
	n := binary.LittleEndian.Uint32(sections[txn[0].v:])
	if rv := only(pbFields(t, sections[txn[0].v+4:txn[0].v+4+uint64(n)]), 1); len(rv) != 1 || rv[0].v != v-1 {
		t.Errorf("version %d: inline transaction has read_version %v, want %d", v, rv, v-1)
	}
	for _, f := range only(fs, 1) {
		if fieldName(t, f.b) == "color" && !bytes.HasSuffix(f.b, futureField) {
			t.Errorf("version %d: schema field lost its unknown field: %x", v, f.b)
		}
	}
	frag := only(fs, 2)[0]
	if !bytes.Contains(frag.b, futureFragment) {
		t.Errorf("version %d: fragment lost its unknown field: %x", v, frag.b)
	}
	if df := only(pbFields(t, frag.b), 2); !bytes.HasSuffix(df[0].b, futureDataFile) {
		t.Errorf("version %d: data file lost its unknown field: %x", v, df[0].b)
	}
}

func TestUnknownManifestFieldsCarriedForward(t *testing.T) {
	dir, v := withFutureFields(t)
	// A plain append, then one that widens id to double and so adds a data
	// file to every existing fragment (re-encoding the fragment message).
	if _, err := lance.Append(dir, mixedRecord(t), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	checkCarried(t, dir, v+1)
	sc := schemaFields(nullable("id", f64), nullable("st", arrow.StructOf(nullable("a", arrow.PrimitiveTypes.Int32), nullable("c", str))))
	d, err := lance.Append(dir, recordFromJSON(t, sc, `[{"id":1000.5,"st":{"a":7,"c":"new"}}]`), nil, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkCarried(t, dir, v+2)
	if d.CountRows() != 512+3 {
		t.Fatalf("%d rows, want %d", d.CountRows(), 512+3)
	}
}

// pylance opens, scans and appends to the versions we committed on top of a
// manifest with unknown fields, and we read what it appended.
func TestUnknownManifestFieldsReadByPylance(t *testing.T) {
	py := pylancePython(t)
	dir, v := withFutureFields(t)
	if _, err := lance.Append(dir, mixedRecord(t), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	checkCarried(t, dir, v+1)
	comparePylance(t, py, dir)
	out := runPython(t, py, `
import json, sys, lance, lance.debug, pyarrow as pa
d = lance.dataset(sys.argv[1])
t = d.to_table()
last = pa.Table.from_pylist(t.slice(t.num_rows - 1, 1).to_pylist(), schema=t.schema)
lance.write_dataset(last, sys.argv[1], mode="append")
d = lance.dataset(sys.argv[1])
print(json.dumps({"version": d.version, "rows": d.count_rows(), "transactions": len(lance.debug.list_transactions(d))}))
`, dir)
	var got struct{ Version, Rows, Transactions int64 }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != int64(v+2) || got.Rows != 512+2+1 {
		t.Fatalf("pylance append: %s", out)
	}
	comparePylance(t, py, dir)
	// And we append on top of Lance's version (Lance itself drops the fields
	// it does not know; that is its business).
	d, err := lance.Append(dir, mixedRecord(t), nil, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.CountRows() != 512+2+1+2 {
		t.Fatalf("%d rows after our last append", d.CountRows())
	}
	comparePylance(t, py, dir)
}
