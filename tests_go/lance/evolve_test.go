package lance_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
)

// Schema evolution through Append beyond new columns (docs/lance-format.md §11):
// int64 widened to double (top level, inside a struct, as a list item), new
// struct children (also inside list<struct> and nested structs), null-typed
// nested fields taking a type. Every version must keep reading as it was
// written, and the latest one under the evolved schema.

func nullable(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

var (
	i64 = arrow.PrimitiveTypes.Int64
	f64 = arrow.PrimitiveTypes.Float64
	str = arrow.BinaryTypes.String
)

func schemaFields(fs ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fs, nil) }

// evolveStep is one Append of an evolution scenario.
type evolveStep struct {
	schema *arrow.Schema
	rows   string // JSON rows of the record
}

// evolveCase is a scenario: the steps, and what each version must read as
// (JSON rows) and which Arrow type the evolved column has in each version.
type evolveCase struct {
	name   string
	steps  []evolveStep
	want   []string // rows of version i+1
	column string   // column whose type is checked
	types  []string // its type in version i+1 (arrow-go String())
}

var evolveCases = []evolveCase{
	{
		name: "widen_int64_to_double",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64), nullable("cnt", i64), nullable("s", str)),
				`[{"id":0,"cnt":10,"s":"a"},{"id":1,"cnt":null,"s":"b"},{"id":2,"cnt":-3,"s":null}]`},
			{schemaFields(nullable("id", i64), nullable("cnt", i64), nullable("s", str)),
				`[{"id":3,"cnt":123456789012,"s":"d"}]`},
			{schemaFields(nullable("id", i64), nullable("cnt", f64), nullable("s", str)),
				`[{"id":4,"cnt":1.5,"s":"e"},{"id":5,"cnt":null,"s":"f"}]`},
			// ints into the widened column are stored as doubles, no new schema
			{schemaFields(nullable("id", i64), nullable("cnt", i64)),
				`[{"id":6,"cnt":7}]`},
		},
		want: []string{
			`[{"cnt":10,"id":0,"s":"a"},{"cnt":null,"id":1,"s":"b"},{"cnt":-3,"id":2,"s":null}]`,
			`[{"cnt":10,"id":0,"s":"a"},{"cnt":null,"id":1,"s":"b"},{"cnt":-3,"id":2,"s":null},{"cnt":123456789012,"id":3,"s":"d"}]`,
			`[{"cnt":10,"id":0,"s":"a"},{"cnt":null,"id":1,"s":"b"},{"cnt":-3,"id":2,"s":null},{"cnt":123456789012,"id":3,"s":"d"},{"cnt":1.5,"id":4,"s":"e"},{"cnt":null,"id":5,"s":"f"}]`,
			`[{"cnt":10,"id":0,"s":"a"},{"cnt":null,"id":1,"s":"b"},{"cnt":-3,"id":2,"s":null},{"cnt":123456789012,"id":3,"s":"d"},{"cnt":1.5,"id":4,"s":"e"},{"cnt":null,"id":5,"s":"f"},{"cnt":7,"id":6,"s":null}]`,
		},
		column: "cnt",
		types:  []string{"int64", "int64", "float64", "float64"},
	},
	{
		name: "struct_new_child",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", i64)))),
				`[{"id":0,"st":{"a":1}},{"id":1,"st":{"a":null}},{"id":2,"st":null}]`},
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", i64), nullable("b", str)))),
				`[{"id":3,"st":{"a":4,"b":"x"}},{"id":4,"st":{"a":null,"b":null}}]`},
			// a record without the new child: it reads as NULL
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", i64)))),
				`[{"id":5,"st":{"a":6}}]`},
		},
		want: []string{
			// 2.0 cannot store struct validity: a null struct reads as a struct of nulls (§9)
			`[{"id":0,"st":{"a":1}},{"id":1,"st":{"a":null}},{"id":2,"st":{"a":null}}]`,
			`[{"id":0,"st":{"a":1,"b":null}},{"id":1,"st":{"a":null,"b":null}},{"id":2,"st":{"a":null,"b":null}},{"id":3,"st":{"a":4,"b":"x"}},{"id":4,"st":{"a":null,"b":null}}]`,
			`[{"id":0,"st":{"a":1,"b":null}},{"id":1,"st":{"a":null,"b":null}},{"id":2,"st":{"a":null,"b":null}},{"id":3,"st":{"a":4,"b":"x"}},{"id":4,"st":{"a":null,"b":null}},{"id":5,"st":{"a":6,"b":null}}]`,
		},
		column: "st",
		types:  []string{"struct<a: int64 nullable>", "struct<a: int64 nullable, b: utf8 nullable>", "struct<a: int64 nullable, b: utf8 nullable>"},
	},
	{
		name: "nested_struct_and_list_struct_children",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64),
				nullable("st", arrow.StructOf(nullable("in", arrow.StructOf(nullable("x", i64))))),
				nullable("ls", arrow.ListOf(arrow.StructOf(nullable("p", i64))))),
				`[{"id":0,"st":{"in":{"x":1}},"ls":[{"p":1},{"p":2}]},{"id":1,"st":{"in":{"x":null}},"ls":null},{"id":2,"st":{"in":{"x":3}},"ls":[]}]`},
			{schemaFields(nullable("id", i64),
				nullable("st", arrow.StructOf(nullable("in", arrow.StructOf(nullable("x", i64), nullable("y", str))), nullable("z", i64))),
				nullable("ls", arrow.ListOf(arrow.StructOf(nullable("p", i64), nullable("q", str))))),
				`[{"id":3,"st":{"in":{"x":4,"y":"y4"},"z":40},"ls":[{"p":5,"q":"q5"}]}]`},
		},
		want: []string{
			`[{"id":0,"ls":[{"p":1},{"p":2}],"st":{"in":{"x":1}}},{"id":1,"ls":null,"st":{"in":{"x":null}}},{"id":2,"ls":[],"st":{"in":{"x":3}}}]`,
			`[{"id":0,"ls":[{"p":1,"q":null},{"p":2,"q":null}],"st":{"in":{"x":1,"y":null},"z":null}},{"id":1,"ls":null,"st":{"in":{"x":null,"y":null},"z":null}},{"id":2,"ls":[],"st":{"in":{"x":3,"y":null},"z":null}},{"id":3,"ls":[{"p":5,"q":"q5"}],"st":{"in":{"x":4,"y":"y4"},"z":40}}]`,
		},
		column: "ls",
		types:  []string{"list<item: struct<p: int64 nullable>, nullable>", "list<item: struct<p: int64 nullable, q: utf8 nullable>, nullable>"},
	},
	{
		name: "widen_list_item",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64), nullable("l", arrow.ListOf(i64))),
				`[{"id":0,"l":[1,2,3]},{"id":1,"l":null},{"id":2,"l":[]},{"id":3,"l":[null,5]}]`},
			{schemaFields(nullable("id", i64), nullable("l", arrow.ListOf(f64))),
				`[{"id":4,"l":[0.5,null]},{"id":5,"l":[]}]`},
			{schemaFields(nullable("id", i64), nullable("l", arrow.ListOf(i64))),
				`[{"id":6,"l":[6]}]`},
		},
		want: []string{
			`[{"id":0,"l":[1,2,3]},{"id":1,"l":null},{"id":2,"l":[]},{"id":3,"l":[null,5]}]`,
			`[{"id":0,"l":[1,2,3]},{"id":1,"l":null},{"id":2,"l":[]},{"id":3,"l":[null,5]},{"id":4,"l":[0.5,null]},{"id":5,"l":[]}]`,
			`[{"id":0,"l":[1,2,3]},{"id":1,"l":null},{"id":2,"l":[]},{"id":3,"l":[null,5]},{"id":4,"l":[0.5,null]},{"id":5,"l":[]},{"id":6,"l":[6]}]`,
		},
		column: "l",
		types:  []string{"list<item: int64, nullable>", "list<item: float64, nullable>", "list<item: float64, nullable>"},
	},
	{
		name: "widen_inside_struct",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", i64), nullable("b", str)))),
				`[{"id":0,"st":{"a":1,"b":"x"}},{"id":1,"st":{"a":null,"b":"y"}}]`},
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", f64), nullable("c", i64)))),
				`[{"id":2,"st":{"a":2.5,"c":7}}]`},
		},
		want: []string{
			`[{"id":0,"st":{"a":1,"b":"x"}},{"id":1,"st":{"a":null,"b":"y"}}]`,
			`[{"id":0,"st":{"a":1,"b":"x","c":null}},{"id":1,"st":{"a":null,"b":"y","c":null}},{"id":2,"st":{"a":2.5,"b":null,"c":7}}]`,
		},
		column: "st",
		types:  []string{"struct<a: int64 nullable, b: utf8 nullable>", "struct<a: float64 nullable, b: utf8 nullable, c: int64 nullable>"},
	},
	{
		name: "nested_null_takes_a_type",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("n", arrow.Null), nullable("a", i64))),
				nullable("only", arrow.StructOf(nullable("n", arrow.Null))), nullable("ln", arrow.ListOf(arrow.Null))),
				`[{"id":0,"st":{"n":null,"a":1},"only":{"n":null},"ln":[null,null]},{"id":1,"st":{"n":null,"a":2},"only":null,"ln":null}]`},
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("n", str), nullable("a", i64))),
				nullable("only", arrow.StructOf(nullable("n", i64))), nullable("ln", arrow.ListOf(str))),
				`[{"id":2,"st":{"n":"t","a":3},"only":{"n":5},"ln":["u"]}]`},
		},
		want: []string{
			`[{"id":0,"ln":[null,null],"only":{"n":null},"st":{"a":1,"n":null}},{"id":1,"ln":null,"only":{"n":null},"st":{"a":2,"n":null}}]`,
			`[{"id":0,"ln":[null,null],"only":{"n":null},"st":{"a":1,"n":null}},{"id":1,"ln":null,"only":{"n":null},"st":{"a":2,"n":null}},{"id":2,"ln":["u"],"only":{"n":5},"st":{"a":3,"n":"t"}}]`,
		},
		column: "ln",
		types:  []string{"list<item: null, nullable>", "list<item: utf8, nullable>"},
	},
	{
		// Structs never read as NULL in fragments that predate them: Lance's
		// 2.0 writer cannot rewrite a NULL struct, so its compaction would fail.
		name: "new_struct_fields",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", i64))),
				nullable("ls", arrow.ListOf(arrow.StructOf(nullable("p", i64))))),
				`[{"id":0,"st":{"a":1},"ls":[{"p":1}]},{"id":1,"st":{"a":2},"ls":null}]`},
			{schemaFields(nullable("id", i64), nullable("st", arrow.StructOf(nullable("a", i64), nullable("in", arrow.StructOf(nullable("x", i64))))),
				nullable("ls", arrow.ListOf(arrow.StructOf(nullable("p", i64), nullable("q", arrow.StructOf(nullable("y", i64)))))),
				nullable("ns", arrow.StructOf(nullable("k", str)))),
				`[{"id":2,"st":{"a":3,"in":{"x":4}},"ls":[{"p":5,"q":{"y":6}}],"ns":{"k":"v"}}]`},
			// struct columns missing or null-typed in the record
			{schemaFields(nullable("id", i64), nullable("ns", arrow.Null)), `[{"id":3,"ns":null}]`},
		},
		want: []string{
			`[{"id":0,"ls":[{"p":1}],"st":{"a":1}},{"id":1,"ls":null,"st":{"a":2}}]`,
			`[{"id":0,"ls":[{"p":1,"q":{"y":null}}],"ns":{"k":null},"st":{"a":1,"in":{"x":null}}},{"id":1,"ls":null,"ns":{"k":null},"st":{"a":2,"in":{"x":null}}},{"id":2,"ls":[{"p":5,"q":{"y":6}}],"ns":{"k":"v"},"st":{"a":3,"in":{"x":4}}}]`,
			`[{"id":0,"ls":[{"p":1,"q":{"y":null}}],"ns":{"k":null},"st":{"a":1,"in":{"x":null}}},{"id":1,"ls":null,"ns":{"k":null},"st":{"a":2,"in":{"x":null}}},{"id":2,"ls":[{"p":5,"q":{"y":6}}],"ns":{"k":"v"},"st":{"a":3,"in":{"x":4}}},{"id":3,"ls":null,"ns":{"k":null},"st":{"a":null,"in":{"x":null}}}]`,
		},
		column: "ns",
		types:  []string{"", "struct<k: utf8 nullable>", "struct<k: utf8 nullable>"},
	},
	{
		name: "widen_columns_added_later",
		steps: []evolveStep{
			{schemaFields(nullable("id", i64)), `[{"id":0}]`},
			{schemaFields(nullable("id", i64), nullable("cnt", i64), nullable("st", arrow.StructOf(nullable("a", i64)))),
				`[{"id":1,"cnt":5,"st":{"a":1}}]`},
			{schemaFields(nullable("id", i64), nullable("cnt", f64), nullable("st", arrow.StructOf(nullable("a", f64)))),
				`[{"id":2,"cnt":0.5,"st":{"a":0.5}}]`},
		},
		want: []string{
			`[{"id":0}]`,
			`[{"cnt":null,"id":0,"st":{"a":null}},{"cnt":5,"id":1,"st":{"a":1}}]`,
			`[{"cnt":null,"id":0,"st":{"a":null}},{"cnt":5,"id":1,"st":{"a":1}},{"cnt":0.5,"id":2,"st":{"a":0.5}}]`,
		},
		column: "st",
		types:  []string{"", "struct<a: int64 nullable>", "struct<a: float64 nullable>"},
	},
}

