package waltest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

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
