package waltest

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/persisting/persisting/core/wal"
)

// Truncation sweep (etcd TestRepairTruncate, generalised): cut the segment at
// every byte inside the last frame. Reopen must give exactly the frames
// before it, report the cut, and accept and replay a new append.
func TestTruncateEveryByteOfLastFrame(t *testing.T) {
	src := t.TempDir()
	frames := makeFrames(5, 300)
	writeLog(t, src, 0, frames)
	data := readFile(t, onlySegment(t, src))
	lastStart := frameStarts(frames)[4]
	if int64(len(data)) != lastStart+encodedSize(frames[4]) {
		t.Fatalf("layout: file %d bytes", len(data))
	}
	next := makeFrame(99, 50)
	for cut := lastStart; cut < int64(len(data)); cut++ {
		dir := t.TempDir()
		path := filepath.Join(dir, filepath.Base(onlySegment(t, src)))
		writeFile(t, path, data[:cut])
		l, info, err := wal.Open(wal.Options{Dir: dir})
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if info.Frames != 4 || info.Rows != 40 || info.NextOffset != 40 {
			t.Fatalf("cut %d: %+v", cut, info)
		}
		if info.TruncatedBytes != cut-lastStart {
			t.Fatalf("cut %d: truncated %d bytes, want %d", cut, info.TruncatedBytes, cut-lastStart)
		}
		if cut > lastStart && (info.TruncatedFile != path || info.TruncateReason == "" || info.ZeroTail) {
			t.Fatalf("cut %d: %+v", cut, info)
		}
		if fi, _ := os.Stat(path); fi.Size() != lastStart {
			t.Fatalf("cut %d: file is %d bytes after repair", cut, fi.Size())
		}
		expectFrames(t, replay(t, l, 0), frames[:4])
		appendAndReopen(t, l, dir, frames[:4], next)
	}
}

// A cut inside the segment header of the only segment, down to zero bytes,
// is damage, never a torn write of ours (the header is synced before the
// rename that makes a segment visible), and the frames it held are gone: the
// open fails naming the file. Under TruncateCorrupt the segment leaves the
// log but is moved into damaged/, bytes intact, never deleted.
func TestTruncateSegmentHeader(t *testing.T) {
	src := t.TempDir()
	writeLog(t, src, 0, makeFrames(1, 10))
	data := readFile(t, onlySegment(t, src))
	for cut := 0; cut < segHeader; cut++ {
		dir := t.TempDir()
		path := filepath.Join(dir, filepath.Base(onlySegment(t, src)))
		writeFile(t, path, data[:cut])
		_, _, err := wal.Open(wal.Options{Dir: dir})
		if ce := asCorruption(t, err); ce.File != path || ce.Offset != 0 {
			t.Fatalf("cut %d: %+v", cut, ce)
		}
		if got := readFile(t, path); len(got) != cut {
			t.Fatalf("cut %d: the failed open changed the file (%d bytes)", cut, len(got))
		}
		l, info := open(t, wal.Options{Dir: dir, TruncateCorrupt: true})
		aside := filepath.Join(dir, "damaged", filepath.Base(path))
		if info.Frames != 0 || info.Segments != 0 || !slices.Equal(info.DroppedSegments, []string{path}) ||
			!slices.Equal(info.Evidence, []string{aside}) {
			t.Fatalf("cut %d: %+v", cut, info)
		}
		if got := readFile(t, aside); !bytes.Equal(got, data[:cut]) {
			t.Fatalf("cut %d: evidence holds %d bytes, want %d", cut, len(got), cut)
		}
		appendAndReopen(t, l, dir, nil, makeFrame(0, 10))
	}
}

// Torn last frame (etcd TestRepairWriteTearLast): a 512-byte sector of it
// overwritten with zeros, or with garbage, is cut back.
func TestTearLastFrame(t *testing.T) {
	for _, fill := range []string{"zeros", "garbage"} {
		t.Run(fill, func(t *testing.T) {
			src := t.TempDir()
			frames := makeFrames(4, 200)
			frames = append(frames, makeFrame(4, 3000))
			writeLog(t, src, 0, frames)
			data := readFile(t, onlySegment(t, src))
			lastStart := frameStarts(frames)[4]
			// Every 512-aligned sector that starts inside the last frame.
			for sec := (lastStart + 511) &^ 511; sec < int64(len(data)); sec += 512 {
				dir := t.TempDir()
				path := filepath.Join(dir, filepath.Base(onlySegment(t, src)))
				torn := slices.Clone(data)
				end := min(sec+512, int64(len(torn)))
				rng := rand.New(rand.NewPCG(uint64(sec), 1))
				for i := sec; i < end; i++ {
					if fill == "zeros" {
						torn[i] = 0
					} else {
						torn[i] = byte(rng.Uint32())
					}
				}
				writeFile(t, path, torn)
				l, info, err := wal.Open(wal.Options{Dir: dir})
				if err != nil {
					t.Fatalf("sector %d: %v", sec, err)
				}
				if info.Frames != 4 || info.TruncatedBytes != int64(len(data))-lastStart || info.TruncatedFile != path {
					t.Fatalf("sector %d: %+v", sec, info)
				}
				expectFrames(t, replay(t, l, 0), frames[:4])
				appendAndReopen(t, l, dir, frames[:4], makeFrame(99, 10))
			}
		})
	}
}

