package engine

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/wal"
)

// recover opens the sink, reads its watermark, opens the WAL (repairing a
// torn tail) and replays every frame past the watermark into the buffer. It
// runs before the commit and flush goroutines start, so it owns the engine.
func (e *Engine) recover() error {
	// On an object store with the log there, the log is opened first: it
	// takes this owner's epoch, which the sink then writes into the dataset
	// (fence) before its watermark is read, so that nothing the previous
	// owner commits later can be mistaken for part of this recovery. With
	// the log local, or off, fence takes an epoch of its own.
	var (
		log     walLog
		info    wal.RecoveryInfo
		err     error
		opened  bool
		walCfg  = e.cfg.WAL
		openLog = func() {
			opened = true
			log, info, err = e.openLog(walCfg)
		}
	)
	if walCfg == nil && e.hasLog() {
		// The WAL is off now, but a log left by an earlier open may hold
		// acknowledged rows: replay it, persist them, then drop it.
		walCfg = &WALConfig{}
	}
	if walCfg != nil && e.cfg.remoteLog() {
		if openLog(); err != nil {
			return fmt.Errorf("persisting: bucket %s: %w: open: %v", e.cfg.Dir, ErrWAL, err)
		}
	}
	if e.cfg.OpenSink != nil {
		sink, err := e.cfg.OpenSink()
		if err == nil {
			err = e.fence(sink, log)
		}
		if err != nil {
			if log != nil {
				log.Close()
			}
			return fmt.Errorf("persisting: bucket %s: open dataset: %w", e.cfg.Dir, err)
		}
		e.mu.Lock()
		e.sink = sink
		e.buf.base = sink.Rows()
		e.table = sink.Schema()
		e.seqBase = sink.Watermark()
		e.nextSeq = e.seqBase
		e.released = 0
		e.mu.Unlock()
	}
	if walCfg == nil {
		return nil
	}
	if !opened {
		openLog()
	}
	if err != nil {
		var ce *wal.CorruptionError
		if errors.As(err, &ce) {
			e.emit(func(l EventListener) { l.Corrupt() })
			return fmt.Errorf("persisting: bucket %s: %w: %w; nothing was changed on disk — to cut the log at that frame and lose what follows it, open with wal_truncate_corrupt=True",
				e.cfg.Dir, ErrCorrupt, err)
		}
		return fmt.Errorf("persisting: bucket %s: %w: open: %v", e.cfg.Dir, ErrWAL, err)
	}
	e.log = log
	e.emit(func(l EventListener) { l.Recovered(info) })

	watermark := e.seqBase
	err = log.Replay(watermark, func(f wal.Frame) error { return e.replayFrame(f, watermark) })
	if err != nil {
		return fmt.Errorf("persisting: bucket %s: replay write-ahead log: %w", e.cfg.Dir, err)
	}
	if next, ok := log.NextOffset(); ok && next > e.nextSeq {
		// Frames below the watermark that were flushed but not yet released.
		e.nextSeq = next
	}
	if e.cfg.WAL == nil {
		return e.retireLog()
	}
	if e.buf.rows > 0 {
		// Persist what was recovered, whatever the batch size.
		e.waiters = append(e.waiters, flushWaiter{target: e.buf.end(), done: func(error) {}})
		e.kickFlush()
	}
	return nil
}

// replayFrame makes the rows of one logged frame past the watermark
// visible again, in the schema they were logged with.
func (e *Engine) replayFrame(f wal.Frame, watermark uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.FirstOffset > e.nextSeq {
		return fmt.Errorf("%w: the log has no rows %d..%d that the dataset (watermark %d) does not hold either",
			ErrCorrupt, e.nextSeq, f.FirstOffset-1, watermark)
	}
	var rec arrow.RecordBatch
	err := contain("WAL frame decoding", func() (err error) {
		rec, err = decodeFrame(f.Payload)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: frame at row %d: %v", ErrCorrupt, f.FirstOffset, err)
	}
	defer rec.Release()
	if skip := int64(e.nextSeq - f.FirstOffset); skip > 0 {
		sliced := rec.NewSlice(skip, rec.NumRows())
		defer sliced.Release()
		rec = sliced
	}
	if err := e.evolve(rec.Schema()); err != nil {
		return err
	}
	if _, err := e.addToBuffer(rec); err != nil {
		return err
	}
	e.nextSeq += uint64(rec.NumRows())
	e.emit(func(l EventListener) { l.Replayed(rec.NumRows()) })
	return nil
}

// retireLog persists the rows replayed from a log the configuration no
// longer wants, then deletes the log. Without a sink the rows cannot be
// made durable elsewhere, so the log stays.
func (e *Engine) retireLog() error {
	log := e.log
	e.log = nil
	if e.sink == nil {
		return log.Close()
	}
	if e.buf.rows > 0 {
		recs, n := e.buf.front(e.buf.rows)
		watermark := e.seqBase + uint64(n)
		err := e.writeSink(recs, watermark)
		for _, r := range recs {
			r.Release()
		}
		if err != nil {
			log.Close()
			return err
		}
		e.buf.dropFront(n)
		e.seqBase = watermark
	}
	if err := log.ReleaseBefore(e.nextSeq); err != nil {
		log.Close()
		return fmt.Errorf("persisting: bucket %s: drop the write-ahead log: %w", e.cfg.Dir, err)
	}
	return log.Close()
}

func hasSegments(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	return len(matches) > 0
}
