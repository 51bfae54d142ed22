package waltest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/persisting/persisting/core/wal"
)

const (
	segHeader   = 32 // size of a segment header
	frameHeader = 24 // size of a frame header
)

// makeFrame builds frame i of a test stream: 10 rows per frame, payload of
// random (never zero-sector) bytes whose size varies with i so that padding
// is exercised.
func makeFrame(i int, size int) wal.Frame {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	p := make([]byte, size+i%7)
	for j := range p {
		p[j] = byte(rng.IntN(255) + 1)
	}
	return wal.Frame{FirstOffset: uint64(i) * 10, Rows: 10, Payload: p}
}

func makeFrames(n, size int) []wal.Frame {
	fs := make([]wal.Frame, n)
	for i := range fs {
		fs[i] = makeFrame(i, size)
	}
	return fs
}

// encodedSize is a frame's size on disk.
func encodedSize(f wal.Frame) int64 { return frameHeader + (int64(len(f.Payload))+7)&^7 }

// frameStarts returns the file offset of each frame of a single segment.
func frameStarts(frames []wal.Frame) []int64 {
	off := int64(segHeader)
	var starts []int64
	for _, f := range frames {
		starts = append(starts, off)
		off += encodedSize(f)
	}
	return starts
}

func open(t testing.TB, opts wal.Options) (*wal.Log, wal.RecoveryInfo) {
	t.Helper()
	l, info, err := wal.Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l, info
}

// writeLog appends frames to a fresh log in dir, syncs and closes it.
func writeLog(t testing.TB, dir string, segSize int64, frames []wal.Frame) {
	t.Helper()
	l, _ := open(t, wal.Options{Dir: dir, SegmentSize: segSize})
	for _, f := range frames {
		if _, err := l.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func replay(t testing.TB, l *wal.Log, from uint64) []wal.Frame {
	t.Helper()
	var got []wal.Frame
	if err := l.Replay(from, func(f wal.Frame) error {
		got = append(got, f)
		return nil
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return got
}

func sameFrames(a, b []wal.Frame) bool {
	return slices.EqualFunc(a, b, func(x, y wal.Frame) bool {
		return x.FirstOffset == y.FirstOffset && x.Rows == y.Rows && bytes.Equal(x.Payload, y.Payload)
	})
}

func expectFrames(t testing.TB, got, want []wal.Frame) {
	t.Helper()
	if !sameFrames(got, want) {
		t.Fatalf("got %d frames %v, want %d frames %v", len(got), offsets(got), len(want), offsets(want))
	}
}

func offsets(fs []wal.Frame) []uint64 {
	var o []uint64
	for _, f := range fs {
		o = append(o, f.FirstOffset)
	}
	return o
}

// segments lists the segment files of dir, oldest first.
func segments(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".wal") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// onlySegment returns the path of the single segment in dir.
func onlySegment(t testing.TB, dir string) string {
	t.Helper()
	segs := segments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("want one segment, have %v", segs)
	}
	return segs[0]
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func asCorruption(t testing.TB, err error) *wal.CorruptionError {
	t.Helper()
	var ce *wal.CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want *wal.CorruptionError", err)
	}
	return ce
}

// appendAndReopen checks that the log accepts an append after recovery and
// that a reopen replays want plus the new frame.
func appendAndReopen(t testing.TB, l *wal.Log, dir string, want []wal.Frame, next wal.Frame) {
	t.Helper()
	if _, err := l.Append(next); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, info := open(t, wal.Options{Dir: dir})
	defer l2.Close()
	if info.TruncatedBytes != 0 || info.Corruption != nil {
		t.Fatalf("second open repaired again: %+v", info)
	}
	expectFrames(t, replay(t, l2, 0), append(slices.Clone(want), next))
}
