package engine

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/vfs/errorfs"
)

// slowSink is an in-memory Sink whose Append can be held open, to test the
// flush protocol itself; the Lance sink has its own tests.
type slowSink struct {
	mu      sync.Mutex
	recs    []arrow.RecordBatch
	rows    int64
	gate    chan struct{} // Append waits for a token when non-nil
	entered chan struct{} // Append signals here on entry when non-nil
	fail    atomic.Bool
	appends atomic.Int64
}

func (s *slowSink) Rows() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows
}
func (s *slowSink) Schema() *arrow.Schema { return nil }
func (s *slowSink) Watermark() uint64     { return 0 }
func (s *slowSink) Close() error          { return nil }

func (s *slowSink) Append(rec arrow.RecordBatch, _ uint64) error {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.appends.Add(1)
	if s.fail.Load() {
		return errors.New("disk on fire")
	}
	rec.Retain()
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	s.rows += rec.NumRows()
	s.mu.Unlock()
	return nil
}

func (s *slowSink) Read(offset, limit int64) ([]arrow.RecordBatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrow.RecordBatch
	var start int64
	for _, r := range s.recs {
		lo, hi := max(offset-start, 0), min(offset+limit-start, r.NumRows())
		if lo < hi {
			out = append(out, r.NewSlice(lo, hi))
		}
		start += r.NumRows()
	}
	return out, nil
}

func appendInts(t *testing.T, e *Engine, vals ...int64) {
	t.Helper()
	rec := intBatch(t, "x", vals...)
	defer rec.Release()
	if _, err := appendNow(e, rec); err != nil {
		t.Fatal(err)
	}
}

func TestFlushMovesRowsWithoutGap(t *testing.T) {
	sink := &slowSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	e := openTest(t, Config{OpenSink: func() (Sink, error) { return sink, nil }, BatchSize: 1000})
	appendInts(t, e, 1, 2, 3)
	done := make(chan error, 1)
	e.Flush(func(err error) { done <- err })
	<-sink.entered // the flush has taken its snapshot of rows 1..3
	sink.entered = nil
	// While the sink write is held open, every row stays readable.
	for i := 0; i < 50; i++ {
		if got := readInts(t, e, 0, 3); len(got) != 3 {
			t.Fatalf("rows missing during flush: %v", got)
		}
	}
	appendInts(t, e, 4) // puts are not blocked by the flush
	sink.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.PersistedCount != 3 || st.BufferCount != 1 || st.TotalCount != 4 {
		t.Fatalf("stats after flush %+v", st)
	}
	if _, _, err := e.Read(0, 4, true); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("non-blocking read of persisted rows: %v", err)
	}
	recs, _, err := e.Read(0, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range recs {
		got = append(got, r.Column(0).(*array.Int64).Int64Values()...)
		r.Release()
	}
	if len(got) != 4 || got[0] != 1 || got[3] != 4 {
		t.Fatalf("read across sink and buffer: %v", got)
	}
	close(sink.gate)
}

func TestAutoFlushAtBatchSize(t *testing.T) {
	sink := &slowSink{}
	e := openTest(t, Config{OpenSink: func() (Sink, error) { return sink, nil }, BatchSize: 4})
	appendInts(t, e, 1, 2)
	appendInts(t, e, 3, 4)
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().PersistedCount != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("no automatic flush: %+v", e.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFailedFlushKeepsRowsBufferedAndReports(t *testing.T) {
	sink := &slowSink{}
	sink.fail.Store(true)
	e := openTest(t, Config{OpenSink: func() (Sink, error) { return sink, nil }, BatchSize: 1000})
	appendInts(t, e, 1, 2)
	done := make(chan error, 1)
	e.Flush(func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("flush error not reported")
	}
	st := e.Stats()
	if st.BufferCount != 2 || st.PersistedCount != 0 || st.FlushErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
	sink.fail.Store(false)
	e.Flush(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := e.Stats(); got.PersistedCount != 2 || got.LastFlushError != "" {
		t.Fatalf("after recovery %+v", got)
	}
}

func TestBackpressureWhenBufferFull(t *testing.T) {
	sink := &slowSink{gate: make(chan struct{})}
	var spaced atomic.Int64
	e := openTest(t, Config{OpenSink: func() (Sink, error) { return sink, nil }, BatchSize: 1000, MaxBufferRows: 2, OnSpace: func() { spaced.Add(1) }})
	appendInts(t, e, 1, 2)
	rec := intBatch(t, "x", 3)
	defer rec.Release()
	if _, err := appendNow(e, rec); !errors.Is(err, ErrBusy) {
		t.Fatalf("want ErrBusy, got %v", err)
	}
	sink.gate <- struct{}{} // let the kicked flush finish
	deadline := time.Now().Add(5 * time.Second)
	for spaced.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("OnSpace never called")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := appendNow(e, rec); err != nil {
		t.Fatalf("append after space freed: %v", err)
	}
	if e.Stats().Backpressure != 1 {
		t.Fatal("backpressure not counted")
	}
	close(sink.gate)
}

func TestFullBufferWithFailingFlushReportsTheFlushError(t *testing.T) {
	sink := &slowSink{}
	sink.fail.Store(true)
	e := openTest(t, Config{OpenSink: func() (Sink, error) { return sink, nil }, BatchSize: 1, MaxBufferRows: 2})
	appendInts(t, e, 1, 2)
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().FlushErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the flush never ran")
		}
		time.Sleep(time.Millisecond)
	}
	rec := intBatch(t, "x", 3)
	defer rec.Release()
	_, err := appendNow(e, rec)
	if err == nil || errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("want the flush error, got %v", err)
	}
	sink.fail.Store(false)
	e.kickFlush()
	for e.Stats().BufferCount != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the buffer never drained after the sink recovered")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := appendNow(e, rec); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
}

