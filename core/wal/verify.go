package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/persisting/persisting/core/vfs"
)

// VerifyProblem is one piece of damage Verify found.
type VerifyProblem struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"` // byte offset in File, -1 when none applies
	// Kind: "corrupt" (Open refuses the log, or cuts it with
	// TruncateCorrupt) or "torn_tail" (Open cuts it with a warning).
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// VerifySegment describes one segment as Verify read it.
type VerifySegment struct {
	File     string `json:"file"`
	Seq      uint64 `json:"seq"`
	Size     int64  `json:"size"`
	Valid    int64  `json:"valid_bytes"` // header plus whole, checked frames
	Frames   int    `json:"frames"`
	Rows     uint64 `json:"rows"`
	FirstRow uint64 `json:"first_row"` // valid when Frames > 0
	EndRow   uint64 `json:"end_row"`   // valid when Frames > 0
	ZeroTail bool   `json:"zero_tail,omitempty"`
	Gone     bool   `json:"gone,omitempty"` // released by a live writer during the scan
}

// VerifyReport is what Verify found in one log directory.
type VerifyReport struct {
	Dir      string          `json:"dir"`
	Segments []VerifySegment `json:"segments"`
	Frames   int             `json:"frames"`
	Rows     uint64          `json:"rows"`
	Bytes    int64           `json:"bytes"`
	Problems []VerifyProblem `json:"problems"`
	// Temporary lists leftover (or in-flight) temporary segments; Damaged
	// lists what an earlier recovery moved into damaged/. Neither is a
	// problem in itself.
	Temporary []string `json:"temporary"`
	Damaged   []string `json:"damaged"`
}

// Verify reads every segment of the log in dir and checks every frame
// (length word, CRC, row ranges) and every segment header and the segment
// sequence, exactly as Open would, but changes nothing on disk: no
// truncation, no moves, no removal of temporary files. It is safe beside a
// live writer: a segment released meanwhile is marked Gone, and damage at
// the end of the last segment is read again while the file keeps growing
// (a frame being written), before it is reported as a torn tail.
func Verify(fs vfs.FS, dir string) (*VerifyReport, error) {
	if fs == nil {
		fs = vfs.Default
	}
	dir = filepath.Clean(dir)
	rep := &VerifyReport{Dir: dir, Segments: []VerifySegment{}, Problems: []VerifyProblem{},
		Temporary: []string{}, Damaged: []string{}}
	segs, err := rep.list(fs, dir)
	if err != nil {
		return nil, err
	}
	r := &recovery{fs: fs, dir: dir}
	var prevEnd uint64
	hasPrev := false
	var prev *segment
	for i, seg := range segs {
		if prev != nil {
			if reason := sequenceProblem(prev, seg, prevEnd, hasPrev); reason != "" {
				rep.Problems = append(rep.Problems, VerifyProblem{File: seg.path, Offset: 0, Kind: "corrupt", Reason: reason})
			}
		}
		last := i == len(segs)-1
		d, size, err := verifySegment(r, seg, prevEnd, hasPrev, last)
		vs := VerifySegment{File: seg.path, Seq: seg.seq, Size: size}
		if errors.Is(err, os.ErrNotExist) {
			// Released (or moved aside) by a live writer since the listing.
			vs.Gone = true
			rep.Segments = append(rep.Segments, vs)
			continue
		}
		if err != nil {
			return nil, err
		}
		prev = seg
		vs.Valid, vs.Frames, vs.Rows = seg.size, seg.frames, seg.rows
		vs.FirstRow, vs.EndRow = seg.firstRow, seg.endRow
		rep.Frames += seg.frames
		rep.Rows += seg.rows
		rep.Bytes += size
		if seg.frames > 0 {
			prevEnd, hasPrev = seg.endRow, true
		}
		if d != nil {
			rep.addDamage(&vs, seg, d, size)
		}
		rep.Segments = append(rep.Segments, vs)
	}
	return rep, nil
}

