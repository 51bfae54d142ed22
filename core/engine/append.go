package engine

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/persisting/persisting/core/schema"
)

// Append copies rec and appends it. With done == nil the rows must become
// visible at once (no WAL, recovery done) or the call fails with ErrBusy;
// otherwise it returns pending=true and done is called, from another
// goroutine, with the first row's offset once the rows are logged (and
// fsynced when the sync interval is 0) and readable.
//
// A batch whose schema cannot be unified with the table's is refused whole
// with a *schema.Error, before anything is queued.
func (e *Engine) Append(rec arrow.RecordBatch, done func(first int64, err error)) (first int64, pending bool, err error) {
	if rec.NumRows() == 0 {
		return 0, false, fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	if err := schema.Validate(rec); err != nil {
		return 0, false, fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
	}
	owned, err := deepCopy(rec, e.mem)
	if err != nil {
		return 0, false, err
	}
	defer owned.Release()

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.writable(); err != nil {
		return 0, false, err
	}
	isReady := e.isReady()
	if e.cfg.WAL == nil && isReady {
		return e.appendVisible(owned)
	}
	if done == nil {
		return 0, false, ErrBusy
	}
	if e.queued >= e.cfg.MaxQueueRows || e.bufferFull() {
		return 0, false, e.backpressure()
	}
	if isReady {
		// Checked now so a bad batch fails alone; the commit goroutine
		// unifies again, in queue order, when it makes the rows visible.
		if _, _, err := schema.Unify(e.table, owned.Schema()); err != nil {
			return 0, false, fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
		}
	}
	owned.Retain()
	e.queue = append(e.queue, queued{rec: owned, done: once(done)})
	e.queued += owned.NumRows()
	kick(e.commitKick)
	return 0, true, nil
}

func (e *Engine) isReady() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// writable reports why the bucket cannot take new writes. Called with mu
// held.
func (e *Engine) writable() error {
	if e.closing {
		return ErrClosed
	}
	return e.committable()
}

// committable reports why the bucket cannot commit writes it already took
// (those queued before Close began are still committed). Called with mu
// held.
func (e *Engine) committable() error {
	switch {
	case e.closed:
		return ErrClosed
	case e.broken != nil:
		return e.broken
	case e.walErr != nil:
		return e.walErr
	case e.isReady() && e.readyErr != nil:
		return e.readyErr
	}
	return nil
}

// bufferFull: the buffer reached its bound and a sink could drain it.
// Called with mu held.
func (e *Engine) bufferFull() bool {
	return e.sink != nil && e.buf.rows >= e.cfg.MaxBufferRows
}

// backpressure refuses an append for now (ErrBusy) and gets a flush going.
// When the last flush failed, waiting may be forever: the append fails with
// that error instead, so the caller learns why. Called with mu held.
func (e *Engine) backpressure() error {
	e.emit(func(l EventListener) { l.Backpressure() })
	e.kickFlush()
	if e.bufferFull() && e.lastFlushErr != nil {
		return fmt.Errorf("persisting: bucket %s: the buffer is full (%d rows) and the last flush failed: %v",
			e.cfg.Dir, e.buf.rows, e.lastFlushErr)
	}
	return ErrBusy
}

// appendVisible adds an owned batch to the buffer. Called with mu held.
func (e *Engine) appendVisible(owned arrow.RecordBatch) (int64, bool, error) {
	if e.bufferFull() {
		return 0, false, e.backpressure()
	}
	if err := e.evolve(owned.Schema()); err != nil {
		return 0, false, err
	}
	first, err := e.addToBuffer(owned)
	if err == nil {
		e.nextSeq += uint64(owned.NumRows())
		e.emit(func(l EventListener) { l.Appended(owned.NumRows(), e.buf.rows) })
	}
	return first, false, err
}

// evolve unifies the table schema with an incoming one and conforms the
// buffered batches. Called with mu held.
func (e *Engine) evolve(in *arrow.Schema) error {
	table, changed, err := schema.Unify(e.table, in)
	if err != nil {
		return fmt.Errorf("persisting: bucket %s: %w", e.cfg.Dir, err)
	}
	if !changed {
		return nil
	}
	conform := func(r arrow.RecordBatch) (arrow.RecordBatch, error) { return schema.Conform(r, table, e.mem) }
	if err := e.buf.replace(conform); err != nil {
		return err
	}
	e.table = table
	e.emit(func(l EventListener) { l.SchemaChanged() })
	return nil
}

// addToBuffer makes rows visible. Called with mu held, after evolve.
func (e *Engine) addToBuffer(rec arrow.RecordBatch) (int64, error) {
	conformed, err := schema.Conform(rec, e.table, e.mem)
	if err != nil {
		return 0, err
	}
	first := e.buf.end()
	e.buf.add(conformed)
	close(e.changed)
	e.changed = make(chan struct{})
	if e.buf.rows >= e.cfg.BatchSize {
		e.kickFlush()
	}
	return first, nil
}

// Changed returns a channel closed when more rows become visible.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}
