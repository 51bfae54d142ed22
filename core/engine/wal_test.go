package engine

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/vfs/errorfs"
)

func walConfig(dir string, fs vfs.FS) Config {
	return Config{
		Dir:       dir,
		BatchSize: 1 << 30,
		WAL:       &WALConfig{},
		FS:        fs,
		OpenSink:  func() (Sink, error) { return OpenLanceSink(dir, lance.Options{}) },
	}
}

func openReady(t *testing.T, cfg Config) *Engine {
	t.Helper()
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-e.Ready()
	if err := e.ReadyErr(); err != nil {
		t.Fatal(err)
	}
	return e
}

func allInts(t *testing.T, e *Engine) []int64 {
	t.Helper()
	recs, _, err := e.Read(0, 1<<40, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, r := range recs {
		out = append(out, r.Column(0).(*array.Int64).Int64Values()...)
		r.Release()
	}
	return out
}

// A failed fsync is never retried: the bucket refuses writes with an error
// naming the WAL file, and what was acknowledged before is recovered.
func TestFailedFsyncPoisonsAndKeepsAcknowledgedRows(t *testing.T) {
	dir := t.TempDir()
	fs := errorfs.Wrap(vfs.Default)
	e := openReady(t, walConfig(dir, fs))
	for i := int64(0); i < 5; i++ {
		if _, err := appendNow(e, intBatch(t, "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	fs.Inject(errorfs.Rule{Op: errorfs.OpSync, Match: func(p string) bool { return strings.HasSuffix(p, ".wal") }})
	_, err := appendNow(e, intBatch(t, "x", 5))
	if !errors.Is(err, ErrWAL) || !strings.Contains(err.Error(), ".wal") {
		t.Fatalf("want a WAL error naming the file, got %v", err)
	}
	syncs := fs.Count(errorfs.OpSync)
	if _, err := appendNow(e, intBatch(t, "x", 6)); !errors.Is(err, ErrWAL) {
		t.Fatalf("bucket still takes writes after a failed fsync: %v", err)
	}
	if fs.Count(errorfs.OpSync) != syncs {
		t.Fatal("fsync was retried")
	}
	if got := e.Stats().WALError; got == "" {
		t.Fatal("stats do not report the WAL failure")
	}
	e.Close()

	e = openReady(t, walConfig(dir, vfs.Default))
	defer e.Close()
	got := allInts(t, e)
	// Row 5 was written before its fsync failed: it may come back, as a put
	// that was in flight may. Rows 0..4 must.
	if len(got) < 5 || len(got) > 6 {
		t.Fatalf("recovered %v", got)
	}
	for i := range 5 {
		if got[i] != int64(i) {
			t.Fatalf("recovered %v", got)
		}
	}
}

// Concurrent appends share fsyncs (group commit) and every one is recovered
// after a restart without close.
func TestGroupCommitSharesFsyncsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	e := openReady(t, walConfig(dir, vfs.Default))
	const writers, per = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if _, err := appendNow(e, intBatch(t, "x", int64(w*per+i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := e.Stats()
	if st.WALRecords != writers*per {
		t.Fatalf("logged %d records", st.WALRecords)
	}
	if st.WALSyncs >= writers*per {
		t.Fatalf("%d fsyncs for %d appends: no group commit", st.WALSyncs, writers*per)
	}
	// Simulate a crash: drop the engine without Close (release the lock by
	// hand, as the kernel does for a dead process).
	e.lock.release()

	e2 := openReady(t, walConfig(dir, vfs.Default))
	defer e2.Close()
	if st := e2.Stats(); st.RecoveredRows != writers*per {
		t.Fatalf("recovered %d rows", st.RecoveredRows)
	}
	seen := map[int64]bool{}
	for _, v := range allInts(t, e2) {
		if seen[v] {
			t.Fatalf("row %d twice", v)
		}
		seen[v] = true
	}
	if len(seen) != writers*per {
		t.Fatalf("%d rows after recovery", len(seen))
	}
	deadline := time.Now().Add(10 * time.Second)
	for e2.Stats().PersistedCount != writers*per {
		if time.Now().After(deadline) {
			t.Fatalf("recovered rows were not flushed: %+v", e2.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}