// The header of the last frame torn to zeros: a zero length word.
func TestTearLastFrameHeader(t *testing.T) {
	src := t.TempDir()
	frames := makeFrames(3, 100)
	writeLog(t, src, 0, frames)
	data := readFile(t, onlySegment(t, src))
	start := frameStarts(frames)[2]
	for _, n := range []int64{8, 16, 24} {
		dir := t.TempDir()
		torn := slices.Clone(data)
		clear(torn[start : start+n])
		writeFile(t, filepath.Join(dir, filepath.Base(onlySegment(t, src))), torn)
		l, info := open(t, wal.Options{Dir: dir})
		if info.Frames != 2 || info.TruncatedBytes != int64(len(data))-start {
			t.Fatalf("zeroed %d: %+v", n, info)
		}
		l.Close()
	}
}

// etcd TestRepairWriteTearMiddle: a zeroed sector in a middle frame of the
// last segment followed by frames that still check out is the signature of
// unsynced pages reaching the disk out of order, so it is repaired as a torn
// tail, with the later frames reported in DroppedFrames.
func TestTearMiddleFrameWithZeroSector(t *testing.T) {
	src := t.TempDir()
	frames := makeFrames(6, 2000)
	writeLog(t, src, 0, frames)
	data := readFile(t, onlySegment(t, src))
	start := frameStarts(frames)[2]
	sec := (start + 511) &^ 511
	clear(data[sec : sec+512])
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, filepath.Base(onlySegment(t, src))), data)
	l, info := open(t, wal.Options{Dir: dir})
	defer l.Close()
	if info.Frames != 2 || info.DroppedFrames != 3 || info.TruncatedBytes != int64(len(data))-start {
		t.Fatalf("%+v", info)
	}
	expectFrames(t, replay(t, l, 0), frames[:2])
}

// Flipping one byte of a middle frame (any field) is corruption: Open fails
// naming the file and the frame's offset. With TruncateCorrupt it cuts there
// and reports it.
func TestCorruptMiddleFrame(t *testing.T) {
	src := t.TempDir()
	frames := makeFrames(5, 101) // 101..107-byte payloads: every frame has padding
	writeLog(t, src, 0, frames)
	data := readFile(t, onlySegment(t, src))
	start := frameStarts(frames)[2]
	size := encodedSize(frames[2])
	fields := map[string]int64{
		"length": 1, "length check": 5, "first offset": 9, "rows": 17, "crc": 21,
		"payload": frameHeader + 50, "padding": size - 1,
	}
	for name, at := range fields {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, filepath.Base(onlySegment(t, src)))
			bad := slices.Clone(data)
			bad[start+at] ^= 0x40
			writeFile(t, path, bad)
			_, _, err := wal.Open(wal.Options{Dir: dir})
			ce := asCorruption(t, err)
			if ce.File != path || ce.Offset != start {
				t.Fatalf("got %+v, want file %s offset %d", ce, path, start)
			}
			// Nothing was changed by the failed open.
			if got := readFile(t, path); !slices.Equal(got, bad) {
				t.Fatal("failed open modified the segment")
			}
			l, info, err := wal.Open(wal.Options{Dir: dir, TruncateCorrupt: true})
			if err != nil {
				t.Fatal(err)
			}
			if info.Frames != 2 || info.Corruption == nil || info.Corruption.Offset != start ||
				info.TruncatedFile != path || info.TruncatedBytes != int64(len(data))-start {
				t.Fatalf("%+v", info)
			}
			expectFrames(t, replay(t, l, 0), frames[:2])
			appendAndReopen(t, l, dir, frames[:2], makeFrame(50, 10))
		})
	}
}

// Corruption in a segment that is not the last is never a torn tail, even
// in its last frame; TruncateCorrupt drops every later segment.
func TestCorruptEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	frames := makeFrames(30, 500)
	writeLog(t, dir, 4096, frames)
	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want 3+ segments, have %d", len(segs))
	}
	data := readFile(t, segs[0])
	data[len(data)-3] ^= 1 // padding or payload of its last frame
	writeFile(t, segs[0], data)
	_, _, err := wal.Open(wal.Options{Dir: dir})
	ce := asCorruption(t, err)
	if ce.File != segs[0] {
		t.Fatalf("%+v", ce)
	}
	l, info := open(t, wal.Options{Dir: dir, TruncateCorrupt: true})
	defer l.Close()
	if !slices.Equal(info.DroppedSegments, segs[1:]) || info.TruncatedFile != segs[0] || info.Segments != 1 {
		t.Fatalf("%+v", info)
	}
	expectFrames(t, replay(t, l, 0), frames[:info.Frames])
	if len(segments(t, dir)) != 1 {
		t.Fatal("dropped segments still on disk")
	}
}