// list reads the log directory: it notes the files an earlier recovery
// moved aside and the temporary files, reports segment names Open would
// refuse, and returns the segments in sequence order.
func (rep *VerifyReport) list(fs vfs.FS, dir string) ([]*segment, error) {
	entries, err := fs.ReadDir(dir)
	if err != nil {
		return nil, &WALError{Op: "read dir", File: dir, Offset: -1, Err: err}
	}
	var segs []*segment
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case e.IsDir() && name == damagedDir:
			if sub, err := fs.ReadDir(path); err == nil {
				for _, d := range sub {
					rep.Damaged = append(rep.Damaged, filepath.Join(path, d.Name()))
				}
			}
		case strings.HasSuffix(name, segmentExt+tempExt):
			rep.Temporary = append(rep.Temporary, path)
		case strings.HasSuffix(name, segmentExt):
			seq, base, ok := parseSegmentName(name)
			if !ok {
				rep.Problems = append(rep.Problems, VerifyProblem{File: path, Offset: -1, Kind: "corrupt",
					Reason: "unexpected file name in the log directory (Open refuses it)"})
				continue
			}
			segs = append(segs, &segment{seq: seq, base: base, path: path})
		}
	}
	sortSegments(segs)
	return segs, nil
}

// sequenceProblem is what is wrong with seg following prev (whose rows
// end at prevEnd when hasPrev), or "".
func sequenceProblem(prev, seg *segment, prevEnd uint64, hasPrev bool) string {
	switch {
	case seg.seq == prev.seq:
		return fmt.Sprintf("duplicate segment sequence number %d (also %s)", seg.seq, prev.path)
	case seg.seq != prev.seq+1:
		return fmt.Sprintf("missing segment(s): sequence jumps from %d to %d", prev.seq, seg.seq)
	case hasPrev && seg.base < prevEnd:
		return fmt.Sprintf("segment starts at offset %d, before the previous segment's end %d", seg.base, prevEnd)
	}
	return ""
}

// addDamage reports what the scan of a segment of size bytes stopped at: a
// corrupt frame, a torn tail, or zeroes (a clean end, marked on vs).
func (rep *VerifyReport) addDamage(vs *VerifySegment, seg *segment, d *damage, size int64) {
	switch {
	case d.corrupt:
		rep.Problems = append(rep.Problems, VerifyProblem{File: seg.path, Offset: d.offset, Kind: "corrupt", Reason: d.reason})
	case d.zero:
		vs.ZeroTail = true // unwritten space after the last frame: a clean end
	default:
		rep.Problems = append(rep.Problems, VerifyProblem{File: seg.path, Offset: d.offset, Kind: "torn_tail",
			Reason: d.reason + fmt.Sprintf(" (%d bytes from there to the end; the next open cuts them)", size-d.offset)})
	}
}

// verifySegment scans one segment read-only. The last segment may be
// growing under a live writer: damage at its end is read again, up to a
// few times, while the file's size changes or (its frames going into
// preallocated zeros, where the size stays) more of it checks out.
func verifySegment(r *recovery, seg *segment, prevEnd uint64, hasPrev, last bool) (*damage, int64, error) {
	var size, valid int64
	for attempt := 0; ; attempt++ {
		*seg = segment{seq: seg.seq, base: seg.base, path: seg.path}
		before, err := statSize(r.fs, seg.path)
		if err != nil {
			return nil, 0, err
		}
		d, err := r.scanSegment(seg, prevEnd, hasPrev, last)
		if err != nil {
			return nil, before, err
		}
		settled := attempt > 0 && before == size && seg.size == valid
		if d == nil || !last || attempt >= 5 || settled {
			return d, before, nil
		}
		size, valid = before, seg.size
		time.Sleep(50 * time.Millisecond)
	}
}

func statSize(fs vfs.FS, path string) (int64, error) {
	st, err := fs.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		return 0, &WALError{Op: "stat segment", File: path, Offset: -1, Err: err}
	}
	return st.Size(), nil
}
