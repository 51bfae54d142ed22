package lance_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/engine"
	lance "github.com/persisting/persisting/core/lance/table"
)

// The engine unifies schemas (core/schema) and flushes batches to Lance. A
// flush after int64 widened to float64, a struct gained a field or a list's
// items widened must commit: before, lance.Append refused such a batch and
// every later flush of the bucket failed.
func TestEngineFlushesEvolvedSchema(t *testing.T) {
	dir := t.TempDir()
	open := func() *engine.Engine {
		e, err := engine.Open(engine.Config{Dir: dir, BatchSize: 1 << 30,
			OpenSink: func() (engine.Sink, error) { return engine.OpenLanceSink(dir, lance.Options{}) }})
		if err != nil {
			t.Fatal(err)
		}
		<-e.Ready()
		if err := e.ReadyErr(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	flush := func(e *engine.Engine) {
		t.Helper()
		done := make(chan error, 1)
		e.Flush(func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	appendRows := func(e *engine.Engine, s *arrow.Schema, rows string) {
		t.Helper()
		if _, _, err := e.Append(recordFromJSON(t, s, rows), nil); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	st1 := arrow.StructOf(nullable("a", i64))
	st2 := arrow.StructOf(nullable("a", i64), nullable("b", str))
	e := open()
	appendRows(e, schemaFields(nullable("id", i64), nullable("cnt", i64), nullable("st", st1), nullable("l", arrow.ListOf(i64))),
		`[{"id":0,"cnt":1,"st":{"a":1},"l":[1,2]},{"id":1,"cnt":null,"st":{"a":null},"l":null}]`)
	flush(e)
	appendRows(e, schemaFields(nullable("id", i64), nullable("cnt", f64), nullable("st", st2), nullable("l", arrow.ListOf(f64))),
		`[{"id":2,"cnt":2.5,"st":{"a":2,"b":"x"},"l":[0.5]}]`)
	flush(e)
	// ints again, into the widened columns
	appendRows(e, schemaFields(nullable("id", i64), nullable("cnt", i64), nullable("l", arrow.ListOf(i64))),
		`[{"id":3,"cnt":3,"l":[3]}]`)
	flush(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened: the bucket's table schema comes back from the dataset.
	e = open()
	appendRows(e, schemaFields(nullable("id", i64), nullable("cnt", i64)), `[{"id":4,"cnt":4}]`)
	flush(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, engine.DatasetName)
	d, err := lance.Open(path, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"cnt":1,"id":0,"l":[1,2],"st":{"a":1,"b":null}},{"cnt":null,"id":1,"l":null,"st":{"a":null,"b":null}},` +
		`{"cnt":2.5,"id":2,"l":[0.5],"st":{"a":2,"b":"x"}},{"cnt":3,"id":3,"l":[3],"st":{"a":null,"b":null}},{"cnt":4,"id":4,"l":null,"st":{"a":null,"b":null}}]`
	if got := rowsJSON(t, readRows(t, d, 0, 100)); got != want {
		t.Fatalf("rows:\n got %s\nwant %s", got, want)
	}
	for col, typ := range map[string]string{"cnt": "float64", "st": st2.String(), "l": "list<item: float64, nullable>"} {
		if f, _ := d.Schema().FieldsByName(col); f[0].Type.String() != typ {
			t.Errorf("%s is %s, want %s", col, f[0].Type, typ)
		}
	}
	// Real Lance reads every version of the bucket's dataset as we do.
	if py, why := findPylance(); py != "" {
		got := comparePylance(t, py, path)
		vs, _ := lance.ListVersions(path, lance.Options{})
		t.Logf("pylance %s reads version %d with schema %v", why, vs[len(vs)-1].Version, got[path][strconv.FormatUint(vs[len(vs)-1].Version, 10)].Schema)
	} else {
		t.Logf("not checked with pylance: %s", why)
	}
}
