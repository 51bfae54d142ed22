// Package remotewal is a write-ahead log kept on an object store (a
// core/store.Store, S3 in production), for buckets whose data lives there
// too: a node that dies loses nothing it acknowledged, and whichever node
// opens the bucket next replays the log.
//
// Layout, under the log's store root ({bucket}/wal):
//
//	epochs/{epoch:016x}              one per owner, taken with put-if-absent
//	{epoch:016x}-{seq:016x}.grp      one group commit: a header and wal frames
//
// Epochs. Open takes the next epoch E by a put-if-absent of epochs/E; a
// later Open by anyone else takes E+1, which fences this owner (see
// Sync). Group seq 0 of each epoch is the cut: written at Open, it names the
// last group of the earlier epochs that the owner found, so that a group a
// fenced owner wrote after that (never acknowledged: see Sync) is ignored
// by every later owner. Data groups follow from seq 1.
//
// Groups. Append buffers frames in memory; Sync writes them as one object
// with put-if-absent (no two writers can both create a name, and an epoch
// has one writer), then checks that epochs/E+1 does not exist: if it does,
// a new owner may have listed the log before our group landed, so the group
// is reported as failed (FencedError) and the log refuses every later
// write. S3 is strongly consistent, so a group whose check passed was in
// place before the new owner listed, and it is replayed. An object is
// visible only whole, so a group is never torn; every frame still carries
// its CRC (core/wal's frame format) and is checked on read.
//
// ReleaseBefore removes the groups whose rows are all in the dataset.
package remotewal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bytes"

	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/wal"
)

// ErrFenced is wrapped by FencedError.
var ErrFenced = errors.New("fenced: another owner took the bucket")

// FencedError says a newer owner took the bucket: this one must stop
// writing. What it wrote after the takeover was not acknowledged.
type FencedError struct {
	Root  string
	Epoch uint64 // ours
	By    uint64 // the newer epoch
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("persisting: bucket %s: fenced: another owner took the bucket (epoch %d, ours %d); this backend no longer writes, reopen it to take the bucket back",
		e.Root, e.By, e.Epoch)
}

func (e *FencedError) Unwrap() error { return ErrFenced }

const (
	epochsDir  = "epochs"
	groupExt   = ".grp"
	magic      = "PSTRWAL1"
	headerSize = 48 // magic, epoch, seq, cut epoch, cut seq, body crc, reserved
)

type groupID struct{ epoch, seq uint64 }

func (g groupID) less(o groupID) bool {
	return g.epoch < o.epoch || g.epoch == o.epoch && g.seq < o.seq
}

func (g groupID) name() string { return fmt.Sprintf("%016x-%016x%s", g.epoch, g.seq, groupExt) }

func parseGroupName(name string) (groupID, bool) {
	base, ok := strings.CutSuffix(name, groupExt)
	if !ok || len(base) != 33 || base[16] != '-' {
		return groupID{}, false
	}
	e, err1 := strconv.ParseUint(base[:16], 16, 64)
	s, err2 := strconv.ParseUint(base[17:], 16, 64)
	return groupID{e, s}, err1 == nil && err2 == nil
}

type group struct {
	id       groupID
	size     int64
	first    uint64 // first row offset, valid when frames > 0
	end      uint64 // end of the last frame's rows
	frames   int
	cut      groupID // seq 0 only
	hasFrame bool
	// data is the group as Open read it, kept for the replay that follows
	// (then dropped); nil for groups written since.
	data []byte
}

// Info reports what Open found.
type Info struct {
	Epoch       uint64 // the epoch this owner took
	Groups      int    // groups replayable
	Frames      int
	Rows        uint64
	FirstOffset uint64 // valid when Frames > 0
	NextOffset  uint64 // valid when Frames > 0
	Ignored     int    // groups of fenced owners past a cut (never acknowledged)
}

// Options configure Open.
type Options struct {
	// Owner describes this owner in its epoch object (host, pid), for
	// people reading the store.
	Owner string
}

// Log is an open remote log. Append, Sync, ReleaseBefore, Replay and Close
// are called from one goroutine at a time; Size and Segments from any.
type Log struct {
	st    store.Store
	epoch uint64
	seq   uint64 // of the next data group

	groups []group // replayable, in order
	buf    []byte  // frames of the group being built
	bufEnd uint64
	nbuf   int

	nextOffset uint64
	hasOffset  bool

	poison error
	closed bool
	size   atomic.Int64
	ngroup atomic.Int64
}

