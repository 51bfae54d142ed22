package engine

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/persisting/persisting/core/schema"
)

func intBatch(t testing.TB, name string, vals ...int64) arrow.RecordBatch {
	t.Helper()
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, nil)
	col := b.NewArray()
	defer col.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	return array.NewRecordBatch(sc, []arrow.Array{col}, int64(len(vals)))
}

func openTest(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 100
	}
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	<-e.Ready()
	if err := e.ReadyErr(); err != nil {
		t.Fatal(err)
	}
	return e
}

// appendNow appends and waits for the rows to be visible.
func appendNow(e *Engine, rec arrow.RecordBatch) (int64, error) {
	type result struct {
		first int64
		err   error
	}
	ch := make(chan result, 1)
	first, pending, err := e.Append(rec, func(first int64, err error) { ch <- result{first, err} })
	if err != nil || !pending {
		return first, err
	}
	r := <-ch
	return r.first, r.err
}

func readInts(t testing.TB, e *Engine, offset, limit int64) []int64 {
	t.Helper()
	recs, _, err := e.Read(offset, limit, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, r := range recs {
		col := r.Column(0).(*array.Int64)
		out = append(out, col.Int64Values()...)
		r.Release()
	}
	return out
}

func TestOffsetsAreContiguous(t *testing.T) {
	e := openTest(t, Config{})
	for i, want := range []int64{0, 3, 5} {
		vals := [][]int64{{1, 2, 3}, {4, 5}, {6}}[i]
		rec := intBatch(t, "x", vals...)
		first, err := appendNow(e, rec)
		rec.Release()
		if err != nil || first != want {
			t.Fatalf("append %d: first=%d err=%v, want %d", i, first, err, want)
		}
	}
	if got := e.TotalCount(); got != 6 {
		t.Fatalf("total %d", got)
	}
	cases := []struct {
		off, lim int64
		want     []int64
	}{
		{0, 6, []int64{1, 2, 3, 4, 5, 6}},
		{2, 2, []int64{3, 4}}, // spans two batches
		{4, 100, []int64{5, 6}},
		{6, 10, nil},
		{100, 10, nil},
		{0, 0, nil},
	}
	for _, c := range cases {
		if got := readInts(t, e, c.off, c.lim); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("read(%d,%d) = %v, want %v", c.off, c.lim, got, c.want)
		}
	}
}

func TestAppendCopiesItsInput(t *testing.T) {
	e := openTest(t, Config{})
	rec := intBatch(t, "x", 7, 8)
	if _, err := appendNow(e, rec); err != nil {
		t.Fatal(err)
	}
	// Scribble over the producer's buffer: the engine must hold its own copy.
	vals := rec.Column(0).(*array.Int64).Int64Values()
	vals[0], vals[1] = -1, -1
	rec.Release()
	if got := readInts(t, e, 0, 2); fmt.Sprint(got) != "[7 8]" {
		t.Fatalf("got %v", got)
	}
}

func TestConcurrentAppendsKeepEveryRowOnce(t *testing.T) {
	e := openTest(t, Config{})
	const writers, per = 8, 200
	var wg sync.WaitGroup
	firsts := make(chan int64, writers*per)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				rec := intBatch(t, "x", int64(w*per+i))
				first, err := appendNow(e, rec)
				rec.Release()
				if err != nil {
					t.Error(err)
					return
				}
				firsts <- first
			}
		}(w)
	}
	wg.Wait()
	close(firsts)
	seen := map[int64]bool{}
	for f := range firsts {
		if seen[f] {
			t.Fatalf("offset %d handed out twice", f)
		}
		seen[f] = true
	}
	vals := readInts(t, e, 0, writers*per)
	if len(vals) != writers*per {
		t.Fatalf("read %d rows", len(vals))
	}
	got := map[int64]bool{}
	for _, v := range vals {
		got[v] = true
	}
	if len(got) != writers*per {
		t.Fatalf("%d distinct values, want %d", len(got), writers*per)
	}
}

func TestWaitersWakeOnAppend(t *testing.T) {
	e := openTest(t, Config{})
	ch := e.Changed()
	woke := make(chan struct{})
	go func() { <-ch; close(woke) }()
	select {
	case <-woke:
		t.Fatal("woke before any append")
	case <-time.After(20 * time.Millisecond):
	}
	rec := intBatch(t, "x", 1)
	appendNow(e, rec)
	rec.Release()
	select {
	case <-woke:
	case <-time.After(2 * time.Second):
		t.Fatal("waiter not woken")
	}
}

func TestSchemaEvolvesAndOldRowsConform(t *testing.T) {
	e := openTest(t, Config{})
	a := intBatch(t, "x", 1)
	appendNow(e, a)
	a.Release()
	// A new column arrives: old rows read it as null.
	b := intBatch(t, "y", 2)
	if _, err := appendNow(e, b); err != nil {
		t.Fatal(err)
	}
	b.Release()
	recs, sc, err := e.Read(0, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if sc.NumFields() != 2 || sc.Field(0).Name != "x" || sc.Field(1).Name != "y" {
		t.Fatalf("schema %v", sc)
	}
	if !recs[0].Column(1).IsNull(0) || recs[0].Column(0).IsNull(0) {
		t.Fatal("old row should have x and a null y")
	}
}

func TestIncompatibleSchemaRefusedAndBucketKeepsWorking(t *testing.T) {
	e := openTest(t, Config{})
	a := intBatch(t, "x", 1)
	appendNow(e, a)
	a.Release()
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	sb.Append("one")
	col := sb.NewArray()
	sb.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	bad := array.NewRecordBatch(sc, []arrow.Array{col}, 1)
	col.Release()
	_, err := appendNow(e, bad)
	bad.Release()
	var se *schema.Error
	if !errors.As(err, &se) || se.Field != "x" {
		t.Fatalf("want schema error on x, got %v", err)
	}
	c := intBatch(t, "x", 3)
	if first, err := appendNow(e, c); err != nil || first != 1 {
		t.Fatalf("append after refusal: %d %v", first, err)
	}
	c.Release()
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Config{Dir: dir})
	_, err := Open(Config{Dir: dir, BatchSize: 10})
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.PID == 0 {
		t.Fatalf("want LockedError with pid, got %v", err)
	}
	e.Close()
	e2, err := Open(Config{Dir: dir, BatchSize: 10})
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	e2.Close()
}

func TestClosedEngineRefuses(t *testing.T) {
	e := openTest(t, Config{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	rec := intBatch(t, "x", 1)
	defer rec.Release()
	if _, err := appendNow(e, rec); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, _, err := e.Read(0, 1, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestFlushWithoutSinkCompletes(t *testing.T) {
	e := openTest(t, Config{})
	done := make(chan error, 1)
	e.Flush(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