// panicSink stands for a bug in the dataset layer.
type panicSink struct{ slowSink }

func (*panicSink) Append(arrow.RecordBatch, uint64) error { panic("bug in the writer") }

func TestPanicInTheDatasetWriterIsAFlushErrorNotACrash(t *testing.T) {
	sink := &panicSink{}
	e := openTest(t, Config{OpenSink: func() (Sink, error) { return sink, nil }, BatchSize: 1000})
	appendInts(t, e, 1, 2)
	done := make(chan error, 1)
	e.Flush(func(err error) { done <- err })
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "internal error in the dataset writer") {
		t.Fatalf("want a contained panic, got %v", err)
	}
	if got := readInts(t, e, 0, 2); len(got) != 2 {
		t.Fatalf("rows lost after a writer panic: %v", got)
	}
}

// A flush whose commit is uncertain (the manifest linked into place, the
// directory sync failing) fails; the next flush learns from the dataset
// that the commit landed and does not store those rows a second time,
// whichever rows arrived meanwhile.
func TestUncertainCommitIsNotRepeated(t *testing.T) {
	for _, tc := range []struct {
		name          string
		landed, first bool // the commit landed; it is the dataset's first
	}{{"landed", true, false}, {"lost", false, false}, {"landed-first", true, true}, {"lost-first", false, true}} {
		landed := tc.landed
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := errorfs.Wrap(vfs.Default)
			e := openReady(t, Config{Dir: dir, BatchSize: 1 << 30,
				OpenSink: func() (Sink, error) { return OpenLanceSink(dir, lance.Options{FS: fs}) }})
			defer e.Close()
			if _, err := appendNow(e, intBatch(t, "x", 0, 1)); err != nil {
				t.Fatal(err)
			}
			if !tc.first {
				flushNow(t, e)
			}
			if _, err := appendNow(e, intBatch(t, "x", 2, 3)); err != nil {
				t.Fatal(err)
			}
			versions := func(p string) bool { return strings.Contains(p, "_versions") }
			if landed {
				fs.Inject(errorfs.Rule{Op: errorfs.OpSyncDir, Match: versions})
			} else {
				fs.Inject(errorfs.Rule{Op: errorfs.OpLink, Match: versions})
			}
			done := make(chan error, 1)
			e.Flush(func(err error) { done <- err })
			if err := <-done; err == nil {
				t.Fatal("the flush with a failing commit succeeded")
			}
			if _, err := appendNow(e, intBatch(t, "x", 4)); err != nil {
				t.Fatal(err)
			}
			flushNow(t, e)
			want := []int64{0, 1, 2, 3, 4}
			if got := allInts(t, e); !slices.Equal(got, want) {
				t.Fatalf("reads %v, want %v", got, want)
			}
			ds, err := lance.Open(filepath.Join(dir, DatasetName), lance.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if n := ds.CountRows(); n != int64(len(want)) {
				t.Fatalf("the dataset holds %d rows, want %d (rows of the uncertain commit stored twice?)", n, len(want))
			}
		})
	}
}
