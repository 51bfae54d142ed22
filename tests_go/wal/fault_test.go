package waltest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/vfs/errorfs"
	"github.com/persisting/persisting/core/wal"
)

// action is one step of the fault workload.
type action struct {
	kind  string // "append", "sync", "release"
	frame int    // append: frame index; release: release below this frame's first offset
}

// The workload: 60 frames of ~500 bytes into 4 KiB segments (so ~8
// rotations), a Sync every 3 appends and a ReleaseBefore every 8.
const (
	wlFrames  = 60
	wlPayload = 500
	wlSegSize = 4096
)

func workloadActions() []action {
	var acts []action
	for i := 0; i < wlFrames; i++ {
		acts = append(acts, action{kind: "append", frame: i})
		if i%3 == 2 {
			acts = append(acts, action{kind: "sync"})
		}
		if i%8 == 7 {
			acts = append(acts, action{kind: "release", frame: i - 4})
		}
	}
	return acts
}

// outcome is what the workload knows was done.
type outcome struct {
	attempted int    // frames passed to Append (a failed one may be partly on disk)
	acked     int    // frames 0..acked-1 were covered by a successful Sync
	released  uint64 // ReleaseBefore(released) was called
	failed    error  // the first I/O error (nil if none)
}

// runWorkload runs acts against a log on fs. On the first I/O error it
// checks that the log is poisoned (or, for a failed segment remove, that it
// is not) and that no fsync is retried, then stops.
//
// With crash set, it simulates a power loss (errorfs.Crash) before closing
// the log, so unsynced data and directory entries are dropped. prealloc is
// the log's Options.Preallocate.
func runWorkload(t *testing.T, fs *errorfs.FS, dir string, acts []action, crash bool, prealloc int64) outcome {
	t.Helper()
	frames := makeFrames(wlFrames, wlPayload)
	var o outcome
	l, _, err := wal.Open(wal.Options{FS: fs, Dir: dir, SegmentSize: wlSegSize, Preallocate: prealloc})
	if err != nil {
		o.failed = err
		if crash {
			fs.Crash()
		}
		return o
	}
	for _, a := range acts {
		var err error
		switch a.kind {
		case "append":
			o.attempted = a.frame + 1
			_, err = l.Append(frames[a.frame])
		case "sync":
			if err = l.Sync(); err == nil {
				o.acked = o.attempted
			}
		case "release":
			// Once a release is attempted, segments below it may be gone
			// even if it fails (a remove done before a failed dir sync).
			o.released = frames[a.frame].FirstOffset
			err = l.ReleaseBefore(o.released)
		}
		if err == nil {
			continue
		}
		o.failed = err
		var we *wal.WALError
		if !errors.As(err, &we) {
			t.Fatalf("%s: error is not a *wal.WALError: %v", a.kind, err)
		}
		if we.Op == "remove segment" {
			// A failed remove leaves the log usable.
			if l.Err() != nil {
				t.Fatalf("failed remove poisoned the log: %v", l.Err())
			}
			continue
		}
		checkPoisoned(t, fs, l, frames)
		break
	}
	if crash {
		if err := fs.Crash(); err != nil {
			t.Fatal(err)
		}
		l.Close() // fails: its files belong to the crashed filesystem
		return o
	}
	if err := l.Close(); err != nil && o.failed == nil {
		o.failed = err
	}
	return o
}

// checkPoisoned: after an I/O failure every Append and Sync returns a
// *WALError naming a file, and no fsync reaches the filesystem again.
func checkPoisoned(t *testing.T, fs *errorfs.FS, l *wal.Log, frames []wal.Frame) {
	t.Helper()
	syncs := fs.Count(errorfs.OpSync)
	next, _ := l.NextOffset()
	for i := 0; i < 2; i++ {
		_, err := l.Append(wal.Frame{FirstOffset: next + 1000, Rows: 1, Payload: []byte("after")})
		var we *wal.WALError
		if !errors.As(err, &we) || !we.Poisoned || we.File == "" {
			t.Fatalf("append after failure: %v", err)
		}
		err = l.Sync()
		if !errors.As(err, &we) || !we.Poisoned || we.File == "" {
			t.Fatalf("sync after failure: %v", err)
		}
		if err := l.ReleaseBefore(0); !errors.As(err, &we) {
			t.Fatalf("release after failure: %v", err)
		}
	}
	if fs.Count(errorfs.OpSync) != syncs {
		t.Fatal("a poisoned log called fsync again")
	}
}