// Open takes the next epoch, writes the cut, and indexes every group it
// will replay (reading and checking each).
func Open(st store.Store, o Options) (*Log, Info, error) {
	epoch, err := TakeEpoch(st, o.Owner)
	if err != nil {
		return nil, Info{}, err
	}
	l := &Log{st: st, epoch: epoch, seq: 1}
	info := Info{Epoch: epoch}
	names, err := st.List("")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, info, fmt.Errorf("remotewal: list %s: %w", st.Root(), err)
	}
	var ids []groupID
	for _, n := range names {
		if id, ok := parseGroupName(n); ok && id.epoch < epoch {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b groupID) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	read, err := l.readAll(ids)
	if err != nil {
		return nil, info, err
	}
	var valid []group
	for i, id := range ids {
		g, err := read[i].g, read[i].err
		if errors.Is(err, os.ErrNotExist) {
			continue // released since the listing: its rows are in the dataset
		}
		if err != nil {
			return nil, info, err
		}
		if id.seq == 0 {
			// A cut: drop what earlier epochs wrote past it.
			kept := valid[:0]
			for _, v := range valid {
				if !g.cut.less(v.id) {
					kept = append(kept, v)
				} else {
					info.Ignored++
				}
			}
			valid = kept
			continue
		}
		valid = append(valid, g)
	}
	// The cut of this epoch: the last group found.
	cut := groupID{}
	if len(valid) > 0 {
		cut = valid[len(valid)-1].id
	}
	if err := l.put(encodeGroup(groupID{epoch, 0}, cut, nil)); err != nil {
		return nil, info, err
	}
	for _, g := range valid {
		if g.frames == 0 {
			continue
		}
		if l.hasOffset && g.first < l.nextOffset {
			return nil, info, &wal.CorruptionError{File: st.Root() + "/" + g.id.name(), Offset: 0,
				Reason: fmt.Sprintf("group starts at row %d, before the end %d of the one before", g.first, l.nextOffset)}
		}
		if !l.hasOffset {
			info.FirstOffset = g.first
		}
		l.nextOffset, l.hasOffset = g.end, true
		info.Frames += g.frames
		info.Rows += g.end - g.first
		l.groups = append(l.groups, g)
		l.size.Add(g.size)
	}
	l.ngroup.Store(int64(len(l.groups)))
	info.Groups = len(l.groups)
	info.NextOffset = l.nextOffset
	return l, info, nil
}

// HasGroups reports whether st holds groups of a log: acknowledged rows an
// owner whose log was on the object store may have left.
func HasGroups(st store.Store) (bool, error) {
	names, err := st.List("")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remotewal: list %s: %w", st.Root(), err)
	}
	for _, n := range names {
		if _, ok := parseGroupName(n); ok {
			return true, nil
		}
	}
	return false, nil
}

// TakeEpoch creates epochs/{n+1} where n is the newest epoch listed,
// retrying when another owner took that number first. Open takes one; an
// owner whose log is local, or off, takes one without opening a log, to fence
// the owners before it (they learn it at their next commit to the dataset,
// which carries the epoch).
func TakeEpoch(st store.Store, owner string) (uint64, error) {
	for attempt := 0; attempt < 32; attempt++ {
		last, err := latestEpoch(st)
		if err != nil {
			return 0, err
		}
		next := last + 1
		body, _ := json.Marshal(map[string]any{"epoch": next, "owner": owner, "time": time.Now().UTC().Format(time.RFC3339Nano)})
		err = st.PutIfAbsent(epochName(next), body)
		switch {
		case err == nil:
			return next, nil
		case errors.Is(err, os.ErrExist):
			continue
		default:
			return 0, fmt.Errorf("remotewal: take epoch %d in %s: %w", next, st.Root(), err)
		}
	}
	return 0, fmt.Errorf("remotewal: take an epoch in %s: too many concurrent owners", st.Root())
}

func epochName(e uint64) string { return epochsDir + "/" + fmt.Sprintf("%016x", e) }

func latestEpoch(st store.Store) (uint64, error) {
	names, err := st.List(epochsDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("remotewal: list epochs of %s: %w", st.Root(), err)
	}
	var last uint64
	for _, n := range names {
		if e, err := strconv.ParseUint(n, 16, 64); err == nil && len(n) == 16 && e > last {
			last = e
		}
	}
	return last, nil
}

// Epoch is the epoch this owner holds.
func (l *Log) Epoch() uint64 { return l.epoch }

