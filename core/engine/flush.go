package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Flush persists every row visible now; done is called (from another
// goroutine) once they are in the sink, or with the flush error.
func (e *Engine) Flush(done func(error)) {
	e.mu.Lock()
	closing := e.closing
	e.mu.Unlock()
	if closing {
		done(ErrClosed)
		return
	}
	e.flush(done)
}

// flush is Flush without the closing check: Close uses it for its final
// flush.
func (e *Engine) flush(done func(error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		done(ErrClosed)
		return
	}
	if e.broken != nil {
		done(e.broken) // no flush will run: waiting would be forever
		return
	}
	if !e.isReady() {
		// Never wait here: the caller may be the event loop.
		go func() {
			<-e.ready
			e.flush(done)
		}()
		return
	}
	target := e.buf.end()
	if e.sink == nil || target <= e.buf.base {
		done(e.readyErr)
		return
	}
	i := len(e.waiters)
	for i > 0 && e.waiters[i-1].target > target {
		i--
	}
	e.waiters = append(e.waiters, flushWaiter{})
	copy(e.waiters[i+1:], e.waiters[i:])
	e.waiters[i] = flushWaiter{target: target, done: done}
	e.kickFlush()
}

func (e *Engine) kickFlush() { kick(e.flushKick) }

// kick wakes the loop behind ch without blocking: the channels have room
// for one kick, and a kick already pending does the job of this one.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// flushLoop is the only writer of the sink.
func (e *Engine) flushLoop() {
	defer close(e.flushDone)
	for {
		select {
		case <-e.flushKick:
		case <-e.quit:
			return
		}
		progress := true
		for progress {
			progress = false
			e.survive("the flush loop", func() { progress = e.flushOnce() })
		}
	}
}

// flushOnce writes the whole buffer as one sink append. It reports whether
// it made progress.
func (e *Engine) flushOnce() bool {
	if e.sink == nil || e.readyErr != nil {
		return false
	}
	recs, n, watermark := e.takeFlush()
	if n == 0 {
		return false
	}
	start := time.Now()
	err := e.writeSink(recs, watermark)
	for _, r := range recs {
		r.Release()
	}
	ready := e.finishFlush(n, watermark, time.Since(start), err)
	for _, w := range ready {
		w.done(err)
	}
	if err == nil {
		e.kickCommit()
	}
	// After a failure too: an append refused as busy, retried now, learns
	// the flush error instead of waiting for room that may never come.
	e.cfg.OnSpace()
	return err == nil
}

// takeFlush returns the buffered batches to persist, their row count and
// the watermark to commit with them.
func (e *Engine) takeFlush() ([]arrow.RecordBatch, int64, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil || !e.flushWanted() {
		return nil, 0, 0
	}
	recs, n := e.buf.front(e.buf.rows)
	return recs, n, e.seqBase + uint64(n)
}

// finishFlush records a flush's outcome and returns the flush waiters to
// complete now (with a WAL, successful ones complete once the log is
// released, in the commit goroutine).
func (e *Engine) finishFlush(n int64, watermark uint64, took time.Duration, err error) []flushWaiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastFlushErr = err
	var ready []flushWaiter
	if err != nil {
		if errors.Is(err, ErrFenced) && e.broken == nil {
			// A newer owner took the bucket: this one writes nothing more
			// (appends are refused with err; what the commit goroutine
			// already took completes as it would).
			e.broken = err
		}
		e.emit(func(l EventListener) { l.FlushDone(n, took, err, e.buf.rows, e.fragments()) })
		ready, e.waiters = e.waiters, nil
		return ready
	}
	e.buf.dropFront(n)
	// Another writer (real Lance) may have committed or deleted rows
	// meanwhile: our rows went in after theirs, so the buffer now starts
	// past both, and the offsets flush waiters wait for move with it.
	if rows := e.sink.Rows(); rows != e.buf.base {
		delta := rows - e.buf.base
		e.buf.rebase(rows)
		for i := range e.waiters {
			e.waiters[i].target += delta
		}
	}
	e.seqBase = watermark
	e.maintainDue()
	e.emit(func(l EventListener) { l.FlushDone(n, took, nil, e.buf.rows, e.fragments()) })
	i := 0
	for i < len(e.waiters) && e.waiters[i].target <= e.buf.base {
		i++
	}
	ready, e.waiters = e.waiters[:i:i], e.waiters[i:]
	if e.log != nil {
		// The commit goroutine owns the log: it drops the segments now in
		// the sink, then completes these waiters, so that a flush returns
		// with the log already truncated.
		e.afterRelease = append(e.afterRelease, ready...)
		ready = nil
	}
	return ready
}

// flushWanted: the buffer reached the batch size, someone waits for a
// flush, or the WAL grew past its bound. Called with mu held.
func (e *Engine) flushWanted() bool {
	if e.buf.rows == 0 {
		return false
	}
	if e.buf.rows >= e.cfg.BatchSize || len(e.waiters) > 0 || e.buf.rows >= e.cfg.MaxBufferRows {
		return true
	}
	return e.log != nil && e.cfg.WAL.MaxSize > 0 && e.log.Size() > e.cfg.WAL.MaxSize
}

func (e *Engine) writeSink(recs []arrow.RecordBatch, watermark uint64) error {
	rec, err := concatRecords(recs, e.mem)
	if err != nil {
		return err
	}
	defer rec.Release()
	if err := contain("the dataset writer", func() error { return e.sink.Append(rec, watermark) }); err != nil {
		return fmt.Errorf("persisting: bucket %s: flush: %w", e.cfg.Dir, err)
	}
	return nil
}
