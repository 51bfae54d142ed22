package lance_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/schema"
)

// The engine's contract: every batch core/schema.Unify accepts is conformed
// to the unified table schema and flushed with lance.Append, which must
// commit it, and the dataset must then read every row ever flushed under the
// latest schema (values converted as schema.Conform converts them). Random
// sequences of evolving batches check that for ints, doubles, null-typed
// columns, structs gaining fields (also nested and in lists) and lists.
func TestAppendRandomEvolution(t *testing.T) {
	seeds := int64(40)
	if testing.Short() {
		seeds = 8
	}
	for seed := int64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomEvolution(t, seed, t.TempDir()) })
	}
}

// randomEvolution writes a random evolution at dir/random-seed, checking it
// after every step, and returns the dataset path.
func randomEvolution(t *testing.T, seed int64, dir string) string {
	r := rand.New(rand.NewSource(seed))
	path := filepath.Join(dir, fmt.Sprint("random-", seed))
	var table *arrow.Schema
	var flushed []string // JSON rows of every flushed batch, as written
	var schemas []*arrow.Schema
	for step := 0; step < 6; step++ {
		rs := randomSchema(r)
		rows := randomRows(r, rs, 1+r.Intn(3))
		unified, _, err := schema.Unify(table, rs)
		if err != nil {
			continue // the engine refuses the batch; nothing reaches Lance
		}
		table = unified
		rec, err := schema.Conform(recordFromJSON(t, rs, rows), table, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("step %d: conform: %v", step, err)
		}
		b, _ := rec.MarshalJSON()
		flushed, schemas = append(flushed, string(b)), append(schemas, table)
		d, err := lance.Append(path, rec, nil, lance.Options{MaxPageBytes: 32})
		if err != nil {
			t.Fatalf("step %d: append %s under %s: %v", step, rows, table, err)
		}
		// Every row flushed so far, conformed to the latest table schema.
		var want []map[string]any
		for _, js := range flushed {
			for _, row := range decodeRows(t, js) {
				want = append(want, normalizeRow(row, table))
			}
		}
		got := readRows(t, d, 0, 1<<20)
		for i := range got {
			got[i] = normalizeRow(got[i], table)
		}
		if !reflect.DeepEqual(jsonNorm(t, got), jsonNorm(t, want)) {
			t.Fatalf("step %d under %s:\n got %s\nwant %s", step, table, rowsJSON(t, got), rowsJSON(t, want))
		}
		for _, f := range table.Fields() {
			lf, ok := d.Schema().FieldsByName(f.Name)
			if !ok || typeShape(lf[0].Type) != typeShape(f.Type) {
				t.Fatalf("step %d: column %s is %v in Lance, %s in the table", step, f.Name, lf, f.Type)
			}
		}
	}
	// Every version still reads as it was written.
	for v := range schemas {
		d, err := lance.OpenVersion(path, uint64(v+1), lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var want []map[string]any
		for _, js := range flushed[:v+1] {
			for _, row := range decodeRows(t, js) {
				want = append(want, normalizeRow(row, schemas[v]))
			}
		}
		got := readRows(t, d, 0, 1<<20)
		for i := range got {
			got[i] = normalizeRow(got[i], schemas[v])
		}
		if !reflect.DeepEqual(jsonNorm(t, got), jsonNorm(t, want)) {
			t.Fatalf("version %d:\n got %s\nwant %s", v+1, rowsJSON(t, got), rowsJSON(t, want))
		}
	}
	return path
}

func typeShape(t arrow.DataType) string { return strings.ReplaceAll(t.String(), " nullable", "") }

func decodeRows(t *testing.T, js string) []map[string]any {
	var rows []map[string]any
	if err := json.Unmarshal([]byte(js), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// normalizeRow gives a row every column of s, and turns NULL structs into
// structs of NULLs: Lance file format 2.0 stores no struct validity (§9).
func normalizeRow(row map[string]any, s *arrow.Schema) map[string]any {
	out := map[string]any{}
	for _, f := range s.Fields() {
		out[f.Name] = normalizeValue(row[f.Name], f.Type)
	}
	return out
}

func normalizeValue(v any, t arrow.DataType) any {
	switch t := t.(type) {
	case *arrow.StructType:
		m, _ := v.(map[string]any)
		out := map[string]any{}
		for _, f := range t.Fields() {
			out[f.Name] = normalizeValue(m[f.Name], f.Type)
		}
		return out
	case *arrow.ListType:
		l, ok := v.([]any)
		if !ok {
			return nil
		}
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = normalizeValue(x, t.Elem())
		}
		return out
	}
	return v
}

// randomSchema draws a record schema from the shapes the engine evolves:
// each column may be absent, and each leaf is int64, float64 or null.
func randomSchema(r *rand.Rand) *arrow.Schema {
	num := func() arrow.DataType {
		return []arrow.DataType{i64, i64, f64, arrow.Null}[r.Intn(4)]
	}
	// Null-typed leaves only at the top level: schema.Conform (through
	// arrow's MakeArrayOfNull) panics when it fills a missing column whose
	// type has a null-typed field inside a struct or list.
	nested := func() arrow.DataType { return []arrow.DataType{i64, i64, f64}[r.Intn(3)] }
	var fs []arrow.Field
	maybe := func(name string, t func() arrow.DataType) {
		if r.Intn(4) != 0 {
			fs = append(fs, nullable(name, t()))
		}
	}
	fs = append(fs, nullable("id", i64))
	maybe("n", num)
	maybe("st", func() arrow.DataType {
		var kids []arrow.Field
		kids = append(kids, nullable("a", nested()))
		if r.Intn(2) == 0 {
			kids = append(kids, nullable("b", str))
		}
		if r.Intn(2) == 0 {
			kids = append(kids, nullable("c", arrow.StructOf(nullable("x", nested()))))
		}
		return arrow.StructOf(kids...)
	})
	maybe("l", func() arrow.DataType { return arrow.ListOf(nested()) })
	maybe("ls", func() arrow.DataType {
		kids := []arrow.Field{nullable("p", nested())}
		if r.Intn(2) == 0 {
			kids = append(kids, nullable("q", str))
		}
		return arrow.StructOf(kids...)
	})
	// ls is a list of the struct drawn above
	for i, f := range fs {
		if f.Name == "ls" {
			fs[i].Type = arrow.ListOf(f.Type)
		}
	}
	return arrow.NewSchema(fs, nil)
}

func randomRows(r *rand.Rand, s *arrow.Schema, n int) string {
	var rows []string
	for i := 0; i < n; i++ {
		var cols []string
		for _, f := range s.Fields() {
			cols = append(cols, fmt.Sprintf("%q:%s", f.Name, randomValue(r, f.Type, true)))
		}
		rows = append(rows, "{"+strings.Join(cols, ",")+"}")
	}
	return "[" + strings.Join(rows, ",") + "]"
}

func randomValue(r *rand.Rand, t arrow.DataType, top bool) string {
	switch t := t.(type) {
	case *arrow.StructType:
		// Structs are never NULL here: 2.0 cannot store struct validity.
		var kids []string
		for _, f := range t.Fields() {
			kids = append(kids, fmt.Sprintf("%q:%s", f.Name, randomValue(r, f.Type, false)))
		}
		return "{" + strings.Join(kids, ",") + "}"
	}
	if r.Intn(5) == 0 {
		return "null"
	}
	switch t := t.(type) {
	case *arrow.NullType:
		return "null"
	case *arrow.Int64Type:
		return fmt.Sprint(r.Intn(2000) - 1000)
	case *arrow.Float64Type:
		return fmt.Sprint(float64(r.Intn(2000)-1000) / 8)
	case *arrow.StringType:
		return fmt.Sprintf("%q", strings.Repeat("s", r.Intn(4)))
	case *arrow.ListType:
		var items []string
		for i := r.Intn(4); i > 0; i-- {
			items = append(items, randomValue(r, t.Elem(), false))
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	panic(fmt.Sprint("randomValue: ", t))
}