// buildEvolveCase writes the case's versions (small pages, so that columns
// span several pages) and returns the dataset path.
func buildEvolveCase(t *testing.T, c evolveCase, dir string) string {
	t.Helper()
	path := filepath.Join(dir, c.name)
	for i, s := range c.steps {
		d, err := lance.Append(path, recordFromJSON(t, s.schema, s.rows), nil, lance.Options{MaxPageBytes: 16})
		if err != nil {
			t.Fatalf("%s: append %d: %v", c.name, i+1, err)
		}
		if d.Version() != uint64(i+1) {
			t.Fatalf("%s: append %d committed version %d", c.name, i+1, d.Version())
		}
	}
	return path
}

func checkEvolveCase(t *testing.T, c evolveCase, path string) {
	t.Helper()
	for i, want := range c.want {
		d, err := lance.OpenVersion(path, uint64(i+1), lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rowsJSON(t, readRows(t, d, 0, 100)); got != want {
			t.Errorf("%s version %d:\n got %s\nwant %s", c.name, i+1, got, want)
		}
		f, ok := d.Schema().FieldsByName(c.column)
		if c.types[i] == "" && ok || c.types[i] != "" && (!ok || f[0].Type.String() != c.types[i]) {
			t.Errorf("%s version %d: column %s is %v, want %s", c.name, i+1, c.column, f, c.types[i])
		}
		// Ranges that start and end inside fragments and pages.
		all := readRows(t, d, 0, 100)
		for off := int64(0); off < int64(len(all)); off++ {
			part := readRows(t, d, off, 2)
			if !reflect.DeepEqual(part, all[off:min(int(off)+2, len(all))]) {
				t.Errorf("%s version %d: ReadRange(%d, 2) = %v", c.name, i+1, off, part)
			}
		}
	}
}

func TestAppendEvolveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range evolveCases {
		t.Run(c.name, func(t *testing.T) {
			checkEvolveCase(t, c, buildEvolveCase(t, c, dir))
		})
	}
}