// checkRecovered reopens dir with the real filesystem and checks
// acknowledged ⊆ recovered ⊆ attempted, in order, allowing frames below the
// release point to be gone.
// It returns how many frames were recovered.
func checkRecovered(t *testing.T, dir string, o outcome) int {
	t.Helper()
	frames := makeFrames(wlFrames, wlPayload)
	l, info, err := wal.Open(wal.Options{Dir: dir, SegmentSize: wlSegSize})
	if err != nil {
		t.Fatalf("reopen after %v: %v", o.failed, err)
	}
	defer l.Close()
	got := replay(t, l, 0)
	if len(got) != info.Frames {
		t.Fatalf("replayed %d frames, recovery reported %d", len(got), info.Frames)
	}
	start := 0
	if len(got) > 0 {
		start = int(got[0].FirstOffset / 10)
	}
	end := start + len(got)
	if end > o.attempted || !sameFrames(got, frames[start:end]) {
		t.Fatalf("recovered frames %v are not a run of the %d written", offsets(got), o.attempted)
	}
	firstNeeded := int((o.released + 9) / 10) // frames below were released
	if o.acked > firstNeeded && (start > firstNeeded || end < o.acked) {
		t.Fatalf("lost acknowledged frames: recovered [%d,%d), acked [%d,%d) (failure: %v, recovery %+v)",
			start, end, firstNeeded, o.acked, o.failed, info)
	}
	// The recovered log accepts appends.
	if _, err := l.Append(wal.Frame{FirstOffset: 100000, Rows: 1, Payload: []byte("z")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	return len(got)
}

func isSegment(p string) bool { return strings.Contains(p, ".wal") }

// For each operation, fail its Nth call for every N the workload makes;
// then either just reopen, or first crash (dropping everything unsynced).
func TestInjectedFailures(t *testing.T) {
	ops := []errorfs.Op{errorfs.OpWrite, errorfs.OpSync, errorfs.OpCreate, errorfs.OpRename,
		errorfs.OpSyncDir, errorfs.OpRemove, errorfs.OpClose, errorfs.OpTruncate}
	acts := workloadActions()
	for _, prealloc := range wlPreallocs {
		counter := errorfs.Wrap(vfs.Default)
		if o := runWorkload(t, counter, t.TempDir(), acts, false, prealloc); o.failed != nil || o.acked != wlFrames {
			t.Fatalf("clean run: %+v", o)
		}
		for _, op := range ops {
			calls := counter.Count(op)
			if calls == 0 && (op != errorfs.OpTruncate || prealloc > 0) {
				// Only preallocated segments are truncated (at rotation and close).
				t.Fatalf("workload (prealloc %d) makes no %s call", prealloc, op)
			}
			for n := 1; n <= calls; n++ {
				for _, crash := range []bool{false, true} {
					for _, partial := range []int{0, 100} {
						if partial > 0 && op != errorfs.OpWrite {
							continue
						}
						name := fmt.Sprintf("prealloc=%d/%s#%d/crash=%v/partial=%d", prealloc, op, n, crash, partial)
						t.Run(name, func(t *testing.T) {
							dir := t.TempDir()
							fs := errorfs.Wrap(vfs.Default)
							in := fs.Inject(errorfs.Rule{Op: op, N: n, Match: isSegmentOrDir(dir), Partial: partial})
							o := runWorkload(t, fs, dir, acts, crash, prealloc)
							// Closes of read-only handles are not reported (nothing to lose),
							// nor is a failed write of preallocated zeros: the log goes on
							// without them, acknowledging every frame.
							preallocWrite := prealloc > 0 && op == errorfs.OpWrite && o.acked == wlFrames
							if in.Fired() == 1 && o.failed == nil && op != errorfs.OpClose && !preallocWrite {
								t.Fatalf("injected %s failure went unreported", op)
							}
							checkRecovered(t, dir, o)
						})
					}
				}
			}
		}
	}
}

// wlPreallocs runs the fault workloads on plain segments and on segments
// kept zero-filled ahead of their frames in steps smaller than a segment
// (so that each is extended several times, then truncated at rotation).
var wlPreallocs = []int64{0, 1000}

func isSegmentOrDir(dir string) func(string) bool {
	return func(p string) bool { return isSegment(p) || p == dir }
}

// Crash after every step of the workload, dropping unsynced data and
// directory entries, and check what survives.
func TestCrashAtEveryStep(t *testing.T) {
	acts := workloadActions()
	lostUnsynced := 0
	defer func() {
		// The crash model must actually have dropped unsynced frames.
		if !t.Failed() && lostUnsynced == 0 {
			t.Error("no crash lost an unsynced frame: the crash simulation is not exercised")
		}
	}()
	for _, prealloc := range wlPreallocs {
		for k := 0; k <= len(acts); k++ {
			t.Run(fmt.Sprintf("prealloc=%d/%d", prealloc, k), func(t *testing.T) {
				dir := t.TempDir()
				fs := errorfs.Wrap(vfs.Default)
				o := runWorkload(t, fs, dir, acts[:k], true, prealloc)
				if o.failed != nil {
					t.Fatal(o.failed)
				}
				if n := checkRecovered(t, dir, o); o.released == 0 && n < o.attempted {
					lostUnsynced++
				}
			})
		}
	}
}

// A failed fsync poisons the log; nothing after it is acknowledged, and the
// data acknowledged before it survives a crash.
func TestFsyncFailurePoisons(t *testing.T) {
	dir := t.TempDir()
	fs := errorfs.Wrap(vfs.Default)
	l, _ := open(t, wal.Options{FS: fs, Dir: dir})
	frames := makeFrames(4, 100)
	for _, f := range frames[:2] {
		l.Append(f)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Append(frames[2])
	fs.Inject(errorfs.Rule{Op: errorfs.OpSync, Err: errors.New("EIO")})
	err := l.Sync()
	var we *wal.WALError
	if !errors.As(err, &we) || we.Op != "sync" || !strings.HasSuffix(we.File, ".wal") || we.Poisoned {
		t.Fatalf("sync: %v", err)
	}
	_, err = l.Append(frames[3])
	if !errors.As(err, &we) || !we.Poisoned || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("append after failed sync: %v", err)
	}
	if !errors.Is(l.Err(), we.Err) && l.Err() == nil {
		t.Fatal("Err() not set")
	}
	syncs := fs.Count(errorfs.OpSync)
	l.Sync()
	l.Close()
	if fs.Count(errorfs.OpSync) != syncs {
		t.Fatal("fsync retried after failure")
	}
	fs.Crash()
	l2, info := open(t, wal.Options{Dir: dir})
	defer l2.Close()
	if info.Frames != 2 {
		t.Fatalf("%+v", info)
	}
	expectFrames(t, replay(t, l2, 0), frames[:2])
}
