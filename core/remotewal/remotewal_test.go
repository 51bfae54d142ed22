package remotewal_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/persisting/persisting/core/remotewal"
	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/store/s3test"
	"github.com/persisting/persisting/core/wal"
)

// stores runs a test on a local directory and on the S3 test server.
func stores(t *testing.T, fn func(t *testing.T, open func() store.Store)) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, func() store.Store { return store.Local(nil, dir) })
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		fn(t, func() store.Store { return srv.Store("bucket_0/wal") })
	})
}

func frame(first uint64, rows uint32) wal.Frame {
	return wal.Frame{FirstOffset: first, Rows: rows, Payload: []byte(fmt.Sprintf("rows %d..%d", first, first+uint64(rows)))}
}

func mustOpen(t *testing.T, st store.Store) (*remotewal.Log, remotewal.Info) {
	t.Helper()
	l, info, err := remotewal.Open(st, remotewal.Options{Owner: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return l, info
}

func replayed(t *testing.T, l *remotewal.Log, from uint64) []string {
	t.Helper()
	var got []string
	if err := l.Replay(from, func(f wal.Frame) error {
		got = append(got, string(f.Payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func appendSync(l *remotewal.Log, frames ...wal.Frame) error {
	for _, f := range frames {
		if _, err := l.Append(f); err != nil {
			return err
		}
	}
	return l.Sync()
}

func TestReopenReplaysEveryGroup(t *testing.T) {
	stores(t, func(t *testing.T, open func() store.Store) {
		l, info := mustOpen(t, open())
		if info.Epoch != 1 || info.Frames != 0 {
			t.Fatalf("first open: %+v", info)
		}
		if err := appendSync(l, frame(0, 3), frame(3, 2)); err != nil {
			t.Fatal(err)
		}
		if err := appendSync(l, frame(5, 4)); err != nil {
			t.Fatal(err)
		}
		if l.Segments() != 2 || l.Size() == 0 {
			t.Fatalf("%d groups, %d bytes", l.Segments(), l.Size())
		}
		if _, err := l.Append(frame(9, 1)); err != nil { // appended, never synced
			t.Fatal(err)
		}
		// The node dies: no Close. The next owner replays the synced groups.
		l2, info := mustOpen(t, open())
		if info.Epoch != 2 || info.Frames != 3 || info.FirstOffset != 0 || info.NextOffset != 9 {
			t.Fatalf("reopen: %+v", info)
		}
		if got := replayed(t, l2, 0); !slices.Equal(got, []string{"rows 0..3", "rows 3..5", "rows 5..9"}) {
			t.Fatalf("replayed %q", got)
		}
		if got := replayed(t, l2, 5); !slices.Equal(got, []string{"rows 5..9"}) {
			t.Fatalf("replayed from 5: %q", got)
		}
		if err := appendSync(l2, frame(9, 1)); err != nil {
			t.Fatal(err)
		}
		// Rows below 5 are in the dataset: their group goes.
		if err := l2.ReleaseBefore(5); err != nil {
			t.Fatal(err)
		}
		if l2.Segments() != 2 {
			t.Fatalf("%d groups after release", l2.Segments())
		}
		l2.Close()
		l3, info := mustOpen(t, open())
		if got := replayed(t, l3, 5); !slices.Equal(got, []string{"rows 5..9", "rows 9..10"}) || info.Epoch != 3 {
			t.Fatalf("after release: %+v, replayed %q", info, got)
		}
	})
}

// A new owner fences the old one: the old owner's next group fails with
// FencedError and it writes nothing more; the group it wrote after the
// takeover is never replayed, by this owner or any later one.
func TestNewOwnerFencesOld(t *testing.T) {
	stores(t, func(t *testing.T, open func() store.Store) {
		old, _ := mustOpen(t, open())
		if err := appendSync(old, frame(0, 2)); err != nil {
			t.Fatal(err)
		}
		owner, info := mustOpen(t, open())
		if info.Epoch != 2 || info.Frames != 1 {
			t.Fatalf("new owner: %+v", info)
		}
		err := appendSync(old, frame(2, 5))
		var fe *remotewal.FencedError
		if !errors.As(err, &fe) || !errors.Is(err, remotewal.ErrFenced) || fe.Epoch != 1 || fe.By != 2 {
			t.Fatalf("old owner's write after the takeover: %v, want FencedError", err)
		}
		if _, err := old.Append(frame(7, 1)); !errors.Is(err, remotewal.ErrFenced) {
			t.Fatalf("old owner's next append: %v", err)
		}
		if got := replayed(t, owner, 0); !slices.Equal(got, []string{"rows 0..2"}) {
			t.Fatalf("new owner replays %q", got)
		}
		if err := appendSync(owner, frame(2, 3)); err != nil {
			t.Fatal(err)
		}
		next, info := mustOpen(t, open())
		if got := replayed(t, next, 0); !slices.Equal(got, []string{"rows 0..2", "rows 2..5"}) || info.Ignored != 1 {
			t.Fatalf("third owner: %+v, replays %q (the fenced group must be ignored)", info, got)
		}
		// And the second owner is fenced in turn.
		if err := appendSync(owner, frame(5, 1)); !errors.Is(err, remotewal.ErrFenced) {
			t.Fatalf("second owner after the third took over: %v", err)
		}
	})
}

func TestConcurrentOpensTakeDistinctEpochs(t *testing.T) {
	stores(t, func(t *testing.T, open func() store.Store) {
		const n = 6
		epochs := make(chan uint64, n)
		errs := make(chan error, n)
		for range n {
			go func() {
				l, info, err := remotewal.Open(open(), remotewal.Options{})
				if err != nil {
					errs <- err
					return
				}
				l.Close()
				epochs <- info.Epoch
			}()
		}
		seen := map[uint64]bool{}
		for range n {
			select {
			case err := <-errs:
				t.Fatal(err)
			case e := <-epochs:
				if seen[e] {
					t.Fatalf("epoch %d taken twice", e)
				}
				seen[e] = true
			}
		}
	})
}
