package engine

import "errors"

// Close waits for recovery, refuses new appends, commits what was queued,
// flushes what the sink can take, syncs and closes the WAL and releases the
// directory lock. It is idempotent and safe to call concurrently: later
// calls wait for the first and return nil.
func (e *Engine) Close() error {
	<-e.ready
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		<-e.closeDone
		return nil
	}
	e.closing = true
	e.mu.Unlock()
	e.stop()
	defer close(e.closeDone)
	var flushErr error
	if e.sink != nil && e.readyErr == nil {
		e.drainQueue()
		done := make(chan error, 1)
		e.flush(func(err error) { done <- err })
		flushErr = <-done
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	close(e.quit)
	<-e.flushDone
	<-e.maintDone
	e.failMaintenance()
	<-e.commitDone // fails what is still queued and closes the log
	e.mu.Lock()
	e.buf.release()
	waiters := append(e.waiters, e.afterRelease...)
	e.waiters, e.afterRelease = nil, nil
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	for _, w := range waiters {
		w.done(ErrClosed)
	}
	var sinkErr error
	if e.sink != nil {
		sinkErr = e.sink.Close()
	}
	e.cfg.Metrics.Unregister()
	e.closeErr = errors.Join(flushErr, sinkErr, e.lock.release())
	return e.closeErr
}

// fragments is the dataset's fragment count (0 for a sink without any).