// Widening rewrites the column of every existing fragment into one extra
// data file, and nothing else: the other columns and the old files stay.
func TestAppendWidenWritesOneExtraFilePerFragment(t *testing.T) {
	c := evolveCases[0]
	path := buildEvolveCase(t, evolveCase{name: c.name, steps: c.steps[:2]}, t.TempDir())
	if n := countFiles(t, filepath.Join(path, "data")); n != 2 {
		t.Fatalf("%d data files before widening", n)
	}
	s := c.steps[2]
	if _, err := lance.Append(path, recordFromJSON(t, s.schema, s.rows), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	// 2 old files + 2 extra files (one per old fragment) + the new fragment
	if n := countFiles(t, filepath.Join(path, "data")); n != 5 {
		t.Fatalf("%d data files after widening, want 5", n)
	}
	s = c.steps[3]
	if _, err := lance.Append(path, recordFromJSON(t, s.schema, s.rows), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := countFiles(t, filepath.Join(path, "data")); n != 6 {
		t.Fatalf("%d data files after appending ints to the widened column, want 6", n)
	}
}

// Widening a Lance-written dataset: fragments with Arrow deletion files,
// dictionary-encoded strings, a compacted fragment. The extra files cover
// physical rows, so the deletion files stay valid.
func TestAppendWidenLanceWrittenDataset(t *testing.T) {
	dir := copyFixture(t, "mixed")
	before, err := lance.Open(dir, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := readRows(t, before, 0, before.CountRows())
	sc := schemaFields(nullable("id", f64), nullable("st", arrow.StructOf(nullable("a", arrow.PrimitiveTypes.Int32), nullable("c", str))))
	d, err := lance.Append(dir, recordFromJSON(t, sc, `[{"id":1000.5,"st":{"a":7,"c":"new"}}]`), map[string]string{"wm": "7"}, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := d.Schema().FieldsByName("id"); f[0].Type.ID() != arrow.FLOAT64 {
		t.Fatalf("id is %s", f[0].Type)
	}
	if d.CountRows() != before.CountRows()+1 || d.Config()["wm"] != "7" {
		t.Fatalf("%d rows, config %v", d.CountRows(), d.Config())
	}
	got := readRows(t, d, 0, d.CountRows())
	for i, r := range old {
		r["st"].(map[string]any)["c"] = nil
		if !reflect.DeepEqual(got[i], r) {
			t.Fatalf("row %d: %v, want %v", i, got[i], r)
		}
	}
	last := got[len(got)-1]
	if last["id"] != 1000.5 || last["color"] != nil || last["st"].(map[string]any)["c"] != "new" {
		t.Fatalf("appended row %v", last)
	}
}

// A widening append that loses the commit race to a plain append re-plans:
// the winner's new fragment gets its extra file too, the extra files already
// written are reused, and nothing is left behind.
func TestAppendWidenRebasesOverConcurrentAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	ints := schemaFields(nullable("id", i64), nullable("cnt", i64))
	if _, err := lance.Append(dir, recordFromJSON(t, ints, `[{"id":0,"cnt":1},{"id":1,"cnt":2}]`), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	fs := &hookFS{FS: vfs.Default, t: t}
	fs.beforeLink = func() {
		if _, err := lance.Append(dir, recordFromJSON(t, ints, `[{"id":2,"cnt":3}]`), map[string]string{"a": "1"}, lance.Options{}); err != nil {
			t.Errorf("writer A: %v", err)
		}
	}
	floats := schemaFields(nullable("id", i64), nullable("cnt", f64))
	d, err := lance.Append(dir, recordFromJSON(t, floats, `[{"id":3,"cnt":4.5}]`), map[string]string{"b": "2"}, lance.Options{FS: fs})
	if err != nil {
		t.Fatalf("writer B: %v", err)
	}
	if d.Version() != 3 {
		t.Fatalf("version %d", d.Version())
	}
	want := `[{"cnt":1,"id":0},{"cnt":2,"id":1},{"cnt":3,"id":2},{"cnt":4.5,"id":3}]`
	if got := rowsJSON(t, readRows(t, d, 0, 10)); got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
	if f, _ := d.Schema().FieldsByName("cnt"); f[0].Type.ID() != arrow.FLOAT64 {
		t.Fatalf("cnt is %s", f[0].Type)
	}
	// v1 file, A's file, B's file, one extra file for each of the 2 old fragments
	if n := countFiles(t, filepath.Join(dir, "data")); n != 5 {
		t.Fatalf("%d data files, want 5", n)
	}
}

// Changes that cannot be stored say which column and which types.
func TestAppendEvolveRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	sc := schemaFields(nullable("id", i64), nullable("l", arrow.ListOf(i64)), nullable("st", arrow.StructOf(nullable("a", f64))))
	if _, err := lance.Append(dir, recordFromJSON(t, sc, `[{"id":1,"l":[1],"st":{"a":1}}]`), nil, lance.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		schema *arrow.Schema
		row    string
		says   string
	}{
		{schemaFields(nullable("id", str)), `[{"id":"x"}]`, `column "id" is int64 in the dataset but utf8 in the record`},
		{schemaFields(nullable("l", arrow.ListOf(str))), `[{"l":["x"]}]`, `column "l[]" is int64 in the dataset but utf8`},
		{schemaFields(nullable("st", arrow.StructOf(nullable("a", str)))), `[{"st":{"a":"x"}}]`, `column "st.a" is float64`},
		{schemaFields(nullable("st", i64)), `[{"st":1}]`, `column "st" is struct<a: float64 nullable>`},
	} {
		_, err := lance.Append(dir, recordFromJSON(t, c.schema, c.row), nil, lance.Options{})
		if !errors.Is(err, lance.ErrSchemaMismatch) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v", c.schema, err)
		}
	}
	if n := countFiles(t, filepath.Join(dir, "data")); n != 1 {
		t.Fatalf("refused appends left %d data files", n)
	}
}
