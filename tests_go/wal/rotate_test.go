package waltest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/persisting/persisting/core/vfs"
	"github.com/persisting/persisting/core/vfs/errorfs"
	"github.com/persisting/persisting/core/wal"
)

func diskSize(t *testing.T, dir string) (total int64) {
	for _, p := range segments(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	return total
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	const segSize = 8 << 10
	frames := makeFrames(100, 1024)
	l, _ := open(t, wal.Options{Dir: dir, SegmentSize: segSize})
	for _, f := range frames {
		if _, err := l.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := segments(t, dir)
	if len(segs) != l.Segments() || len(segs) < 10 {
		t.Fatalf("%d files, Segments()=%d", len(segs), l.Segments())
	}
	if l.Size() != diskSize(t, dir) {
		t.Fatalf("Size()=%d, on disk %d", l.Size(), diskSize(t, dir))
	}
	maxFrame := encodedSize(frames[len(frames)-1])
	for i, p := range segs {
		fi, _ := os.Stat(p)
		// A segment rotates once it reaches segSize, so it passes it by at
		// most one frame.
		if fi.Size() >= segSize+maxFrame || (i < len(segs)-1 && fi.Size() < segSize) {
			t.Fatalf("segment %d is %d bytes", i, fi.Size())
		}
	}
	// Names: sequence 0,1,2,... and the offset of each segment's first frame.
	want := 0
	for i, p := range segs {
		var seq, base uint64
		if _, err := fmt.Sscanf(filepath.Base(p), "%016x-%016x.wal", &seq, &base); err != nil || seq != uint64(i) || base%10 != 0 || int(base/10) < want {
			t.Fatalf("segment %d named %s", i, filepath.Base(p))
		}
		want = int(base / 10)
	}
	l.Close()

	l, info := open(t, wal.Options{Dir: dir, SegmentSize: segSize})
	defer l.Close()
	if info.Frames != 100 || info.Segments != len(segs) || info.FirstOffset != 0 || info.NextOffset != 1000 {
		t.Fatalf("%+v", info)
	}
	// Replay from every kind of offset: 0, frame starts, mid-frame, segment
	// boundaries, the end and past it.
	for _, from := range []uint64{0, 1, 9, 10, 11, 255, 500, 995, 999, 1000, 5000} {
		var want []wal.Frame
		for _, f := range frames {
			if f.FirstOffset+uint64(f.Rows) > from {
				want = append(want, f)
			}
		}
		expectFrames(t, replay(t, l, from), want)
	}
}

func TestReleaseBefore(t *testing.T) {
	dir := t.TempDir()
	const segSize = 4 << 10
	frames := makeFrames(60, 1000)
	writeLog(t, dir, segSize, frames)
	l, _ := open(t, wal.Options{Dir: dir, SegmentSize: segSize})
	before := segments(t, dir)

	// Release below offset 255: only segments whose rows all end at or
	// before 255 go.
	if err := l.ReleaseBefore(255); err != nil {
		t.Fatal(err)
	}
	after := segments(t, dir)
	if len(after) >= len(before) || len(after) != l.Segments() || l.Size() != diskSize(t, dir) {
		t.Fatalf("before %d after %d Segments()=%d", len(before), len(after), l.Segments())
	}
	got := replay(t, l, 0)
	if got[0].FirstOffset > 250 || got[0].FirstOffset == 0 {
		t.Fatalf("first remaining frame %d", got[0].FirstOffset)
	}
	expectFrames(t, replay(t, l, 255), frames[25:])
	// Releasing again at the same or a lower offset changes nothing.
	if err := l.ReleaseBefore(100); err != nil || len(segments(t, dir)) != len(after) {
		t.Fatal("second release changed the log")
	}
	l.Close()
	l, info := open(t, wal.Options{Dir: dir, SegmentSize: segSize})
	if info.FirstOffset != got[0].FirstOffset || info.NextOffset != 600 {
		t.Fatalf("%+v", info)
	}

	// Release everything, the active segment included; the next append
	// starts a new segment that continues the sequence.
	lastSeq := filepath.Base(after[len(after)-1])[:16]
	if err := l.ReleaseBefore(600); err != nil {
		t.Fatal(err)
	}
	if l.Segments() != 0 || l.Size() != 0 || len(segments(t, dir)) != 0 {
		t.Fatalf("segments %d size %d", l.Segments(), l.Size())
	}
	if err := l.Sync(); err != nil { // nothing to sync
		t.Fatal(err)
	}
	next := wal.Frame{FirstOffset: 600, Rows: 5, Payload: []byte("after release")}
	if _, err := l.Append(next); err != nil {
		t.Fatal(err)
	}
	l.Close()
	segs := segments(t, dir)
	if len(segs) != 1 || filepath.Base(segs[0])[:16] <= lastSeq {
		t.Fatalf("%v after %s", segs, lastSeq)
	}
	l, info = open(t, wal.Options{Dir: dir})
	defer l.Close()
	if info.Frames != 1 {
		t.Fatalf("%+v", info)
	}
	expectFrames(t, replay(t, l, 0), []wal.Frame{next})
}

// Size and Segments are read from other goroutines while the commit
// goroutine appends, rotates and releases (run with -race).
func TestConcurrentSizeSegments(t *testing.T) {
	dir := t.TempDir()
	l, _ := open(t, wal.Options{Dir: dir, SegmentSize: 4 << 10})
	defer l.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if l.Size() < 0 || l.Segments() < 0 {
					t.Error("negative size")
				}
			}
		}()
	}
	frames := makeFrames(300, 500)
	for i, f := range frames {
		if _, err := l.Append(f); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			l.Sync()
		}
		if i%50 == 49 {
			l.ReleaseBefore(f.FirstOffset - 100)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// copyDir copies the log in src into a new directory: what a process killed
// at this instant leaves to the next Open (the page cache keeps every write;
// losing unsynced ones is TestCrashAtEveryStep's job).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Preallocation keeps the active segment zero-filled ahead of its frames.
// Only the active segment ever holds zeros: a rotated or closed segment is
// cut to its frames. A log killed with zeros ahead reopens with every frame
// and a clean (ZeroTail) end, and appends after it.
func TestPreallocation(t *testing.T) {
	dir := t.TempDir()
	const segSize, prealloc = 16 << 10, 4 << 10
	frames := makeFrames(60, 700)
	l, _ := open(t, wal.Options{Dir: dir, SegmentSize: segSize, Preallocate: prealloc})
	lastPath, lastLen, overwrites := "", 0, 0
	for i, f := range frames {
		if _, err := l.Append(f); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		segs := segments(t, dir)
		var frameBytes int64
		for j, p := range segs {
			data := readFile(t, p)
			if j < len(segs)-1 {
				frameBytes += int64(len(data))
				continue
			}
			// The active segment: its frames, then at most one step of zeros.
			end := l.Size() - frameBytes
			if int64(len(data)) > min(end+prealloc, max(segSize, end)) || !allZero(data[end:]) {
				t.Fatalf("after frame %d: active segment is %d bytes, frames end at %d, zeros after: %v",
					i, len(data), end, allZero(data[end:]))
			}
			if p == lastPath && len(data) == lastLen {
				overwrites++ // the frame went into zeros already there
			}
			lastPath, lastLen = p, len(data)
		}
		if i == 10 || i == len(frames)-1 {
			killed := copyDir(t, dir)
			l2, info := open(t, wal.Options{Dir: killed, SegmentSize: segSize, Preallocate: prealloc})
			if info.Frames != i+1 || !info.ZeroTail || info.DroppedFrames != 0 {
				t.Fatalf("reopened after frame %d: %+v", i, info)
			}
			expectFrames(t, replay(t, l2, 0), frames[:i+1])
			appendAndReopen(t, l2, killed, frames[:i+1], makeFrame(i+1, 50))
		}
	}
	if n := len(segments(t, dir)); n < 3 || overwrites < len(frames)/2 {
		t.Fatalf("%d segments, %d of %d appends into preallocated zeros: the test wants rotations, and most appends to find zeros",
			n, overwrites, len(frames))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := diskSize(t, dir); got != l.Size() {
		t.Fatalf("closed log: %d bytes on disk, %d of segments", got, l.Size())
	}
	l, info := open(t, wal.Options{Dir: dir, SegmentSize: segSize, Preallocate: prealloc})
	defer l.Close()
	if info.Frames != len(frames) || info.TruncatedBytes != 0 {
		t.Fatalf("reopened after close: %+v", info)
	}
	expectFrames(t, replay(t, l, 0), frames)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// A write of preallocated zeros that fails (a full disk) is not an error: the
// frame is appended without them, and the next append tries again.
func TestPreallocationFailureIsNotAnError(t *testing.T) {
	dir := t.TempDir()
	fs := errorfs.Wrap(vfs.Default)
	// Writes: the segment header, then the first append's zeros, then its frame.
	in := fs.Inject(errorfs.Rule{Op: errorfs.OpWrite, N: 2, Match: isSegment, Partial: 100})
	l, _ := open(t, wal.Options{FS: fs, Dir: dir, Preallocate: 4096})
	frames := makeFrames(3, 100)
	for _, f := range frames {
		if _, err := l.Append(f); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if f.FirstOffset == 0 {
			if in.Fired() != 1 {
				t.Fatal("the zeros' write was not the one failed")
			}
			if fi, _ := os.Stat(onlySegment(t, dir)); fi.Size() != l.Size() {
				t.Fatalf("after a failed preallocation the file is %d bytes, its frames %d", fi.Size(), l.Size())
			}
		}
	}
	if fi, _ := os.Stat(onlySegment(t, dir)); fi.Size() <= l.Size() {
		t.Fatalf("the next append did not preallocate: %d bytes, frames %d", fi.Size(), l.Size())
	}
	fs.Crash()
	l2, info := open(t, wal.Options{Dir: dir})
	defer l2.Close()
	if info.Frames != 3 || !info.ZeroTail {
		t.Fatalf("%+v", info)
	}
	expectFrames(t, replay(t, l2, 0), frames)
}