func encodeGroup(id, cut groupID, frames []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(frames))
	copy(b, magic)
	binary.LittleEndian.PutUint64(b[8:], id.epoch)
	binary.LittleEndian.PutUint64(b[16:], id.seq)
	binary.LittleEndian.PutUint64(b[24:], cut.epoch)
	binary.LittleEndian.PutUint64(b[32:], cut.seq)
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(frames, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, frames...)
}

type readResult struct {
	g   group
	err error
}

// openReaders bounds the groups Open reads at once: a moved bucket's open
// waits on these round trips.
const openReaders = 16

// readAll reads and checks the groups, openReaders at a time, keeping
// their bytes for the replay.
func (l *Log) readAll(ids []groupID) ([]readResult, error) {
	out := make([]readResult, len(ids))
	sem := make(chan struct{}, openReaders)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var data []byte
			g, err := l.readGroupData(id, nil, &data)
			g.data = data
			out[i] = readResult{g, err}
		})
	}
	wg.Wait()
	return out, nil
}

// readGroup reads and checks one group; fn, when set, gets its frames.
func (l *Log) readGroup(id groupID, fn func(wal.Frame) error) (group, error) {
	return l.readGroupData(id, fn, nil)
}

// readGroupData is readGroup, from *keep when it holds the bytes already,
// else from the store (and then into *keep, when keep is not nil).
func (l *Log) readGroupData(id groupID, fn func(wal.Frame) error, keep *[]byte) (group, error) {
	name := id.name()
	full := l.st.Root() + "/" + name
	var data []byte
	if keep != nil && *keep != nil {
		data = *keep
	} else {
		var err error
		if data, err = l.st.Get(name); err != nil {
			return group{}, fmt.Errorf("remotewal: read %s: %w", full, err)
		}
		if keep != nil {
			*keep = data
		}
	}
	corrupt := func(off int64, why string) error {
		return &wal.CorruptionError{File: full, Offset: off, Reason: why}
	}
	if len(data) < headerSize || string(data[:8]) != magic {
		return group{}, corrupt(0, "not a group (bad header)")
	}
	g := group{id: id, size: int64(len(data))}
	if binary.LittleEndian.Uint64(data[8:]) != id.epoch || binary.LittleEndian.Uint64(data[16:]) != id.seq {
		return group{}, corrupt(8, "the header names another group")
	}
	g.cut = groupID{binary.LittleEndian.Uint64(data[24:]), binary.LittleEndian.Uint64(data[32:])}
	if crc32.Checksum(data[headerSize:], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(data[40:]) {
		return group{}, corrupt(40, "checksum mismatch")
	}
	r := wal.NewFrameReader(bytes.NewReader(data), headerSize, int64(len(data)))
	for {
		f, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return g, nil
			}
			return group{}, corrupt(r.Offset(), err.Error())
		}
		if g.frames == 0 {
			g.first = f.FirstOffset
		} else if f.FirstOffset < g.end {
			return group{}, corrupt(r.Offset(), "frame offsets go back")
		}
		g.end = f.FirstOffset + uint64(f.Rows)
		g.frames++
		if fn != nil {
			if err := fn(f); err != nil {
				return group{}, err
			}
		}
	}
}

// put writes one group object; the epoch check follows in Sync.
func (l *Log) put(data []byte) error {
	id := groupID{binary.LittleEndian.Uint64(data[8:]), binary.LittleEndian.Uint64(data[16:])}
	err := l.st.PutIfAbsent(id.name(), data)
	if errors.Is(err, os.ErrExist) {
		// Our name, written by someone else: only an owner with our
		// epoch could, so ours was taken over.
		return &FencedError{Root: l.st.Root(), Epoch: l.epoch, By: l.epoch}
	}
	if err != nil {
		return fmt.Errorf("remotewal: write group %s/%s: %w", l.st.Root(), id.name(), err)
	}
	return nil
}

// fenced reports a newer epoch, if any.
func (l *Log) fenced() error {
	_, err := l.st.Get(epochName(l.epoch + 1))
	for try := 1; try < 4 && err != nil && !errors.Is(err, os.ErrNotExist); try++ {
		// A read: repeat it (beyond the client's own retries) before
		// failing a group that is already written.
		time.Sleep(time.Duration(try*try) * 50 * time.Millisecond)
		_, err = l.st.Get(epochName(l.epoch + 1))
	}
	switch {
	case err == nil:
		last, lerr := latestEpoch(l.st)
		if lerr != nil || last <= l.epoch {
			last = l.epoch + 1
		}
		return &FencedError{Root: l.st.Root(), Epoch: l.epoch, By: last}
	case errors.Is(err, os.ErrNotExist):
		return nil
	}
	return fmt.Errorf("remotewal: check the epoch of %s: %w", l.st.Root(), err)
}

