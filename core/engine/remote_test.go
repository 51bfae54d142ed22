package engine

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/persisting/persisting/core/remotewal"
	"github.com/persisting/persisting/core/store/s3test"
)

// Buckets on an object store (s3test's server): the dataset there, the
// log there too (wal_location "object_store") or local ("local").

func remoteOptions(t *testing.T, srv *s3test.Server, bucket string, extra map[string]any) Options {
	t.Helper()
	m := map[string]any{
		"storage_path":    srv.URI("queue/" + bucket),
		"batch_size":      1 << 20,
		"enable_wal":      true,
		"storage_options": srv.StorageOptions(),
	}
	for k, v := range extra {
		m[k] = v
	}
	js, _ := json.Marshal(m)
	o, err := ParseOptions(js)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func openRemote(t *testing.T, o Options) *Engine {
	t.Helper()
	return openReady(t, o.Config(nil))
}

func flushNow(t *testing.T, e *Engine) {
	t.Helper()
	done := make(chan error, 1)
	e.Flush(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRemoteOptionsChecked(t *testing.T) {
	for _, js := range []string{
		`{"storage_path":"s3://b/p","batch_size":1,"storage_options":{"aws_endpoint_typo":"x"}}`,
		`{"storage_path":"s3://b/p","batch_size":1,"wal_location":"elsewhere"}`,
		`{"storage_path":"s3://b/p","batch_size":1,"enable_wal":true,"wal_location":"local"}`,
		`{"storage_path":"/tmp/x","batch_size":1,"wal_location":"object_store"}`,
		`{"storage_path":"gs://b/p","batch_size":1}`,
	} {
		if _, err := ParseOptions([]byte(js)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", js, err)
		}
	}
}

// The log on the object store: every acknowledged append survives the
// death of its node (the engine is abandoned, never closed) and is
// replayed by the next owner, exactly once; the old owner is fenced.
func TestRemoteLogSurvivesNodeDeath(t *testing.T) {
	srv := s3test.Start(t)
	o := remoteOptions(t, srv, "bucket_0", nil)
	a := openRemote(t, o)
	for i := int64(0); i < 5; i++ {
		if _, err := appendNow(a, intBatch(t, "x", 10*i, 10*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	flushNow(t, a) // rows 0..9 in the dataset, the rest only in the log
	for i := int64(5); i < 8; i++ {
		if _, err := appendNow(a, intBatch(t, "x", 10*i, 10*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	want := []int64{0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71}
	// a's node dies; another opens the bucket.
	b := openRemote(t, o)
	if got := allInts(t, b); !slices.Equal(got, want) || b.Recovered() != 16 {
		t.Fatalf("new owner reads %v (recovered %d), want %v", got, b.Recovered(), want)
	}
	// The old owner, still running, is fenced: its flush (the rows it
	// holds are the new owner's now) and its next write fail.
	done := make(chan error, 1)
	a.Flush(func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner's flush after the takeover: %v, want ErrFenced", err)
	}
	// The fenced flush stopped it: the append is refused before the log.
	_, err := appendNow(a, intBatch(t, "x", 999))
	var fe *remotewal.FencedError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner's append after the takeover: %v, want a FencedError", err)
	}
	if _, err := appendNow(a, intBatch(t, "x", 998)); !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner's next append: %v", err)
	}
	if err := a.Close(); !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner's close: %v, want ErrFenced (its last flush cannot commit)", err)
	}
	if _, err := appendNow(b, intBatch(t, "x", 80)); err != nil {
		t.Fatal(err)
	}
	flushNow(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := openRemote(t, o)
	defer c.Close()
	if got := allInts(t, c); !slices.Equal(got, append(want, 80)) {
		t.Fatalf("after a flush and reopen: %v", got)
	}
	if st := c.Stats(); st.WALSegments > 1 {
		t.Fatalf("flushed groups were not released: %+v", st)
	}
}

// The log local (wal_location "local"): the dataset is on the object
// store, the log in local_dir. Rows flushed (at close, or per batch_size)
// move with the bucket; rows acknowledged but not flushed are only in
// that node's log: the same node recovers them, a new node does not (the
// stated loss window).
func TestLocalLogLossWindow(t *testing.T) {
	srv := s3test.Start(t)
	nodeA := t.TempDir()
	o := remoteOptions(t, srv, "bucket_1", map[string]any{"wal_location": "local", "local_dir": nodeA})
	a := openRemote(t, o)
	if _, err := appendNow(a, intBatch(t, "x", 1, 2)); err != nil {
		t.Fatal(err)
	}
	flushNow(t, a)
	if _, err := appendNow(a, intBatch(t, "x", 3)); err != nil {
		t.Fatal(err)
	}
	// A copy of node A's log as its disk holds it now (the group is
	// fsynced before the append is acknowledged): what a restart of
	// node A after a crash would find.
	crashed := t.TempDir()
	copyDir(t, filepath.Join(nodeA, "wal"), filepath.Join(crashed, "wal"))

	// A new node: the flushed rows only.
	b := openRemote(t, remoteOptions(t, srv, "bucket_1", map[string]any{"wal_location": "local", "local_dir": t.TempDir()}))
	if got := allInts(t, b); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("a new node reads %v, want the flushed rows [1 2]", got)
	}
	b.Close()
	// Node A restarting on its own disk: everything acknowledged.
	c := openRemote(t, remoteOptions(t, srv, "bucket_1", map[string]any{"wal_location": "local", "local_dir": crashed}))
	if got := allInts(t, c); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("node A after a restart reads %v, want [1 2 3]", got)
	}
	c.Close()
	a.Close()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Connections to the object store cut again and again while appends run:
// a group whose connection was cut is resolved by reading it back (ours:
// acknowledged; absent: written again), so appends go on; whatever was
// acknowledged is there after a reopen.
func TestRemoteLogConnectionCuts(t *testing.T) {
	srv := s3test.Start(t)
	o := remoteOptions(t, srv, "bucket_2", nil)
	a := openRemote(t, o)
	stop := make(chan struct{})
	cutter := make(chan struct{})
	go func() {
		defer close(cutter)
		for {
			select {
			case <-stop:
				return
			case <-time.After(25 * time.Millisecond):
				srv.Cut()
			}
		}
	}()
	var acked []int64
	var failed int
	for i := int64(0); i < 150; i++ {
		if _, err := appendNow(a, intBatch(t, "x", i)); err != nil {
			failed++
			t.Logf("append %d: %v", i, err)
			break // the bucket refuses writes after a failed group
		}
		acked = append(acked, i)
		if i%40 == 39 {
			// A flush that fails is retried by the next one; the rows
			// stay in the buffer and the log meanwhile.
			done := make(chan error, 1)
			a.Flush(func(err error) { done <- err })
			if err := <-done; err != nil {
				t.Logf("flush: %v", err)
			}
		}
	}
	close(stop)
	<-cutter
	a.Close()
	if len(acked) < 20 {
		t.Fatalf("only %d appends went through the cuts", len(acked))
	}
	b := openRemote(t, o)
	defer b.Close()
	got := allInts(t, b)
	if len(got) < len(acked) || !slices.Equal(got[:len(acked)], acked) || len(got) > len(acked)+failed {
		t.Fatalf("after the cuts: %d rows %v..., acknowledged %d", len(got), got[:min(len(got), 5)], len(acked))
	}
}

// The object store unreachable for longer than the retries: the append
// fails with a clear error (the log names the group it could not write),
// nothing acknowledged before is lost, and a reopen once the store is
// back serves it all.
func TestRemoteLogStoreDown(t *testing.T) {
	srv := s3test.Start(t)
	o := remoteOptions(t, srv, "bucket_3", nil)
	a := openRemote(t, o)
	for i := int64(0); i < 3; i++ {
		if _, err := appendNow(a, intBatch(t, "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Down()
	_, err := appendNow(a, intBatch(t, "x", 3))
	if !errors.Is(err, ErrWAL) || !strings.Contains(err.Error(), srv.URI("queue/bucket_3/wal/")) {
		t.Fatalf("append with the store down: %v, want a WAL error naming the group", err)
	}
	srv.Up()
	if _, err := appendNow(a, intBatch(t, "x", 4)); !errors.Is(err, ErrWAL) {
		t.Fatalf("the bucket takes writes after a failed group: %v", err)
	}
	a.Close()
	b := openRemote(t, o)
	defer b.Close()
	if got := allInts(t, b); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("after the outage: %v, want the acknowledged [0 1 2]", got)
	}
}

// The object store's server killed (SIGKILL) and started again on the
// same port with the objects it held (s3test's Restart), three times.
//
//  1. Just after it answered a group's PUT, before the answer got
//     through, appends running: the append resolves the group by reading
//     it back once the server is back.
//  2. Just after it answered the PUT of a flush's manifest, and kept dead
//     until the flush has failed: the commit took effect, the flush could
//     not know. The engine's next flush may not commit those rows again.
//  3. In the middle of appends, kept dead until one fails: it fails with
//     ErrWAL naming the group, the log refuses writes after it, so the
//     bucket is reopened once the server is back and appends go on.
//
// After it all the dataset opens, and every acknowledged row reads back
// once, in order, with at most the failed ones among them.
func TestRemoteLogServerRestarts(t *testing.T) {
	srv := s3test.Start(t)
	o := remoteOptions(t, srv, "bucket_4", nil)
	group := srv.URI("queue/bucket_4/wal/")
	e := openRemote(t, o)

	var restarted <-chan error // of the restart under way
	dead := false              // killed, to be restarted after a failed append
	settle := func() {
		if restarted != nil {
			select {
			case err := <-restarted:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Minute):
				t.Fatal("no restart: the request it waited for never came")
			}
			restarted = nil
		}
		if dead {
			dead = false
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush := func() error {
		done := make(chan error, 1)
		e.Flush(func(err error) { done <- err })
		return <-done
	}
	var acked []int64
	failed := map[int64]bool{}
	for i := int64(0); i < 200; i++ {
		switch i {
		case 40:
			restarted = srv.RestartAfter(http.MethodPut, ".grp")
		case 90:
			settle()
			srv.KillAfter(http.MethodPut, "/_versions/")
			if err := flush(); err == nil {
				t.Fatal("a flush whose manifest's answer was lost to a dead server succeeded")
			} else {
				t.Logf("flush: %v", err)
			}
			dead = true
			settle()
			// The next flush learns from the dataset that the commit it
			// did not hear of landed (the watermark is its own), and
			// commits only the rows that came after it.
			if err := flush(); err != nil {
				t.Fatalf("flush after a commit whose answer was lost: %v", err)
			}
		case 140:
			srv.Kill()
			dead = true
		}
		if _, err := appendNow(e, intBatch(t, "x", i)); err != nil {
			if !errors.Is(err, ErrWAL) || !strings.Contains(err.Error(), group) {
				t.Fatalf("append %d across a restart: %v, want a WAL error naming the group", i, err)
			}
			t.Logf("append %d: %v", i, err)
			failed[i] = true
			settle()
			if err := e.Close(); err != nil {
				t.Logf("close after a failed append: %v", err)
			}
			e = openRemote(t, o)
			continue
		}
		acked = append(acked, i)
	}
	settle()
	flushNow(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if len(failed) == 0 {
		t.Fatal("no append failed while the server was dead")
	}
	b := openRemote(t, o)
	defer b.Close()
	got := allInts(t, b)
	seen := map[int64]bool{}
	var gotAcked []int64
	for _, v := range got {
		if seen[v] {
			t.Fatalf("row %d read back twice: %v", v, got)
		}
		seen[v] = true
		if !failed[v] {
			gotAcked = append(gotAcked, v)
		}
	}
	if !slices.Equal(gotAcked, acked) {
		t.Fatalf("after the restarts: %d rows %v, acknowledged %d %v (failed %v)", len(got), got, len(acked), acked, failed)
	}
	if st := b.Stats(); st.PersistedCount != int64(len(got)) {
		t.Fatalf("after a close: %d rows in the dataset, %d read", st.PersistedCount, len(got))
	}
	t.Logf("%d appends acknowledged, %d failed, %d of those read back", len(acked), len(failed), len(got)-len(acked))
}
