package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/persisting/persisting/core/vfs"
)

func writeLog(t *testing.T, dir string, frames int) string {
	t.Helper()
	l, _, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if _, err := l.Append(Frame{FirstOffset: uint64(i * 2), Rows: 2, Payload: bytes.Repeat([]byte{byte(i + 1)}, 40)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	return segs[0]
}

func TestVerifyHealthy(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 3)
	rep, err := Verify(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Frames != 3 || rep.Rows != 6 {
		t.Fatalf("report: %+v", rep)
	}
}

// Verify reports damage that Open would refuse, names file and offset, and
// changes nothing on disk (Open would not either, but TruncateCorrupt would).
func TestVerifyCorruptFrameReadOnly(t *testing.T) {
	dir := t.TempDir()
	seg := writeLog(t, dir, 3)
	raw, _ := os.ReadFile(seg)
	raw[segmentHeaderSize+frameHeaderSize+3] ^= 1 // first frame's payload
	if err := os.WriteFile(seg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != "corrupt" || rep.Problems[0].Offset != segmentHeaderSize || rep.Problems[0].File != seg {
		t.Fatalf("problems: %+v", rep.Problems)
	}
	after, _ := os.ReadFile(seg)
	if !bytes.Equal(after, raw) {
		t.Fatal("Verify changed the segment")
	}
	if _, err := os.Stat(filepath.Join(dir, damagedDir)); !os.IsNotExist(err) {
		t.Fatal("Verify created damaged/")
	}
}

func TestVerifyTornTail(t *testing.T) {
	dir := t.TempDir()
	seg := writeLog(t, dir, 3)
	st, _ := os.Stat(seg)
	if err := os.Truncate(seg, st.Size()-5); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != "torn_tail" || rep.Frames != 2 {
		t.Fatalf("report: %+v", rep)
	}
	if st2, _ := os.Stat(seg); st2.Size() != st.Size()-5 {
		t.Fatal("Verify cut the tail")
	}
}

// onReopen runs hook when path is opened for the nth time.
type onReopen struct {
	vfs.FS
	path  string
	n     int
	opens int
	hook  func()
}

func (f *onReopen) Open(name string) (vfs.File, error) {
	if name == f.path {
		if f.opens++; f.opens == f.n {
			f.hook()
		}
	}
	return f.FS.Open(name)
}

// A frame being written into preallocated zeros leaves the file's size as it
// was: Verify beside a live writer reads the end again while more of it
// checks out, instead of reporting a torn tail. A half frame that stays is
// reported.
func TestVerifyFrameBeingWrittenIntoZeros(t *testing.T) {
	for _, completes := range []bool{true, false} {
		dir := t.TempDir()
		l, _, err := Open(Options{Dir: dir, Preallocate: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := l.Append(Frame{FirstOffset: uint64(i), Rows: 1, Payload: []byte("written")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		seg := l.segs[0]
		next := AppendFrame(nil, Frame{FirstOffset: 2, Rows: 1, Payload: bytes.Repeat([]byte{7}, 100)})
		f, err := os.OpenFile(seg.path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(next[:60], seg.size); err != nil {
			t.Fatal(err)
		}
		fs := &onReopen{FS: vfs.Default, path: seg.path, n: 2, hook: func() {
			if completes {
				f.WriteAt(next[60:], seg.size+60)
			}
		}}
		rep, err := Verify(fs, dir)
		f.Close()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		if fs.opens < 2 {
			t.Fatalf("completes=%v: the end was not read again (%d opens)", completes, fs.opens)
		}
		if completes && (len(rep.Problems) != 0 || rep.Frames != 3) {
			t.Fatalf("frame completed during the scan: %+v", rep)
		}
		if !completes && (len(rep.Problems) != 1 || rep.Problems[0].Kind != "torn_tail" || rep.Frames != 2) {
			t.Fatalf("half frame left: %+v", rep)
		}
	}
}