func (l *Log) usable() error {
	if l.closed {
		return errors.New("remotewal: log closed")
	}
	return l.poison
}

// Append adds one frame to the group being built; nothing is written
// until Sync.
func (l *Log) Append(f wal.Frame) (int64, error) {
	if err := l.usable(); err != nil {
		return 0, err
	}
	if f.Rows == 0 {
		return 0, wal.ErrEmptyFrame
	}
	if l.hasOffset && f.FirstOffset < l.nextOffset {
		return 0, fmt.Errorf("%w: frame at %d, log ends at %d", wal.ErrOffsetOrder, f.FirstOffset, l.nextOffset)
	}
	before := len(l.buf)
	l.buf = wal.AppendFrame(l.buf, f)
	l.nbuf++
	l.nextOffset, l.hasOffset = f.FirstOffset+uint64(f.Rows), true
	return int64(len(l.buf) - before), nil
}

// Sync writes the frames appended since the last Sync as one group and
// checks that no newer owner exists. Any failure poisons the log: the
// group's appends are reported failed, and the bucket must be reopened.
func (l *Log) Sync() error {
	if err := l.usable(); err != nil {
		return err
	}
	if l.nbuf == 0 {
		return nil
	}
	id := groupID{l.epoch, l.seq}
	data := encodeGroup(id, groupID{}, l.buf)
	err := l.put(data)
	if err == nil {
		err = l.fenced()
	}
	if err != nil {
		l.poison = err
		return err
	}
	g, _ := l.indexFrames(id, int64(len(data)))
	l.groups = append(l.groups, g)
	l.size.Add(g.size)
	l.ngroup.Add(1)
	l.seq++
	l.buf, l.nbuf = l.buf[:0], 0
	if cap(l.buf) > 4<<20 {
		l.buf = nil
	}
	return nil
}

// indexFrames describes the group just written from the frames in buf.
func (l *Log) indexFrames(id groupID, size int64) (group, error) {
	g := group{id: id, size: size}
	r := wal.NewFrameReader(bytes.NewReader(l.buf), 0, int64(len(l.buf)))
	for {
		f, err := r.Next()
		if err != nil {
			return g, nil
		}
		if g.frames == 0 {
			g.first = f.FirstOffset
		}
		g.end = f.FirstOffset + uint64(f.Rows)
		g.frames++
	}
}

// ReleaseBefore removes the groups whose rows all lie before offset. A
// failed removal is retried at the next call.
func (l *Log) ReleaseBefore(offset uint64) error {
	if l.closed {
		return nil
	}
	kept := l.groups[:0]
	var first error
	for i, g := range l.groups {
		if g.end <= offset && first == nil {
			if err := l.st.Remove(g.id.name()); err != nil && !errors.Is(err, os.ErrNotExist) {
				first = err
				kept = append(kept, l.groups[i:]...)
				break
			}
			l.size.Add(-g.size)
			continue
		}
		kept = append(kept, g)
	}
	l.groups = kept
	l.ngroup.Store(int64(len(kept)))
	return first
}

// Replay calls fn for every frame whose rows end after fromOffset, in log
// order (the caller skips the leading rows of the first).
func (l *Log) Replay(fromOffset uint64, fn func(wal.Frame) error) error {
	if err := l.usable(); err != nil {
		return err
	}
	for i := range l.groups {
		g := &l.groups[i]
		data := g.data
		g.data = nil // replayed once; memory back
		if g.end <= fromOffset {
			continue
		}
		_, err := l.readGroupData(g.id, func(f wal.Frame) error {
			if f.FirstOffset+uint64(f.Rows) <= fromOffset {
				return nil
			}
			return fn(f)
		}, &data)
		if err != nil {
			return err
		}
	}
	return nil
}

// Size is the bytes of the groups kept on the store.
func (l *Log) Size() int64 { return l.size.Load() }

// Segments is the number of groups kept on the store.
func (l *Log) Segments() int { return int(l.ngroup.Load()) }

// NextOffset is the end of the last frame's rows.
func (l *Log) NextOffset() (uint64, bool) { return l.nextOffset, l.hasOffset }

// Close writes what was appended and not synced (when the log is usable),
// then stops.
func (l *Log) Close() error {
	if l.closed {
		return nil
	}
	var err error
	if l.poison == nil && l.nbuf > 0 {
		err = l.Sync()
	}
	l.closed = true
	return err
}
