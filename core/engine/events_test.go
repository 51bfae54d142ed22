package engine

import (
	"testing"
	"time"

	"github.com/persisting/persisting/core/wal"
)

// recorder counts the events it hears.
type recorder struct {
	appended, flushes, groups, syncs int64
}

func (r *recorder) Appended(rows, buffered int64)                     { r.appended += rows }
func (r *recorder) Backpressure()                                     {}
func (r *recorder) SchemaChanged()                                    {}
func (r *recorder) FlushDone(int64, time.Duration, error, int64, int) { r.flushes++ }
func (r *recorder) WALGroup(int64, int64, int64, string, int64)       { r.groups++ }
func (r *recorder) WALSynced(time.Duration)                           { r.syncs++ }
func (r *recorder) WALReleased(int64)                                 {}
func (r *recorder) Recovered(wal.RecoveryInfo)                        {}
func (r *recorder) Replayed(int64)                                    {}
func (r *recorder) Corrupt()                                          {}
func (r *recorder) Maintained(MaintenanceResult, int, error)          {}

// Each event reaches every listener once: a listener of the caller's hears
// what Stats counts.
func TestEventsReachEveryListenerOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := walConfig(dir, nil)
	cfg.BatchSize = 4
	rec := &recorder{}
	cfg.Listeners = []EventListener{rec}
	e := openReady(t, cfg)
	for i := int64(0); i < 10; i++ {
		if _, err := appendNow(e, intBatch(t, "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	e.Flush(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	e.Close()
	if rec.appended != 10 || rec.flushes != st.Flushes || rec.groups != st.WALGroups || rec.syncs != st.WALSyncs {
		t.Fatalf("listener heard %+v, stats say flushes %d groups %d syncs %d", rec, st.Flushes, st.WALGroups, st.WALSyncs)
	}
	if st.Flushes < 1 || st.WALGroups != 10 || st.PersistedCount != 10 {
		t.Fatalf("stats %+v", st)
	}
}
