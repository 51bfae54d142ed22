package wal

import (
	"errors"
	"fmt"
	"io"
)

// Replay calls fn, in log order, for every frame whose rows end after
// fromOffset (FirstOffset+Rows > fromOffset). Frames are delivered whole: the
// caller skips the rows of the first one that lie before fromOffset. Payloads
// are freshly allocated and may be kept. An error from fn stops the replay
// and is returned as is.
//
// Replay reads only the bytes Open or Append validated (each segment up to
// its indexed size) and checks every CRC again; a frame that no longer
// decodes is reported as a *CorruptionError. Segments whose rows all lie
// before fromOffset are skipped without being read.
func (l *Log) Replay(fromOffset uint64, fn func(Frame) error) error {
	if err := l.usable(); err != nil {
		return err
	}
	for _, seg := range l.segs {
		if seg.frames == 0 || seg.endRow <= fromOffset {
			continue
		}
		if err := l.replaySegment(seg, fromOffset, fn); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) replaySegment(seg *segment, fromOffset uint64, fn func(Frame) error) error {
	f, err := l.fs.Open(seg.path)
	if err != nil {
		return &WALError{Op: "open segment", File: seg.path, Offset: -1, Err: err}
	}
	defer f.Close()
	r := NewFrameReader(f, segmentHeaderSize, seg.size)
	for {
		fr, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var fe *FrameError
			if errors.As(err, &fe) {
				return &CorruptionError{File: seg.path, Offset: fe.Offset,
					Reason: fmt.Sprintf("%s (frame was valid when the log was opened or appended)", fe.Kind)}
			}
			return fmt.Errorf("wal: replay %s: %w", seg.path, err)
		}
		if fr.FirstOffset+uint64(fr.Rows) <= fromOffset {
			continue
		}
		if err := fn(fr); err != nil {
			return err
		}
	}
}