// Zeros after the last frame (preallocated or never written) are a clean
// end: no error, the zeros cut and flagged ZeroTail.
func TestZeroFilledTail(t *testing.T) {
	for _, n := range []int{3, 8, 13, 4096, 1 << 20} {
		src := t.TempDir()
		frames := makeFrames(4, 100)
		writeLog(t, src, 0, frames)
		path := onlySegment(t, src)
		data := readFile(t, path)
		writeFile(t, path, append(slices.Clone(data), make([]byte, n)...))
		l, info := open(t, wal.Options{Dir: src})
		if info.Frames != 4 || !info.ZeroTail || info.TruncatedBytes != int64(n) || info.DroppedFrames != 0 {
			t.Fatalf("%d zeros: %+v", n, info)
		}
		expectFrames(t, replay(t, l, 0), frames)
		appendAndReopen(t, l, src, frames, makeFrame(10, 10))
	}
}

// A header-only last segment (crash between creating a segment and writing
// its first frame) is removed and its sequence number reused; a zero-length
// file with a segment name (which temp+rename never leaves behind) is
// corruption, and under TruncateCorrupt it is moved aside.
func TestEmptySegment(t *testing.T) {
	dir := t.TempDir()
	frames := makeFrames(3, 100)
	// SegmentSize 1: every frame gets its own segment.
	writeLog(t, dir, 1, append(slices.Clone(frames), wal.Frame{FirstOffset: 30, Rows: 1}))
	segs := segments(t, dir)
	if len(segs) != 4 {
		t.Fatalf("%v", segs)
	}
	last := segs[3]
	writeFile(t, last, readFile(t, last)[:segHeader])
	l, info := open(t, wal.Options{Dir: dir, SegmentSize: 1})
	if info.Frames != 3 || !slices.Equal(info.RemovedFiles, []string{last}) || info.Segments != 3 ||
		info.TruncatedBytes != 0 || len(info.DroppedSegments) != 0 {
		t.Fatalf("%+v", info)
	}
	expectFrames(t, replay(t, l, 0), frames)
	next := makeFrame(5, 10) // starts at 50, not at the removed segment's 30
	appendAndReopen(t, l, dir, frames, next)
	if got := segments(t, dir); len(got) != 4 || filepath.Base(got[3]) != "0000000000000003-0000000000000032.wal" {
		t.Fatalf("%v", got)
	}

	dir3 := t.TempDir()
	writeLog(t, dir3, 0, frames)
	empty := filepath.Join(dir3, "0000000000000001-000000000000001e.wal")
	writeFile(t, empty, nil)
	_, _, err := wal.Open(wal.Options{Dir: dir3})
	if ce := asCorruption(t, err); ce.File != empty {
		t.Fatalf("%+v", ce)
	}
	l, info = open(t, wal.Options{Dir: dir3, TruncateCorrupt: true})
	if info.Frames != 3 || !slices.Equal(info.DroppedSegments, []string{empty}) ||
		!slices.Equal(info.Evidence, []string{filepath.Join(dir3, "damaged", filepath.Base(empty))}) {
		t.Fatalf("%+v", info)
	}
	appendAndReopen(t, l, dir3, frames, makeFrame(5, 10))
}

// A segment missing from the sequence is corruption naming the segment after
// the gap; TruncateCorrupt keeps the segments before it.
func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	frames := makeFrames(40, 500)
	writeLog(t, dir, 4096, frames)
	segs := segments(t, dir)
	if len(segs) < 4 {
		t.Fatalf("want 4+ segments, have %d", len(segs))
	}
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	_, _, err := wal.Open(wal.Options{Dir: dir})
	ce := asCorruption(t, err)
	if ce.File != segs[2] || ce.Offset != 0 {
		t.Fatalf("%+v", ce)
	}
	l, info := open(t, wal.Options{Dir: dir, SegmentSize: 4096, TruncateCorrupt: true})
	if info.Segments != 1 || !slices.Equal(info.DroppedSegments, segs[2:]) || info.Corruption == nil {
		t.Fatalf("%+v", info)
	}
	got := replay(t, l, 0)
	expectFrames(t, got, frames[:len(got)])
	// The next segment continues the sequence right after the kept one.
	appendAndReopen(t, l, dir, got, makeFrame(len(got)+100, 10))
	if n := len(segments(t, dir)); n != 2 {
		t.Fatalf("%d segments", n)
	}
}

// Leftover temporary segments from an interrupted creation are removed.
func TestLeftoverTempSegment(t *testing.T) {
	dir := t.TempDir()
	frames := makeFrames(2, 10)
	writeLog(t, dir, 0, frames)
	tmp := filepath.Join(dir, "0000000000000001-0000000000000014.wal.tmp")
	writeFile(t, tmp, []byte("partial"))
	l, info := open(t, wal.Options{Dir: dir})
	defer l.Close()
	if !slices.Equal(info.RemovedFiles, []string{tmp}) || info.Frames != 2 {
		t.Fatalf("%+v", info)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("temp segment not removed")
	}
}
